"""A soak: N nodes (default 1,000) for hours (default 2) on Mosquitto and PostgreSQL, with a
broadcast every 10 minutes (a one-time schedule of a short announcement for every node, made a
minute before it plays), an emergency alert every 30 minutes (a template, played once, cancelled
two minutes later; half a broadcast interval away from the broadcasts) and 5 % of the nodes
flapping (their link cut and restored, FLAP_PERIOD_S apart, by the emulator's `flap` fault).

Every minute it samples the resident memory of the controller, the emulator and the broker.
At the end, once the nodes' outboxes are empty, it compares what the nodes made with what was
stored: every event the emulator's nodes put in their outboxes (its status file's
`events_made`, less `events_dropped`) must be one row of `node_event_records`. It counts the
lines of ERROR, CRITICAL or Traceback in the controller's and the emulator's logs.

Goals (issue: "The controller keeps up with a province"): memory flat (growth under 10 %:
the mean of the last 15 minutes' samples against the mean of the first 15 after a 10-minute
warm-up), nothing lost, nothing stored twice, no error in the logs.

Run: .venv/bin/python bench/bench_soak.py                      (1,000 nodes, 2 hours)
     .venv/bin/python bench/bench_soak.py --nodes 100 --minutes 8 --broadcast-every 120 \\
         --alert-every 240 --warmup 60 --window 120               (a short rehearsal)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alert import System, log, rss_mb
from bench_scale import fresh_postgres

FLAP_SHARE = 0.05
FLAP_PERIOD_S = 120.0  # a flapping node's link: cut for half of this, then up for half
SAMPLE_S = 60.0
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


def scenario(path: Path, node_ids: list[str]) -> None:
    nodes = ", ".join(json.dumps(n) for n in node_ids)
    path.write_text(f'[[fault]]\nnodes = [{nodes}]\nkind = "flap"\nperiod = {FLAP_PERIOD_S}\n')


def fleet_status(s: System) -> dict[str, int]:
    totals: dict[str, int] = {}
    for k in range(len(s.groups)):
        record = json.loads((s.data / f"fleet{k}.status.json").read_text())
        for key in ("events_made", "events_dropped", "events_pending", "connected", "played"):
            totals[key] = totals.get(key, 0) + int(record.get(key, 0))
    return totals


def stored_events(database_url: str) -> tuple[int, int]:
    """Rows of node events, and distinct ids among them (the primary key: equal, or broken)."""
    import psycopg

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT id) FROM nodeeventrecord").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def error_lines(s: System) -> list[str]:
    found = []
    for name in ["controller.log", *(f"fleet{k}.log" for k in range(len(s.groups)))]:
        path = s.data / name
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if ERROR_LINE.search(line):
                    found.append(f"{name}: {line[:300]}")
    return found


def close_alert(s: System, alerts: list[dict[str, Any]], aid: str) -> None:
    """Note how many nodes started sounding the alert, then cancel it."""
    view = s.http.get(f"/alerts/{aid}").json()
    started = sum(x["started_at"] is not None for x in view["nodes"])
    next(a for a in alerts if a["id"] == aid)["started"] = started
    r = s.http.post(f"/alerts/{aid}/cancel")
    if r.status_code != 409:  # 409: it had ended by itself (played its repeats)
        r.raise_for_status()
    log(f"alert {aid}: {started} nodes started sounding")


def sample(s: System, t0: float) -> dict[str, float]:
    return {
        "t": time.time() - t0,
        "controller": rss_mb(s.ctl.pid) if s.ctl else 0.0,
        "emulator": sum(rss_mb(p.pid) for p in s.fleets),
        "broker": rss_mb(s.mosq.pid) if s.mosq else 0.0,
    }


def growth(samples: list[dict[str, float]], key: str, warmup: float, window: float) -> str:
    first = [x[key] for x in samples if warmup <= x["t"] < warmup + window]
    last = [x[key] for x in samples if x["t"] >= samples[-1]["t"] - window]
    if not first or not last:
        return "— (too short)"
    a, b = statistics.mean(first), statistics.mean(last)
    verdict = "met" if b < a * 1.10 else "not met"
    return f"{a:.0f} → {b:.0f} MB ({(b / a - 1) * 100:+.1f} %; max {max(x[key] for x in samples):.0f}) | {verdict}"


def run(args: argparse.Namespace) -> None:
    n = args.nodes
    with fresh_postgres() as database_url:
        s = System("mosquitto", n, [n], database_url=database_url)
        try:
            s.prepare()
            ids = sorted(p.stem for p in (s.data / "fleet0").glob("*.json"))
            flapping = ids[: max(1, round(n * FLAP_SHARE))]
            scenario(s.data / "flap.toml", flapping)
            s.fleet_args = ["--scenario", str(s.data / "flap.toml")]
            tracer = str(Path(__file__).resolve().parent / "memtrace.py")
            if args.trace_memory:
                s.controller_cmd = [sys.executable, tracer, args.trace_memory]
                s.start_timeout = 600
            if args.trace_emulator:
                s.fleet_cmd = [sys.executable, tracer, args.trace_emulator, "-m", "firmware_sim"]
            s.start_controller()
            s.start_fleet(0)
            up = s.wait_online(n - len(flapping))  # those may be cut at this moment
            log(
                f"{n} nodes online in {up:.0f} s; {len(flapping)} flapping every {FLAP_PERIOD_S:g} s"
            )
            announcement = s.announce()
            t0 = time.time()
            end = t0 + args.minutes * 60
            samples: list[dict[str, float]] = []
            broadcasts: list[dict[str, Any]] = []
            alerts: list[dict[str, Any]] = []
            next_sample = t0
            next_broadcast = t0 + args.broadcast_every
            # Half a broadcast interval away from any broadcast: an alert holds the speakers
            # while it plays, and a broadcast then would wait or be missed by design.
            next_alert = t0 + args.alert_every - args.broadcast_every / 2
            to_cancel: list[tuple[float, str]] = []
            scheduled: set[float] = set()
            while time.time() < end:
                now = time.time()
                if now >= next_sample:
                    samples.append(sample(s, t0))
                    next_sample += SAMPLE_S
                    s.login()  # access tokens last 15 minutes
                    if args.trace_memory and s.ctl:
                        os.kill(s.ctl.pid, signal.SIGUSR1)  # a tracemalloc snapshot
                    if args.trace_emulator and s.fleets:
                        os.kill(s.fleets[0].pid, signal.SIGUSR1)
                    x = samples[-1]
                    log(
                        f"{x['t'] / 60:.0f} min: controller {x['controller']:.0f} MB, emulator "
                        f"{x['emulator']:.0f} MB, broker {x['broker']:.0f} MB"
                    )
                # A broadcast's schedule is made a minute ahead of its time.
                if next_broadcast - 60 <= now < end - 90 and next_broadcast not in scheduled:
                    made = s.schedule(announcement, datetime.fromtimestamp(next_broadcast, UTC))
                    broadcasts.append({"id": made["id"], "at": next_broadcast})
                    if len(broadcasts) > 1:  # the one before has played by now
                        d = s.http.get(f"/schedules/{broadcasts[-2]['id']}/deliveries").json()
                        log(f"broadcast {len(broadcasts) - 1}: {d.get('counts')}")
                    # So far (events in flight between a node and the database differ a little).
                    st = fleet_status(s)
                    rows, distinct = stored_events(database_url)
                    log(
                        f"events made {st['events_made']:,} (dropped {st['events_dropped']}, "
                        f"pending {st['events_pending']}), stored {rows:,} ({distinct:,} distinct); "
                        f"error lines in the logs {len(error_lines(s))}"
                    )
                    scheduled.add(next_broadcast)
                if now >= next_broadcast:
                    next_broadcast += args.broadcast_every
                if now >= next_alert:
                    r = s.http.post(
                        "/alerts", json={"areas": ["xa"], "template": "flood", "repeat": 1}
                    )
                    r.raise_for_status()
                    alerts.append({"id": r.json()["id"], "at": now})
                    to_cancel.append((now + 120, r.json()["id"]))
                    next_alert += args.alert_every
                for due, aid in list(to_cancel):
                    if now >= due:
                        close_alert(s, alerts, aid)
                        to_cancel.remove((due, aid))
                time.sleep(1.0)
            for _due, aid in to_cancel:  # alerts issued in the last two minutes
                close_alert(s, alerts, aid)
            samples.append(sample(s, t0))
            for b in broadcasts:
                d = s.http.get(f"/schedules/{b['id']}/deliveries").json()
                b["counts"] = d.get("counts", d)
            # Let every node's link come back and its outbox empty (the flapping ones too).
            deadline = time.time() + FLAP_PERIOD_S * 3
            while time.time() < deadline:
                status = fleet_status(s)
                if status["events_pending"] == 0:
                    break
                time.sleep(2)
            status = fleet_status(s)
            time.sleep(5)  # the controller's writer: a batch at most 0.1 s old, then stored
            rows, distinct = stored_events(database_url)
            errors = error_lines(s)
        except Exception:
            log(s.tail())
            raise
        finally:
            s.dispose()

    made = status["events_made"] - status["events_dropped"]
    print(f"\nSoak: {n:,} nodes on Mosquitto and PostgreSQL for {args.minutes:g} min; ")
    print(f"{len(flapping)} flapping (period {FLAP_PERIOD_S:g} s); {len(broadcasts)} broadcasts, ")
    print(f"{len(alerts)} alerts; memory sampled every {SAMPLE_S:g} s\n")
    print("| measure | value | goal |")
    print("|---|---|---|")
    for key in ("controller", "emulator", "broker"):
        print(
            f"| {key} memory, first → last window | {growth(samples, key, args.warmup, args.window)} |"
        )
    lost = made - rows
    print(
        f"| events the nodes made (less {status['events_dropped']} dropped from full outboxes) "
        f"→ stored | {made:,} → {rows:,} ({distinct:,} distinct; {status['events_pending']} "
        f"still pending) | {'met' if lost == 0 and rows == distinct and not status['events_pending'] else 'not met'} |"
    )
    print(
        f"| ERROR / CRITICAL / Traceback lines in the logs | {len(errors)} | {'met' if not errors else 'not met'} |"
    )
    for line in errors[:20]:
        print(f"    {line}")
    print("\nBroadcasts (deliveries per schedule):")
    for b in broadcasts:
        print(
            f"  {datetime.fromtimestamp(b['at'], UTC) + timedelta(hours=7):%H:%M} {b.get('counts')}"
        )
    print("Alerts (nodes started sounding, read two minutes after the call):")
    for a in alerts:
        print(
            f"  {datetime.fromtimestamp(a['at'], UTC) + timedelta(hours=7):%H:%M} {a.get('started')} of {n}"
        )
    print("\nMemory samples (minutes: controller / emulator / broker MB):")
    print(
        "  "
        + "; ".join(
            f"{x['t'] / 60:.0f}: {x['controller']:.0f}/{x['emulator']:.0f}/{x['broker']:.0f}"
            for x in samples
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--broadcast-every", type=float, default=600, help="seconds")
    parser.add_argument("--alert-every", type=float, default=1800, help="seconds")
    parser.add_argument("--warmup", type=float, default=600, help="seconds before the first window")
    parser.add_argument(
        "--trace-memory",
        metavar="DIR",
        help="run the controller under tracemalloc, a snapshot in DIR every sample (slow)",
    )
    parser.add_argument(
        "--trace-emulator",
        metavar="DIR",
        help="run the emulator under tracemalloc, a snapshot in DIR every sample (slow)",
    )
    parser.add_argument("--window", type=float, default=900, help="seconds of each memory window")
    args = parser.parse_args()
    if args.trace_memory and args.trace_memory == args.trace_emulator:
        parser.error("--trace-memory and --trace-emulator need directories of their own")
    run(args)


if __name__ == "__main__":
    main()
