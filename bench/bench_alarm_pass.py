"""The alarm pass at a province's size: one `AlarmRules.evaluate` over N nodes (what the health
loop runs every RADIO_ALARM_CHECK_S, 10 s, in a worker thread that holds the interpreter's lock
while it computes), beside reading the N nodes' rows alone (the floor of any pass over the
whole fleet), in the same run, on SQLite and on PostgreSQL.

N nodes in 100 communes (a tenth offline, a few with an open alarm, as `bench_node_list`),
each with a heartbeat (telemetry as ingestion stores it), six items earlier today, each
begun on every node at the same moment (the last missed by one node in a hundred), and one
media failure in the window for a few; then R passes each:
- steady: the heartbeats already judged (10 minutes apart by default, the pass every 10 s);
- every heartbeat new: as if every node had just sent one.

Run: .venv/bin/python bench/bench_alarm_pass.py [N] [--repeat R]   (default 10000, 20)
     PostgreSQL: a fresh database on RADIO_BENCH_POSTGRES_URL's server (127.0.0.1:5432 by
     default), skipped when none answers
"""

from __future__ import annotations

import argparse
import gc
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_node_list import each_database, populate, timed  # noqa: E402

from controller.core.config import Settings  # noqa: E402
from controller.core.db import Database  # noqa: E402
from controller.core.models import (  # noqa: E402
    Announcement,
    Delivery,
    NodeEventRecord,
    Schedule,
)
from controller.health.alarm_rules import NODE_FACTS, AlarmRules  # noqa: E402
from controller.health.alarms import AlarmBook  # noqa: E402
from controller.health.presence import Presence  # noqa: E402
from controller.health.telemetry import Latest, TelemetryStore  # noqa: E402
from protocol import SystemClock, Telemetry  # noqa: E402
from protocol.heap import freeze_long_lived  # noqa: E402

ITEMS = 6  # finished items per node earlier today


def history(db: Database, n: int, now: datetime) -> None:
    """Each node's items of the day and a few failed downloads, straight to the tables."""
    with db.session() as s:
        s.add(
            Announcement(
                id=1,
                title="Bản tin",
                text="Bản tin",
                normalized_text="bản tin",
                media_sha256="0" * 64,
            )
        )
        s.flush()
        s.add(Schedule(id=1, announcement_id=1, starts_at=now - timedelta(hours=ITEMS)))
        s.commit()
    for first in range(0, n, 2000):
        nodes = [f"loa-{i:05d}" for i in range(first, min(n, first + 2000))]
        with db.session() as s:
            s.add_all(
                Delivery(
                    item_id=f"s1@{k}",
                    schedule_id=1,
                    node_id=node,
                    planned_start=now - timedelta(hours=ITEMS - k),
                    planned_duration_ms=30_000,
                    # A node in a hundred missed the last item: dead air.
                    state="missed" if k == ITEMS - 1 and i % 100 == 1 else "finished",
                    timeline_version=1,
                )
                for i, node in enumerate(nodes, first)
                for k in range(ITEMS)
            )
            s.add_all(
                NodeEventRecord(
                    id=f"{node}-f",
                    node_id=node,
                    type="media_failed",
                    ts=now - timedelta(minutes=1),
                    received_at=now,
                )
                for node in nodes[::100]
            )
            s.commit()


def heartbeats(db: Database, store: TelemetryStore, n: int, now: datetime) -> None:
    """A heartbeat of every node, as ingestion stores it (rows and the newest in memory)."""
    ts = int(now.timestamp() * 1000)
    for first in range(0, n, 2000):
        rows = [
            (
                f"loa-{i:05d}",
                Telemetry(
                    node_id=f"loa-{i:05d}",
                    ts=ts - 40,
                    temperature_c=48.5,
                    storage_free_mb=900,
                    controller_delay_ms=35,
                    clock_synced=True,
                ),
                now,
            )
            for i in range(first, min(n, first + 2000))
        ]
        with db.session() as s:
            store.record(s, rows)
            s.commit()


def measure(url: str, n: int, repeat: int) -> list[tuple[str, tuple[float, float]]]:
    db = Database(url)
    db.migrate()
    populate(db, n)
    now = datetime.now(UTC)
    history(db, n, now)
    settings = Settings(demo=True, secret_key="x" * 32)
    clock = SystemClock()
    presence = Presence(settings, clock)
    with db.session() as s:
        presence.load(s)
    for i in range(n):  # online for an hour, as a controller running for a while knows them
        presence.since.setdefault(f"loa-{i:05d}", now - timedelta(hours=1))
    store = TelemetryStore(settings)
    heartbeats(db, store, n, now)
    rules = AlarmRules(settings, AlarmBook(clock), presence, store, lambda _s: "sim-1.0.0")

    def a_pass() -> None:
        with db.session() as s:
            rules.evaluate(s)

    def every_heartbeat_new() -> None:
        for node_id, latest in list(store.latest.items()):
            store.latest[node_id] = Latest(latest.received, latest.report)
        a_pass()

    def rows_only() -> None:
        with db.session() as s:
            s.exec(select(*NODE_FACTS)).all()  # type: ignore[call-overload]

    a_pass()  # the first pass raises and clears what the data says
    # The controller freezes its long-lived heap after start-up (protocol/heap.py): without
    # that, this process's full collections (over the rows just written) would be timed too.
    freeze_long_lived()
    rows = [
        ("a pass, steady", timed(a_pass, repeat)),
        ("a pass, every heartbeat new", timed(every_heartbeat_new, repeat)),
        ("reading the nodes' rows alone (baseline)", timed(rows_only, repeat)),
    ]
    db.dispose()
    gc.unfreeze()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", type=int, nargs="?", default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    runs = each_database(lambda url: measure(url, args.nodes, args.repeat))
    print(f"\n{args.nodes:,} nodes, {args.repeat} passes each\n")
    print(f"| database | what | p50, ms | p99 (slowest of {args.repeat}), ms |")
    print("|---|---|---:|---:|")
    for db_name, rows in runs:
        for name, (p50, p99) in rows:
            print(f"| {db_name} | {name} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
