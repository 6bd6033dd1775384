"""Run `radio` (or the emulator) under tracemalloc; on SIGUSR1 write DIR/snap-<n>.pickle.

A bench tool: it finds what a long-running process keeps. Start the controller as
`python bench/memtrace.py DIR serve ...` instead of `python -m radio.cli serve ...` (the
emulator as `python bench/memtrace.py DIR -m firmware_sim ...`), send it SIGUSR1 whenever a
snapshot is wanted, then compare two snapshots:

    python bench/memtrace.py --compare DIR/snap-1.pickle DIR/snap-5.pickle

Tracing slows the process (every allocation records its stack): its timings are not for tables.
"""

from __future__ import annotations

import gc
import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path

FRAMES = int(os.environ.get("RADIO_TRACE_FRAMES", "8"))


def compare(a: str, b: str, top: int = 25) -> None:
    first = tracemalloc.Snapshot.load(a)
    second = tracemalloc.Snapshot.load(b)
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    first, second = first.filter_traces(ignore), second.filter_traces(ignore)
    total = sum(s.size for s in second.statistics("filename")) - sum(
        s.size for s in first.statistics("filename")
    )
    print(f"traced growth {total / 1e6:+.2f} MB")
    for stat in second.compare_to(first, "traceback")[:top]:
        print(f"\n{stat.size_diff / 1e3:+.1f} kB in {stat.count_diff:+d} blocks")
        for line in stat.traceback.format(limit=FRAMES):
            print("   ", line)


def main() -> None:
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 25)
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    count = 0

    def dump(_signum: int, _frame: object) -> None:
        nonlocal count
        count += 1
        gc.collect()
        tracemalloc.take_snapshot().dump(str(out / f"snap-{count}.pickle"))

    signal.signal(signal.SIGUSR1, dump)
    if sys.argv[2] == "-m":
        sys.argv = [sys.argv[3], *sys.argv[4:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
        return
    sys.argv = ["radio", *sys.argv[2:]]
    from radio.cli import app

    app()


if __name__ == "__main__":
    main()
