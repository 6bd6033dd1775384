"""How long the garbage collector holds the interpreter. Every thread waits while it runs (the
event loop included), and a collection of the oldest generation walks every container object
the process keeps: in a controller or an emulator of thousands of nodes, that can be long.

One record per process (the collector is the process's): the controller's `/metrics` shows it
as the histogram `radio_gc_pause_seconds` by generation, the emulator's status file as `gc`."""

from __future__ import annotations

import gc
import threading
import time
from bisect import bisect_left
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GENERATIONS = (0, 1, 2)


class GcPauses:
    """Collections per generation, by how long each held the interpreter."""

    def __init__(self) -> None:
        # Per generation: how many collections fell in each bucket (the last: above them all).
        self.counts = {g: [0] * (len(BUCKETS) + 1) for g in GENERATIONS}
        self.total_s = dict.fromkeys(GENERATIONS, 0.0)
        self.longest_s = dict.fromkeys(GENERATIONS, 0.0)
        self._started: float | None = None

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Called by the collector, holding the interpreter: one collection at a time.
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return  # installed during a collection
        took = time.perf_counter() - self._started
        self._started = None
        generation = info.get("generation", 2)
        if generation not in self.counts:
            return
        self.counts[generation][bisect_left(BUCKETS, took)] += 1
        self.total_s[generation] += took
        self.longest_s[generation] = max(self.longest_s[generation], took)

    def cumulative(self, generation: int) -> list[tuple[str, int]]:
        """Prometheus histogram buckets: (upper bound, collections at most that long)."""
        out, seen = [], 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.counts[generation], strict=True):
            seen += n
            out.append((bound, seen))
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        """Per generation: collections, seconds in all, the longest."""
        return {
            str(g): {
                "count": sum(self.counts[g]),
                "total_s": self.total_s[g],
                "longest_s": self.longest_s[g],
            }
            for g in GENERATIONS
        }


PAUSES = GcPauses()
_installed = threading.Lock()


def install() -> GcPauses:
    """Start timing collections in this process (once, however often called)."""
    with _installed:
        if PAUSES.on_gc not in gc.callbacks:
            gc.callbacks.append(PAUSES.on_gc)
    return PAUSES
