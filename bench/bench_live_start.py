"""A live broadcast's start at a province's size: how long `POST /live` takes to answer when it
targets N nodes (default 1,000), beside the same call targeting one node, in the same run, and
how long until every targeted node has applied the timeline that carries the live item.

The answer comes once every targeted node's timeline is computed, its deliveries planned and
the timelines published (QoS 1, acknowledged by the broker). `radio serve` runs on Mosquitto
and PostgreSQL, the nodes in emulator processes (one per core past 500 nodes), as in
bench_alert.py. Each round starts a live broadcast, waits for the nodes, then stops it.

Run: .venv/bin/python bench/bench_live_start.py [N] [--rounds R]   (default 1000, 5)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alert import System, log, split
from bench_scale import fresh_postgres

GOAL_S = 1.0


def start_and_stop(s: System, targets: dict[str, Any], expect: int) -> tuple[float, float]:
    """Seconds until the API answered, and until `expect` nodes applied the timeline."""
    t0 = time.perf_counter()
    r = s.http.post(
        "/live", json={"title": "Tiếp sóng", "priority": "priority", "targets": targets}
    )
    answered = time.perf_counter() - t0
    r.raise_for_status()
    live = r.json()
    deadline = time.time() + 120
    applied = float("nan")
    while time.time() < deadline:
        counts = s.http.get(f"/schedules/{live['schedule_id']}/deliveries").json()["counts"]
        reached = sum(v for k, v in counts.items() if k != "planned")
        if reached >= expect:
            applied = time.perf_counter() - t0
            break
        time.sleep(0.1)
    s.http.post(f"/live/{live['id']}/stop").raise_for_status()
    time.sleep(3)  # the stop's timelines go out before the next round
    return answered, applied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("nodes", type=int, nargs="?", default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    n = args.nodes
    with fresh_postgres() as url:
        s = System("mosquitto", n, split(n), database_url=url)
        try:
            s.prepare()
            s.start_controller()
            for k in range(len(s.groups)):
                s.start_fleet(k)
            log(f"{n} nodes online in {s.wait_online(n):.0f} s; settling")
            s.settle()
            one = sorted(p.stem for p in (s.data / "fleet0").glob("*.json"))[0]
            rows: dict[str, list[tuple[float, float]]] = {"one": [], "all": []}
            for k in range(args.rounds):
                rows["one"].append(start_and_stop(s, {"nodes": [one]}, 1))
                rows["all"].append(start_and_stop(s, {"areas": ["xa"]}, n))
                log(f"round {k + 1}: one node {rows['one'][-1]}, {n} nodes {rows['all'][-1]}")
        except Exception:
            log(s.tail())
            raise
        finally:
            s.dispose()
    print(f"\n{n:,} nodes on Mosquitto and PostgreSQL, {args.rounds} rounds, median (max)\n")
    print(
        "| targets | API answered, s | every target applied the timeline, s "
        f"| answered ≤ {GOAL_S:g} s |"
    )
    print("|---|---:|---:|---|")
    for key, label in (("one", "one node (baseline)"), ("all", f"{n:,} nodes")):
        answers = [a for a, _ in rows[key]]
        applied = [b for _, b in rows[key]]
        verdict = "—" if key == "one" else ("met" if max(answers) <= GOAL_S else "not met")
        print(
            f"| {label} | {statistics.median(answers):.2f} ({max(answers):.2f}) "
            f"| {statistics.median(applied):.2f} ({max(applied):.2f}) | {verdict} |"
        )


if __name__ == "__main__":
    main()
