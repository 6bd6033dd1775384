"""The node list at a province's size: one page of `GET /nodes` for N nodes (what the route runs:
controller.health.fleet_view `find`, then the page's rows as the API answers them), beside the
list before paging (every node's row read with `fleet` and answered), in the same run, on
SQLite and on PostgreSQL. HTTP is left out of both.

N nodes in 100 communes, a tenth of them offline and a few with an open alarm, written straight
to a fresh database; then each query R times: the first page, a state filter, a search by name,
the last page, and the nodes of half the communes (a district's view).

Run: .venv/bin/python bench/bench_node_list.py [N] [--repeat R]   (default 10000, 50)
     PostgreSQL: a fresh database on RADIO_BENCH_POSTGRES_URL's server (127.0.0.1:5432 by
     default), skipped when none answers
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_scale import fresh_postgres  # noqa: E402

from api.routes.nodes import health_public  # noqa: E402
from controller.core.config import Settings  # noqa: E402
from controller.core.db import Database  # noqa: E402
from controller.core.models import Alarm, Area, Node  # noqa: E402
from controller.health.fleet_view import NodeFilter, find, fleet  # noqa: E402
from controller.health.presence import Presence  # noqa: E402
from controller.health.telemetry import TelemetryStore  # noqa: E402
from protocol import SystemClock  # noqa: E402

COMMUNES = 100
T = TypeVar("T")


def populate(db: Database, n: int) -> None:
    now = datetime.now(UTC)
    with db.session() as s:
        s.add_all(Area(id=f"xa-{c:03d}", name=f"Xã {c}", kind="commune") for c in range(COMMUNES))
        s.flush()
        s.add_all(
            Node(
                id=f"loa-{i:05d}",
                name=f"Loa thôn {i % 37} xã {i % COMMUNES}",
                area_id=f"xa-{i % COMMUNES:03d}",
                status="offline" if i % 10 == 0 else "online",
                last_seen=now,
            )
            for i in range(n)
        )
        s.flush()
        s.add_all(
            Alarm(
                node_id=f"loa-{i:05d}",
                kind="offline",
                severity="major",
                state="open",
                detail="",
                raised_at=now,
            )
            for i in range(0, n, 50)
        )
        s.commit()
        # The statistics a running database keeps by itself (autovacuum analyses a table this
        # changed within a minute); without them PostgreSQL guesses a few hundred rows and
        # sorts the table for a page read backwards.
        s.exec(text("ANALYZE"))  # type: ignore[call-overload]
        s.commit()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """p50 and p99 (the slowest but one in a hundred) in ms."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def measure(url: str, n: int, repeat: int) -> list[tuple[str, tuple[float, float], int]]:
    db = Database(url)
    db.migrate()
    populate(db, n)
    settings = Settings(demo=True, secret_key="x" * 32)
    presence = Presence(settings, SystemClock())
    store = TelemetryStore(settings)
    half = frozenset(f"xa-{c:03d}" for c in range(COMMUNES // 2))
    deep = f"loa-{n - 101:05d}"  # the id ending the page before the last
    # (name, filter, offset, after, before, last): the console's table walks by the ids at a
    # page's ends (after, before, last), a typed page number by offset.
    cases: list[tuple[str, NodeFilter, int, str | None, str | None, bool]] = [
        ("first page", NodeFilter(), 0, None, None, False),
        ("state=offline", NodeFilter(state="offline"), 0, None, None, False),
        ("q (a name)", NodeFilter(text="thôn 5 xã 1"), 0, None, None, False),
        ("last page (offset)", NodeFilter(), n - 100, None, None, False),
        ("last page (after)", NodeFilter(), 0, deep, None, False),
        ("last page (last)", NodeFilter(), 0, None, None, True),
        ("the page before the last (before)", NodeFilter(), 0, None, f"loa-{n - 100:05d}", False),
        ("half the communes", NodeFilter(areas=half), 0, None, None, False),
    ]
    rows = []
    for name, query, offset, after, before, last in cases:
        found: list[int] = []

        def page(
            query: NodeFilter = query,
            offset: int = offset,
            after: str | None = after,
            before: str | None = before,
            last: bool = last,
            found: list[int] = found,
        ) -> None:
            with db.session() as s:
                result = find(s, presence, query, offset, 100, after, before, last)
                [health_public(row, store) for row in result.rows]  # the answer's rows
                found[:] = [result.total]

        rows.append((f"a page: {name}", timed(page, repeat), found[0] if found else 0))

    def every_row() -> None:
        with db.session() as s:
            [health_public(row, store) for row in fleet(s, presence)]

    rows.append(("every row, as before paging (baseline)", timed(every_row, repeat), n))
    db.dispose()
    return rows


def each_database(measure: Callable[[str], T]) -> list[tuple[str, T]]:
    """`measure(url)` on a fresh SQLite file, then on a fresh PostgreSQL database (skipped,
    saying so, when no server answers)."""
    runs: list[tuple[str, T]] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(("SQLite", measure(f"sqlite:///{tmp}/bench.db")))
    try:
        with fresh_postgres() as url:
            runs.append(
                ("PostgreSQL", measure(url.replace("postgresql://", "postgresql+psycopg://", 1)))
            )
    except Exception as exc:  # no server: say so, keep SQLite's rows
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", type=int, nargs="?", default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    runs = each_database(lambda url: measure(url, args.nodes, args.repeat))
    print(f"\n{args.nodes:,} nodes, {args.repeat} requests each\n")
    print("| database | query | matching | p50, ms | p99, ms | goal p99 ≤ 50 ms |")
    print("|---|---|---:|---:|---:|---|")
    for db_name, rows in runs:
        for name, (p50, p99), total in rows:
            goal = "—" if "baseline" in name else ("met" if p99 <= 50 else "not met")
            print(f"| {db_name} | {name} | {total:,} | {p50:.1f} | {p99:.1f} | {goal} |")


if __name__ == "__main__":
    main()
