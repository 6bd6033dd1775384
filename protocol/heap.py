"""Garbage collection for the long-running processes (controller, node fleets).

A fleet of 1,000 simulated nodes, or a controller holding a province, keeps millions of
long-lived objects. CPython's full (generation 2) collection walks all of them: measured in a
1,000-node fleet process, 180-300 ms with the event loop stopped, every few seconds while
nodes were busy. An alert arriving during one waited for it. Once the process has built what
it keeps, `gc.freeze()` moves those objects out of the collector's sight (they are still freed
by reference counting when dropped); collections then walk only what was made since.

What a busy moment makes lives a few seconds, and that is enough to reach the oldest generation
with CPython's default thresholds (a young collection every 700 new objects). In two emulator
processes of 5,000 nodes each, during a template alert, each process ran seven full collections
in five seconds, growing from 0.1 s to 0.5 s each and freeing next to nothing:
each walked every node's sounding (its tasks, timers and futures) again. A young collection
every 50,000 new objects lets such objects end before anything promotes them: no full
collection during the alert since (docs/benchmarks.md, "Province scale", runs 12 and 14–16).
The threshold counts objects made less objects freed: what reference counting frees brings no
collection about; what lives on, and garbage held in cycles, do.

The C allocator keeps what Python frees. glibc gives every thread that allocates an arena of
its own (up to eight per core), and keeps freed memory in each for reuse; a long run whose
threads (database, signing, file reads) take turns spreads its peaks over many arenas, and the
resident size steps up at each busy moment without coming down. Measured in 14-minute soaks of
1,000 nodes side by side: +5.9 % with glibc's defaults, +3.5 % with two arenas; a
`malloc_trim(0)` given to a controller after two hours returned 5 MB. So the processes cap the
arenas at start (unless the operator set `MALLOC_ARENA_MAX`) and give freed pages back now and
then. Elsewhere than glibc both are skipped.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import logging
import os
import time

log = logging.getLogger(__name__)

# After start-up (nodes connected, timelines and templates fetched), then now and then, so
# that what a long run builds later (new nodes, caches) leaves the collector's sight too.
FREEZE_AFTER_S = (15.0, 60.0)
FREEZE_EVERY_S = 600.0
# Freed pages go back to the system this often (a trim of a 300 MB heap takes milliseconds).
TRIM_EVERY_S = 60.0
ARENAS = 2
# A young collection after this many new container objects (CPython's default: 700); the
# middle and oldest generations keep their defaults (every 10 collections of the one below).
YOUNG_THRESHOLD = 50_000
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library's among them
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas() -> bool:
    """Cap glibc's malloc arenas; call before the process starts threads. True if capped;
    an operator's MALLOC_ARENA_MAX or glibc.malloc.arena_max tunable stands."""
    libc = _glibc()
    chosen = os.environ.get("MALLOC_ARENA_MAX") or "arena_max" in os.environ.get(
        "GLIBC_TUNABLES", ""
    )
    if libc is None or chosen:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, ARENAS))


def give_back_free_memory() -> bool:
    """Return the allocator's free pages to the system; True if any were returned."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def collect_less_often() -> None:
    """Raise the youngest generation's threshold to YOUNG_THRESHOLD (see above)."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)


def freeze_long_lived() -> float:
    """Collect what is garbage now, then freeze the survivors; the seconds it took."""
    t = time.perf_counter()
    gc.collect()
    gc.freeze()
    took = time.perf_counter() - t
    frozen = gc.get_freeze_count()
    log.info("heap: %d objects frozen out of collection (%.0f ms)", frozen, took * 1e3)
    return took


async def keep_heap_frozen() -> None:
    """Run beside a service for as long as it runs: collect less often from the start, freeze
    after start-up and every FREEZE_EVERY_S, give free memory back every TRIM_EVERY_S."""
    collect_less_often()
    for delay in FREEZE_AFTER_S:
        await asyncio.sleep(delay)
        freeze_long_lived()
    since_freeze = 0.0
    while True:
        await asyncio.sleep(TRIM_EVERY_S)
        since_freeze += TRIM_EVERY_S
        if since_freeze >= FREEZE_EVERY_S:
            freeze_long_lived()
            since_freeze = 0.0
        await asyncio.to_thread(give_back_free_memory)
