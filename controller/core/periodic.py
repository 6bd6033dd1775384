"""Periodic work as one small job type: a name, an interval with jitter, and `run_once()`, which
tests call directly instead of waiting for the interval. A failed run is logged and counted;
the next one comes at its time (the supervisor restarts only what crashes outside a run)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Periodic:
    name: str
    interval_s: float
    run_once: Callable[[], Awaitable[object]]
    # Spread runs by up to this share of the interval, so that instances and jobs drift apart.
    jitter: float = 0.1
    # Run once at start instead of waiting a first interval.
    at_start: bool = False
    # How to wait (seconds): asyncio's by default; the controller's clock where runs follow
    # its time (a test clock moved by hand wakes them).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    runs: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)

    async def run(self) -> None:
        if not self.at_start:
            await self._wait()
        while True:
            try:
                await self.run_once()
                self.runs += 1
            except Exception:
                self.failures += 1
                log.exception(
                    "%s failed (%d so far); next run in %.0f s",
                    self.name,
                    self.failures,
                    self.interval_s,
                )
            await self._wait()

    async def _wait(self) -> None:
        await self.sleep(self.interval_s * random.uniform(1 - self.jitter, 1))
