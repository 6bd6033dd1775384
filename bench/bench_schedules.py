"""A province's programme at scale: 3,000 communes with one loudspeaker each, and 10,000
schedules beside 100 in the same run. Measures controller start-up (until every node's timeline
is computed and published), the time for one schedule change to reach the timelines it affects,
a full recomputation, and the controller's memory. Each size runs in its own process.

Run: .venv/bin/python bench/bench_schedules.py [SCHEDULES ...]   (default: 100 10000)
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMUNES = 3000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def populate(settings, n_schedules: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Areas, nodes, content and schedules written straight to the database (the API would
    validate each; what is measured here is what the controller does with them)."""
    from controller.core.db import Database
    from controller.core.models import Announcement, Node, Schedule, ScheduleTarget
    from controller.fleet.seed import seed_areas, vietnam_units

    rng = random.Random(7)
    db = Database(settings.db_url)
    db.migrate()
    units = vietnam_units()
    communes = [u.id for u in units if u.parent_id is not None][:COMMUNES]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    with db.session() as s:
        seed_areas(s, units)
        s.add_all(Node(id=f"n{i}", name=f"Loa {i}", area_id=c) for i, c in enumerate(communes))
        anns = [
            Announcement(
                title=f"Bản tin {i}",
                text="x",
                normalized_text="x",
                media_sha256=f"{i:064x}",
                media_size=100_000,
                duration_ms=rng.randint(60, 600) * 1000,
            )
            for i in range(50)
        ]
        s.add_all(anns)
        s.flush()
        for k in range(n_schedules):
            commune = communes[k % COMMUNES]
            slot = k // COMMUNES  # a commune's schedules sit in different hours: no clashes
            hour = 5 + (slot * 3 + k % 3) % 17
            recurring = k % 2 == 0
            sched = Schedule(
                announcement_id=anns[k % len(anns)].id,  # type: ignore[arg-type]
                title=f"s{k}",
                starts_at=tomorrow.replace(hour=(hour - 7) % 24),
                rrule=f"FREQ=DAILY;BYHOUR={hour};BYMINUTE=0" if recurring else None,
            )
            s.add(sched)
            s.flush()
            s.add(ScheduleTarget(schedule_id=sched.id, kind="area", target_id=commune))  # type: ignore[arg-type]
        s.commit()
    db.dispose()
    return communes


async def measure(n_schedules: int) -> dict[str, float]:
    from sqlmodel import func, select

    from controller.core.config import Settings
    from controller.core.models import Node
    from controller.programme.broadcasts import Targets
    from controller.service import RadioService
    from protocol import Priority

    data = Path(tempfile.mkdtemp(prefix="radio-bench-sched-"))
    settings = Settings(
        data_dir=data,
        demo=True,
        secret_key="bench-secret-key-0123456789abcdef",
        mqtt_embedded_port=free_port(),
        http_port=free_port(),
        prerender_alert_templates=False,
        timeline_refresh_s=3600,
    )
    t = time.perf_counter()
    communes = populate(settings, n_schedules)
    populate_s = time.perf_counter() - t
    idle_mb = rss_mb()

    service = RadioService(settings)
    t0 = time.perf_counter()
    await service.start()
    while True:
        with service.db.session() as s:
            done = s.exec(select(func.count()).where(Node.timeline_version > 0)).one()
        if done == COMMUNES:
            break
        await asyncio.sleep(0.05)
    startup_s = time.perf_counter() - t0

    # One officer's change: a new broadcast for one commune, validated and pushed.
    t1 = time.perf_counter()
    await service.broadcasts.create_schedule(
        1,
        datetime.now(UTC) + timedelta(hours=2, minutes=7),
        Targets(areas=[communes[17]]),
        Priority.priority,
    )
    change_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    await asyncio.to_thread(service.timelines.compute, {"n17"}, False)
    one_node_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    await asyncio.to_thread(service.timelines.compute, None, False)
    full_s = time.perf_counter() - t3
    loaded_mb = rss_mb()
    await service.stop()
    return {
        "schedules": n_schedules,
        "populate_s": populate_s,
        "startup_s": startup_s,
        "change_s": change_s,
        "one_node_s": one_node_s,
        "full_s": full_s,
        "idle_mb": idle_mb,
        "loaded_mb": loaded_mb,
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(asyncio.run(measure(int(sys.argv[2])))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100, 10_000]
    print(
        f"{COMMUNES:,} communes, one loudspeaker each; half the schedules repeat daily, half "
        "play once tomorrow.\n"
    )
    print(
        "| schedules | start-up → all timelines published, s | one schedule change → its "
        "timelines published, s | recompute one node, s | recompute all nodes, s "
        "| controller MB (before start → after) |"
    )
    print("|---|---|---|---|---|---|")
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, cwd=ROOT
        )
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(out.returncode)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {n:,} | {r['startup_s']:.2f} | {r['change_s']:.3f} | {r['one_node_s']:.3f} "
            f"| {r['full_s']:.2f} | {r['idle_mb']:.0f} → {r['loaded_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
