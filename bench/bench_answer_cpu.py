"""The controller's CPU per answer: how much of the interpreter one GET of the node list takes,
beside GET /health on the same server, with N nodes registered (none connected), on PostgreSQL
and Mosquitto. CPU time comes from the kernel's per-thread accounting (schedstat), summed over
the controller's threads, so it counts the event loop's share and the worker threads' alike,
and the background work done in the same window (the alarm pass every 10 s among it), which
is not subtracted.

Run: .venv/bin/python bench/bench_answer_cpu.py [N] [--repeat R]   (default 10000 nodes, 100)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alert import System
from bench_scale import fresh_postgres, spent, thread_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", nargs="?", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    n = args.nodes
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET /health (baseline)", "/health", {}),
        ("GET /nodes, a page of 1", "/nodes", {"limit": 1}),
        ("GET /nodes, the first page of 100", "/nodes", {"limit": 100}),
        ("GET /nodes, the last page of 100 by offset", "/nodes", {"offset": n - 100}),
    ]
    with fresh_postgres() as url:
        s = System("mosquitto", n, [n], database_url=url)
        try:
            s.prepare()
            s.start_controller()
            assert s.ctl is not None
            for _ in range(20):
                s.http.get("/nodes").raise_for_status()
            time.sleep(70)  # past start-up's work (timelines, the heap's first freezes)
            print(f"\n{n:,} nodes registered, none connected; {args.repeat} answers of each\n")
            print("| answer | controller CPU per answer | wall per answer |")
            print("|---|---|---|")
            for what, path, params in cases:
                before = thread_times([s.ctl.pid])
                t = time.perf_counter()
                for _ in range(args.repeat):
                    s.http.get(path, params=params).raise_for_status()
                wall = (time.perf_counter() - t) / args.repeat * 1000
                each = spent(before, thread_times([s.ctl.pid]))
                cpu = sum(r for r, _ in each.values()) / args.repeat
                print(f"| {what} | {cpu:.2f} ms | {wall:.1f} ms |")
        finally:
            s.dispose()


if __name__ == "__main__":
    main()
