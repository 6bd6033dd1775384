"""Province scale on Mosquitto: N nodes (default 10,000) in several emulator processes against one
controller. Measures the time for every node to come online, the controller's memory, the
emulator's memory and CPU per node, API latency (p50, p99) of the node list and of an alert's
per-node view beside a trivial endpoint on the same server, and a template alert's fan-out beside
a bare broker's fan-out of one message to as many plain subscribers.

Production mode: PostgreSQL (a fresh database on the server at RADIO_BENCH_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) and Mosquitto; `--sqlite` runs on SQLite instead.

Run: .venv/bin/python bench/bench_scale.py [N] [--sqlite] [--per-process=K] [--trace-memory=DIR]
     [--profile=DIR]
     (default 10000 nodes, one emulator process per core; needs mosquitto)
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_alert
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

from firmware_sim.processes import STATUS_EVERY_S


def process_groups(s: System) -> dict[str, list[int]]:
    """The processes that share the machine's cores during the bench, by role. PostgreSQL is
    every process of the server (the bench's database and any other on the machine)."""
    postgres = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == "postgres"
    ]
    return {
        "controller": [s.ctl.pid] if s.ctl else [],
        "emulator": [p.pid for p in s.fleets],
        "broker": [s.mosq.pid] if s.mosq else [],
        "postgres (server)": postgres,
    }


def _owner(proc: Path) -> str:
    try:
        return pwd.getpwuid(proc.stat().st_uid).pw_name
    except (OSError, KeyError):
        return ""


Threads = dict[tuple[int, int], tuple[int, int]]  # (pid, tid) → (ns on a CPU, ns waiting)


def thread_times(pids: list[int]) -> Threads:
    """Per thread of `pids`: (ns on a CPU, ns waiting for one), from /proc's schedstat."""
    times: Threads = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    run, wait = Path(task, "schedstat").read_text().split()[:2]
                    times[(pid, int(task.name))] = (int(run), int(wait))
    return times


def spent(before: Threads, after: Threads) -> dict[tuple[int, int], tuple[float, float]]:
    """What each thread alive at the end did since `before`, in ms; a thread that started
    meanwhile counts from zero, one that ended is left out (its time is not known)."""
    return {
        key: ((r - before.get(key, (0, 0))[0]) / 1e6, (w - before.get(key, (0, 0))[1]) / 1e6)
        for key, (r, w) in after.items()
    }


@dataclass
class Slow:
    """An answer over 50 ms: what each group of processes did meanwhile (ms on a CPU, ms
    waiting for one), and the controller's threads that ran most (by OS thread id)."""

    what: str
    ms: float
    groups: dict[str, tuple[float, float]]
    threads: list[tuple[int, float, float]]


SLOW: list[Slow] = []
# Answers per kind of node-list page: enough for a p99 that is not simply the slowest one.
LIST_ANSWERS = 200


def latency(s: System, path: str, n: int = 30, **params: Any) -> tuple[float, float]:
    """p50 and p99 of n answers to a GET, in ms (of fewer than 100, the p99 is the slowest;
    of 200, the second slowest). Each answer over 50 ms is kept in SLOW
    with what the machine did meanwhile: whether it waited for the controller's own work or
    for cores shared with the emulators, the broker and the database."""
    times = []
    for _ in range(n):
        groups = process_groups(s)
        before = {g: thread_times(pids) for g, pids in groups.items()}
        t = time.perf_counter()
        s.http.get(path, params=params).raise_for_status()
        ms = (time.perf_counter() - t) * 1000
        times.append(ms)
        if ms > 50:
            used: dict[str, tuple[float, float]] = {}
            threads: list[tuple[int, float, float]] = []
            for g, pids in groups.items():
                each = spent(before[g], thread_times(pids))
                used[g] = (sum(r for r, _ in each.values()), sum(w for _, w in each.values()))
                if g == "controller":
                    threads = sorted(
                        ((tid, r, w) for (_, tid), (r, w) in each.items()), key=lambda x: -x[1]
                    )
            SLOW.append(Slow(f"{path} {params}", ms, used, [x for x in threads[:4] if x[1] >= 1]))
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def gc_pauses(s: System) -> dict[str, float]:
    """The controller's garbage collections so far, as its /metrics counts them."""
    base = str(s.http.base_url).rstrip("/").removesuffix("/api/v1")
    text = s.http.get(f"{base}/metrics").raise_for_status().text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("radio_gc_pause_seconds")
    }


