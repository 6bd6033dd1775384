"""Garbage collection for the long-running processes (controller, node fleets).

A fleet of 1,000 simulated nodes, or a controller holding a province, keeps millions of
long-lived objects. CPython's full (generation 2) collection walks all of them: measured in a
1,000-node fleet process, 180-300 ms with the event loop stopped, every few seconds while
nodes were busy. An alert arriving during one waited for it. Once the process has built what
it keeps, `gc.freeze()` moves those objects out of the collector's sight (they are still freed
by reference counting when dropped); collections then walk only what was made since.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

# After start-up (nodes connected, timelines and templates fetched), then now and then, so
# that what a long run builds later (new nodes, caches) leaves the collector's sight too.
FREEZE_AFTER_S = (15.0, 60.0)
FREEZE_EVERY_S = 600.0


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
    """Run beside a service for as long as it runs."""
    for delay in FREEZE_AFTER_S:
        await asyncio.sleep(delay)
        freeze_long_lived()
    while True:
        await asyncio.sleep(FREEZE_EVERY_S)
        freeze_long_lived()
