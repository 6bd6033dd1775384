"""Delivery planning: what a new broadcast to N nodes costs the controller before it is sent, the
timelines computed and a delivery planned for every node, with the planner as it is (a few
queries for all nodes) beside the planner it replaced (one or two queries per node) in the same
run, on SQLite and on PostgreSQL. Counts the SQL statements and times the computation.

Each row: N nodes in one commune, one broadcast already planned for all of them, then a second
one (a live broadcast's case: every node's timeline changes). A fresh database per row.

Run: .venv/bin/python bench/bench_planning.py [N ...]   (default: 200 1000 5000)
     RADIO_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres for PostgreSQL
     (the default when a server answers there)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from bench.bench_ingest import fresh_postgres  # noqa: E402
from controller.core.config import Settings  # noqa: E402
from controller.core.db import Database  # noqa: E402
from controller.core.models import Announcement, Area, Delivery, DeliveryState, Node  # noqa: E402
from controller.core.time import utc_datetime, utc_ms  # noqa: E402
from controller.programme import timelines as timelines_module  # noqa: E402
from controller.programme.broadcasts import Targets  # noqa: E402
from controller.service import RadioService  # noqa: E402
from protocol import Priority  # noqa: E402
from schedules import occurrence_of  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
ROUNDS = 3


def per_node_plan(self: Any, session: Session, replanned: list[Any]) -> None:
    """The planner before: for each node, its waiting deliveries, then one query per item not
    among them (the baseline, as it was in controller/programme/timelines.py)."""
    waiting_states = timelines_module._WAITING
    now = self.clock.now_ms()
    for node, items, occurrences in replanned:
        by_item = {o.item_id: o for o in occurrences}
        existing = {
            d.item_id: d
            for d in session.exec(
                select(Delivery).where(
                    Delivery.node_id == node.id, col(Delivery.state).in_(waiting_states)
                )
            ).all()
        }
        present = {i.item_id for i in items}
        for item in items:
            d = existing.get(item.item_id)
            if d is None:
                d = session.exec(
                    select(Delivery).where(
                        Delivery.node_id == node.id, Delivery.item_id == item.item_id
                    )
                ).first()
            if d is None:
                occ = by_item[occurrence_of(item.item_id)]
                d = Delivery(
                    item_id=item.item_id,
                    schedule_id=int(occ.broadcast_id),
                    node_id=node.id,
                    planned_start=utc_datetime(item.start),
                )
            if d.state in waiting_states:
                d.planned_start = utc_datetime(item.start)
                d.planned_duration_ms = item.duration_ms
            d.timeline_version = node.timeline_version
            session.add(d)
        for item_id, d in existing.items():
            if item_id not in present and utc_ms(d.planned_start) > now:
                d.state = DeliveryState.cancelled
                session.add(d)


def postgres_url() -> str | None:
    url = os.environ.get("RADIO_BENCH_POSTGRES_URL", POSTGRES)
    try:
        engine = create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception:
        return None
    return url


def drop_postgres(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


async def one_row(n: int, database_url: str | None, planner: str) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="radio-bench-plan-"))
    settings = Settings(
        data_dir=data,
        demo=True,
        database_url=database_url,
        secret_key="bench-secret-key-0123456789abcdef",
        prerender_alert_templates=False,
        timeline_refresh_s=3600,
    )
    db = Database(settings.db_url)
    db.migrate()
    with db.session() as s:
        s.add(Area(id="xa", name="Xã", kind="commune"))
        s.add_all(Node(id=f"n{i:05d}", name=f"Loa {i}", area_id="xa") for i in range(n))
        s.add(
            Announcement(
                title="Tin",
                text="x",
                normalized_text="x",
                media_sha256="ab" * 32,
                media_size=100_000,
                duration_ms=60_000,
            )
        )
        s.commit()
        ann_id = s.exec(select(Announcement.id)).one()
    db.dispose()

    service = RadioService(settings)
    if planner == "per node":
        service.timelines._plan_deliveries = per_node_plan.__get__(service.timelines)  # type: ignore[method-assign]
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    event.listen(service.db.engine, "before_cursor_execute", count)
    computed: list[tuple[float, int]] = []
    compute = service.timelines.compute

    def timed_compute(node_ids: Any, force: bool) -> Any:
        statements[0] = 0
        started = time.perf_counter()
        out = compute(node_ids, force)
        computed.append((time.perf_counter() - started, len(out)))
        return out

    service.timelines.compute = timed_compute  # type: ignore[method-assign]
    soon = datetime.now(UTC) + timedelta(hours=1)
    target = Targets(areas=["xa"])
    await service.broadcasts.create_schedule(ann_id, soon, target, Priority.normal)
    # The second broadcast: every node's timeline changes again, beside planned deliveries.
    computed.clear()
    await service.broadcasts.create_schedule(
        ann_id, soon + timedelta(minutes=10), target, Priority.normal
    )
    statements_seen = statements[0]
    with service.db.session() as s:
        planned = len(s.exec(select(Delivery.id)).all())
    event.remove(service.db.engine, "before_cursor_execute", count)
    service.db.dispose()
    assert len(computed) == 1 and computed[0][1] == n and planned == 2 * n, (computed, planned)
    seconds = computed[0][0]
    return {"seconds": seconds, "statements": statements_seen}


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # "broker unavailable": no broker here, on purpose
    sizes = [int(a) for a in sys.argv[1:]] or [200, 1000, 5000]
    admin = postgres_url()
    engines: list[tuple[str, str | None]] = [("SQLite", None)]
    if admin:
        engines.append(("PostgreSQL", admin))
    print(
        f"{ROUNDS} rounds each, planners alternating, a fresh database each; median shown. "
        f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n"
    )
    print(
        "| database | nodes | planner | timelines computed and deliveries planned, s "
        "| SQL statements |"
    )
    print("|---|---:|---|---:|---:|")
    for label, admin_url in engines:
        for n in sizes:
            results: dict[str, list[dict[str, float]]] = {"few queries": [], "per node": []}
            for _ in range(ROUNDS):
                for planner in results:
                    url = fresh_postgres(admin_url) if admin_url else None
                    try:
                        results[planner].append(asyncio.run(one_row(n, url, planner)))
                    finally:
                        if admin_url and url:
                            drop_postgres(admin_url, url)
            for planner, rows in results.items():
                name = "now: a few queries" if planner == "few queries" else "before: per node"
                print(
                    f"| {label} | {n:,} | {name} "
                    f"| {statistics.median(r['seconds'] for r in rows):.3f} "
                    f"| {statistics.median(r['statements'] for r in rows):.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