def gc_summary(before: dict[str, float], after: dict[str, float]) -> str:
    """Per generation: collections meanwhile, their total and how many held the interpreter
    over 25 ms."""
    parts = []
    for g in (0, 1, 2):
        count = f'radio_gc_pause_seconds_count{{generation="{g}"}}'
        total = f'radio_gc_pause_seconds_sum{{generation="{g}"}}'
        within = f'radio_gc_pause_seconds_bucket{{generation="{g}",le="0.025"}}'
        n = after[count] - before[count]
        over = n - (after[within] - before[within])
        ms = (after[total] - before[total]) * 1000
        parts.append(f"generation {g}: {n:.0f} ({ms:.0f} ms in all, {over:.0f} over 25 ms)")
    return "; ".join(parts)


def fleet_gc(s: System) -> list[dict[str, dict[str, float]]]:
    """Each emulator process's garbage collections so far (its status file, every 2 s)."""
    return [
        json.loads((s.data / f"fleet{k}.status.json").read_text()).get("gc", {})
        for k in range(len(s.fleets))
    ]


def fleet_gc_summary(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    parts = []
    for k, (a, b) in enumerate(zip(before, after, strict=True)):
        if "2" not in a or "2" not in b:
            parts.append(f"process {k}: not reported")
            continue
        n = b["2"]["count"] - a["2"]["count"]
        ms = (b["2"]["total_s"] - a["2"]["total_s"]) * 1000
        longest = b["2"]["longest_s"] * 1000
        parts.append(
            f"process {k}: {n:.0f} of the oldest generation ({ms:.0f} ms in all; "
            f"the longest since it started {longest:.0f} ms)"
        )
    return "; ".join(parts)


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id → Python thread name, through py-spy when it is installed."""
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY", "")
    if not spy or not pid:
        return {}
    try:
        out = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(m[1]): m[2] for m in re.finditer(r'^Thread (\d+) \([^)]*\): "([^"]*)"', out, re.M)}


def snapshot(s: System, trace: str, number: int) -> None:
    """Ask a traced controller for its snapshot `number` and wait until it is written."""
    if not trace or s.ctl is None:
        return
    os.kill(s.ctl.pid, signal.SIGUSR1)
    path = Path(trace) / f"snap-{number}.pickle"
    deadline = time.time() + 300
    while not path.exists() and time.time() < deadline:
        time.sleep(0.5)
    log(f"memory snapshot {path}")


def deep_id(s: System, rows: int) -> str:
    """The id ending the first `rows` nodes (a client walking the list by `next_after` has it)."""
    page = s.http.get("/nodes", params={"offset": rows - 1, "limit": 1}).json()
    return str(page["items"][0]["id"])


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
    # One emulator process per core (--per-process N: N nodes each instead).
    per = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--per-process=")), 0)
    per = per or -(-n // (os.cpu_count() or 1))
    groups = [per] * (n // per) + ([n % per] if n % per else [])
    s = System("mosquitto", n, groups, database_url=database_url)
    # --profile=DIR: py-spy samples of the controller and the emulators over the alert's first
    # 3 s (collapsed stacks; py-spy next to the interpreter). Not for the tables.
    profile_to = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--profile=")), "")
    if profile_to:
        bench_alert.PROFILE_DIR = Path(profile_to)
    # --trace-memory=DIR: the controller under tracemalloc (bench/memtrace.py), a snapshot when
    # idle and one with the nodes online; compare them with `memtrace.py --compare`.
    trace = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--trace-memory=")), "")
    if trace:
        s.controller_cmd = [sys.executable, str(Path(__file__).parent / "memtrace.py"), trace]
        s.start_timeout = 600
    try:
        t = time.time()
        s.prepare()
        log(f"registered {n} nodes in {time.time() - t:.0f} s")
        s.start_controller()
        idle_mb = rss_mb(s.ctl.pid) if s.ctl else 0.0
        snapshot(s, trace, 1)
        for k in range(len(groups)):
            s.start_fleet(k)
        up = s.wait_online(n)
        log(f"{n} online in {up:.1f} s; settling")
        s.settle()
        ctl_mb = rss_mb(s.ctl.pid) if s.ctl else 0.0
        snapshot(s, trace, 2)
        fleet_pids = [p.pid for p in s.fleets]
        fleet_mb = sum(rss_mb(p) for p in fleet_pids)
        hz = os.sysconf("SC_CLK_TCK")
        a = cpu_ticks(fleet_pids)
        time.sleep(30)
        fleet_cpu = (cpu_ticks(fleet_pids) - a) / hz / 30  # cores, idle fleet (heartbeats)
        gc_before = gc_pauses(s)
        health = latency(s, "/health")
        # The node list a page at a time: the first page, a state filter, a search, the last
        # page by a count of rows (a typed page number) and by ids, as the console's table asks.
        lists = {
            "first page": latency(s, "/nodes", LIST_ANSWERS),
            "state=offline": latency(s, "/nodes", LIST_ANSWERS, state="offline"),
            "q=0042 (search)": latency(s, "/nodes", LIST_ANSWERS, q="0042"),
            "last page (offset)": latency(s, "/nodes", LIST_ANSWERS, offset=max(0, n - 100)),
            "last page (after)": latency(s, "/nodes", LIST_ANSWERS, after=deep_id(s, n - 100)),
            # The console's table: its last page, and back from it.
            "last page (last)": latency(s, "/nodes", LIST_ANSWERS, last="true"),
            "the page before the last (before)": latency(
                s, "/nodes", LIST_ANSWERS, before=deep_id(s, n - 99)
            ),
        }
        gc_meanwhile = gc_summary(gc_before, gc_pauses(s))
        names = thread_names(s.ctl.pid if s.ctl else 0)  # for the slow answers' threads
        fleet_gc_before = fleet_gc(s)
        res = issue_and_watch(
            s, {"areas": ["xa"], "template": "flood", "repeat": 1}, n, 60 + n / 50
        )
        summary = summarise(res)
        view = latency(s, f"/alerts/{res['id']}", 20, silent_after_s=3600)
        s.http.post(f"/alerts/{res['id']}/cancel")
        time.sleep(STATUS_EVERY_S)  # the emulators' status files written once more since
        fleet_gc_during = fleet_gc_summary(fleet_gc_before, fleet_gc(s))
    except Exception:
        log(s.tail())
        raise
    finally:
        s.dispose()
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
        f"| {idle_mb:.0f} MB idle | ≤ 250 MB | {'met' if ctl_mb <= 250 else 'not met'} |"
    )
    print(
        f"| emulator RSS | {fleet_mb:.0f} MB ({fleet_mb * 1024 / n:.0f} KB per node) | — | < 100 KB per node "
        f"| {'met' if fleet_mb * 1024 / n < 100 else 'not met'} |"
    )
    print(
        f"| emulator CPU, idle fleet (heartbeats) | {fleet_cpu * 100:.0f} % of a core "
        f"({fleet_cpu * 1e3 / n:.3f} ‰ of a core per node) | — | < 1 core | {'met' if fleet_cpu < 1 else 'not met'} |"
    )
    for what, (p50, p99) in lists.items():
        print(
            f"| GET /nodes of {n:,}, a page of 100: {what}, p50 / p99 of {LIST_ANSWERS} "
            f"| {p50:.1f} / {p99:.1f} ms "
            f"| GET /health {health[0]:.1f} / {health[1]:.1f} ms | p99 ≤ 50 ms "
            f"| {'met' if p99 <= 50 else 'not met'} |"
        )
    print(
        f"| GET /alerts/{{id}} ({n:,} nodes) p50 / p99 | {view[0]:.0f} / {view[1]:.0f} ms "
        f"| GET /health {health[0]:.1f} / {health[1]:.1f} ms | p99 < 2 s | {'met' if view[1] < 2000 else 'not met'} |"
    )
    rec, st = summary["rec"], summary["st"]
    print(
        f"| template alert: received p50 / p95 / max | {f3(rec)} s ({summary['received']} of {n}) "
        f"| bare broker {f3(bs)} s ({base['received']} of {n}) | ≤ 2.0× bare (max) "
        f"| {'met' if rec[2] <= 2.0 * bs[2] else 'not met'} ({rec[2] / bs[2]:.1f}×) |"
    )
    print(
        f"| template alert: playing p50 / p95 / max | {f3(st)} s ({summary['started']} of {n}) "
        f"| — | all within 2 s | {'met' if summary['started'] == n and st[2] <= 2 else 'not met'} |"
    )
    print(f"\nThe controller's garbage collections while the node list was asked: {gc_meanwhile}")
    print(
        f"The emulators' garbage collections from the alert to the view's answers: {fleet_gc_during}"
    )
    if SLOW:
        print("\nAnswers over 50 ms; meanwhile, per group of processes, ms on a CPU / ms waiting")
        print("for one; then the controller's busiest threads (ms on a CPU / waiting):")
        for slow in SLOW:
            cpu = ", ".join(f"{g} {r:.0f}/{w:.0f}" for g, (r, w) in slow.groups.items())
            busy = ", ".join(f"{names.get(t, t)} {r:.0f}/{w:.0f}" for t, r, w in slow.threads)
            print(f"  {slow.what}: {slow.ms:.1f} ms; {cpu}; threads: {busy}")


if __name__ == "__main__":
    main()
