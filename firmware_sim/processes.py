"""A fleet larger than one event loop serves well, split across processes, with what each node
costs in memory and CPU reported as it runs.

One asyncio process keeps about 2,000–3,000 simulated nodes on time (timers, heartbeats and TLS
or MQTT keep-alives all share one loop); 10,000 nodes on a 2-core machine run as several
processes, each a shard (`--shard i/N`) of the same provisioning directory, each writing its
summary to a status file that the parent reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.fleet import Fleet
from protocol import gc_pauses

STATUS_EVERY_S = 2.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' → (2, 4): the third of four shards (0-based index)."""
    try:
        index, count = (int(part) for part in text.split("/", 1))
    except ValueError:
        raise ValueError(f"--shard {text!r}: write INDEX/COUNT, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: INDEX must be 0 to COUNT-1")
    return index, count


def proc_usage(pid: int) -> tuple[float, float]:
    """(resident MB, CPU seconds so far) of a process, from /proc."""
    try:
        rss = 0.0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        return rss, cpu
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


async def write_status(fleet: Fleet, path: Path) -> None:
    """Every few seconds, the shard's summary for the parent (atomically replaced)."""
    pauses = gc_pauses.install()
    while True:
        s = fleet.summary()
        rss, cpu = proc_usage(os.getpid())
        record = {
            "pid": os.getpid(),
            "nodes": s.nodes,
            "connected": s.connected,
            "played": s.played,
            "events_pending": s.events_pending,
            "events_made": s.events_made,
            "events_dropped": s.events_dropped,
            "prefetching": s.prefetching,
            "last_report_at": s.last_report_at,
            "rss_mb": rss,
            "cpu_s": cpu,
            "gc": pauses.summary(),  # the garbage collector's pauses: every node waits
            "ts": time.time(),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
        await asyncio.sleep(STATUS_EVERY_S)


@dataclass
class Usage:
    nodes: int
    connected: int
    rss_mb: float
    cpu_percent: float
    processes: int

    def line(self) -> str:
        per_node_kb = self.rss_mb * 1024 / self.nodes if self.nodes else 0.0
        per_node_cpu = self.cpu_percent / self.nodes if self.nodes else 0.0
        return (
            f"{self.connected}/{self.nodes} nodes connected in {self.processes} processes; "
            f"memory {self.rss_mb:.0f} MB ({per_node_kb:.0f} KB per node); "
            f"CPU {self.cpu_percent:.0f} % ({per_node_cpu * 1000:.1f} ‰ of a core per node)"
        )


def read_usage(status_dir: Path, last: dict[int, tuple[float, float]]) -> Usage:
    """Sum the shards' status files; CPU % from the change since the previous reading."""
    nodes = connected = 0
    rss = cpu_percent = 0.0
    files = sorted(status_dir.glob("*.json"))
    for f in files:
        try:
            r: dict[str, Any] = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        nodes += int(r["nodes"])
        connected += int(r["connected"])
        rss += float(r["rss_mb"])
        pid, cpu_s, ts = int(r["pid"]), float(r["cpu_s"]), float(r["ts"])
        if pid in last and ts > last[pid][1]:
            cpu_percent += 100 * (cpu_s - last[pid][0]) / (ts - last[pid][1])
        last[pid] = (cpu_s, ts)
    return Usage(nodes, connected, rss, cpu_percent, len(files))


def run_processes(count: int, child_args: list[str], report_every_s: float = 10.0) -> int:
    """Run `count` shards of the fleet as child processes until interrupted; report usage."""
    status_dir = Path(tempfile.mkdtemp(prefix="fleet-status-"))
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "firmware_sim",
                *child_args,
                "--shard",
                f"{i}/{count}",
                "--status-file",
                str(status_dir / f"{i}.json"),
            ]
        )
        for i in range(count)
    ]
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    last: dict[int, tuple[float, float]] = {}
    code = 0
    try:
        while not stopping:
            deadline = time.monotonic() + report_every_s
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
                if any(c.poll() is not None for c in children):
                    code = next(c.returncode for c in children if c.poll() is not None) or 1
                    stopping = True
            print(read_usage(status_dir, last).line(), flush=True)
    finally:
        for c in children:
            if c.poll() is None:
                c.terminate()
        for c in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.wait(20)
            if c.poll() is None:
                c.kill()
    return code
