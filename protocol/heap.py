"""Garbage collection for the long-running processes (controller, node fleets).

A fleet of 1,000 simulated nodes, or a controller holding a province, keeps millions of
long-lived objects. CPython's full (generation 2) collection walks all of them: measured in a
1,000-node fleet process, 180-300 ms with the event loop stopped, every few seconds while
nodes were busy. An alert arriving during one waited for it. Once the process has built what
it keeps, `gc.freeze()` moves those objects out of the collector's sight (they are still freed
by reference counting when dropped); collections then walk only what was made since.

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

from protocol import gc_pauses

log = logging.getLogger(__name__)

# After start-up (nodes connected, timelines and templates fetched), then now and then, so
# that what a long run builds later (new nodes, caches) leaves the collector's sight too.
FREEZE_AFTER_S = (15.0, 60.0)
FREEZE_EVERY_S = 600.0
# Sooner when a full collection took longer than this: it walked much that was built since
# the last freeze (10,000 nodes connecting and fetching their templates outlast the start-up's
# freezes: in two fleet processes of 5,000, full collections of up to 1.1 s, 4.3 s of them
# between an alert and its view's answers). At most once per FREEZE_AGAIN_AFTER_S: each
# freeze begins with a full collection of its own.
SLOW_FULL_COLLECTION_S = 0.1
FREEZE_AGAIN_AFTER_S = 120.0
CHECK_EVERY_S = 5.0
# Freed pages go back to the system this often (a trim of a 300 MB heap takes milliseconds).
TRIM_EVERY_S = 60.0
ARENAS = 2
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


def freeze_long_lived() -> float:
    """Collect what is garbage now, then freeze the survivors; the seconds it took."""
    t = time.perf_counter()
    gc.collect()
    gc.freeze()
    took = time.perf_counter() - t
    frozen = gc.get_freeze_count()
    log.info("heap: %d objects frozen out of collection (%.0f ms)", frozen, took * 1e3)
    return took


class FreezeWatch:
    """When to freeze again: FREEZE_EVERY_S after the last freeze, or sooner once a full
    collection has been slow (not within FREEZE_AGAIN_AFTER_S of the last)."""

    def __init__(self, pauses: gc_pauses.GcPauses, now: float) -> None:
        self.pauses = pauses
        self.frozen(now)

    def frozen(self, now: float) -> None:
        self.last = now
        self.slow_seen = self.pauses.over(2, SLOW_FULL_COLLECTION_S)

    def due(self, now: float) -> bool:
        since = now - self.last
        slow = self.pauses.over(2, SLOW_FULL_COLLECTION_S) > self.slow_seen
        return since >= FREEZE_EVERY_S or (slow and since >= FREEZE_AGAIN_AFTER_S)


async def keep_heap_frozen() -> None:
    """Run beside a service for as long as it runs: freeze after start-up, every
    FREEZE_EVERY_S and after slow full collections; give free memory back every
    TRIM_EVERY_S."""
    pauses = gc_pauses.install()
    for delay in FREEZE_AFTER_S:
        await asyncio.sleep(delay)
        freeze_long_lived()
    watch = FreezeWatch(pauses, time.monotonic())
    since_trim = 0.0
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        if watch.due(time.monotonic()):
            freeze_long_lived()
            watch.frozen(time.monotonic())
        since_trim += CHECK_EVERY_S
        if since_trim >= TRIM_EVERY_S:
            since_trim = 0.0
            await asyncio.to_thread(give_back_free_memory)
