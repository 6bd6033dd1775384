"""Province scale on Mosquitto: N nodes (default 10,000) in several emulator processes against one
controller. Measures the time for every node to come online, the controller's memory, the
emulator's memory and CPU per node, API latency (p50, p99) of the node list and of an alert's
per-node view beside a trivial endpoint on the same server, and a template alert's fan-out beside
a bare broker's fan-out of one message to as many plain subscribers.

Production mode: PostgreSQL (a fresh database on the server at RADIO_BENCH_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) and Mosquitto; `--sqlite` runs on SQLite instead.

Run: .venv/bin/python bench/bench_scale.py [N] [--sqlite]   (default 10000; needs mosquitto)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alert import (
    System,
    baseline,
    cpu_ticks,
    f3,
    issue_and_watch,
    log,
    rss_mb,
    stats,
    summarise,
)

PER_PROCESS = 2500


def latency(s: System, path: str, n: int = 30, **params: Any) -> tuple[float, float]:
    """p50 and p99 (the worst of n) of a GET, in ms."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s.http.get(path, params=params).raise_for_status()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped afterwards."""
    import psycopg

    server = os.environ.get(
        "RADIO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"radio_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 10_000
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed")
    with contextlib.ExitStack() as stack:
        url = None if "--sqlite" in sys.argv else stack.enter_context(fresh_postgres())
        run(n, url)


def run(n: int, database_url: str | None) -> None:
    groups = [PER_PROCESS] * (n // PER_PROCESS) + ([n % PER_PROCESS] if n % PER_PROCESS else [])
    s = System("mosquitto", n, groups, database_url=database_url)
    try:
        t = time.time()
        s.prepare()
        log(f"registered {n} nodes in {time.time() - t:.0f} s")
        s.start_controller()
        idle_mb = rss_mb(s.ctl.pid) if s.ctl else 0.0
        for k in range(len(groups)):
            s.start_fleet(k)
        up = s.wait_online(n)
        log(f"{n} online in {up:.1f} s; settling")
        s.settle()
        ctl_mb = rss_mb(s.ctl.pid) if s.ctl else 0.0
        fleet_pids = [p.pid for p in s.fleets]
        fleet_mb = sum(rss_mb(p) for p in fleet_pids)
        hz = os.sysconf("SC_CLK_TCK")
        a = cpu_ticks(fleet_pids)
        time.sleep(30)
        fleet_cpu = (cpu_ticks(fleet_pids) - a) / hz / 30  # cores, idle fleet (heartbeats)
        health = latency(s, "/health")
        nodes = latency(s, "/nodes", 20)
        res = issue_and_watch(
            s, {"areas": ["xa"], "template": "flood", "repeat": 1}, n, 60 + n / 50
        )
        summary = summarise(res)
        view = latency(s, f"/alerts/{res['id']}", 20, silent_after_s=3600)
        s.http.post(f"/alerts/{res['id']}/cancel")
    except Exception:
        log(s.tail())
        raise
    finally:
        s.close()
        if os.environ.get("RADIO_BENCH_KEEP"):
            log(f"kept {s.data}")
        else:
            shutil.rmtree(s.data, ignore_errors=True)
    log("bare broker baseline")
    base = baseline("mosquitto", n)
    bs = stats(base["lat"])

    db = "PostgreSQL" if database_url else "SQLite"
    print(f"\n{n:,} nodes on Mosquitto and {db}, emulator in {len(groups)} processes\n")
    print("| measure | value | baseline (same run) | goal | met |")
    print("|---|---|---|---|---|")
    print(
        f"| all nodes online after the fleet starts | {up:.1f} s | — | < 120 s | {'met' if up < 120 else 'not met'} |"
    )
    print(
        f"| controller RSS | {ctl_mb:.0f} MB ({(ctl_mb - idle_mb) * 1024 / n:.0f} KB per node above idle) "
        f"| {idle_mb:.0f} MB idle | < 1 GB | {'met' if ctl_mb < 1024 else 'not met'} |"
    )
    print(
        f"| emulator RSS | {fleet_mb:.0f} MB ({fleet_mb * 1024 / n:.0f} KB per node) | — | < 100 KB per node "
        f"| {'met' if fleet_mb * 1024 / n < 100 else 'not met'} |"
    )
    print(
        f"| emulator CPU, idle fleet (heartbeats) | {fleet_cpu * 100:.0f} % of a core "
        f"({fleet_cpu * 1e3 / n:.3f} ‰ of a core per node) | — | < 1 core | {'met' if fleet_cpu < 1 else 'not met'} |"
    )
    print(
        f"| GET /nodes ({n:,} rows) p50 / p99 | {nodes[0]:.0f} / {nodes[1]:.0f} ms "
        f"| GET /health {health[0]:.1f} / {health[1]:.1f} ms | p99 < 2 s | {'met' if nodes[1] < 2000 else 'not met'} |"
    )
    print(
        f"| GET /alerts/{{id}} ({n:,} nodes) p50 / p99 | {view[0]:.0f} / {view[1]:.0f} ms "
        f"| GET /health {health[0]:.1f} / {health[1]:.1f} ms | p99 < 2 s | {'met' if view[1] < 2000 else 'not met'} |"
    )
    rec, st = summary["rec"], summary["st"]
    print(
        f"| template alert: received p50 / p95 / max | {f3(rec)} s ({summary['received']} of {n}) "
        f"| bare broker {f3(bs)} s ({base['received']} of {n}) | ≤ 1.5× bare (max) "
        f"| {'met' if rec[2] <= 1.5 * bs[2] else 'not met'} ({rec[2] / bs[2]:.1f}×) |"
    )
    print(
        f"| template alert: playing p50 / p95 / max | {f3(st)} s ({summary['started']} of {n}) "
        f"| — | all within 1 s | {'met' if summary['started'] == n and st[2] <= 1 else 'not met'} |"
    )


if __name__ == "__main__":
    main()
