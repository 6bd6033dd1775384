"""Injectable clocks, so that schedules and playback can be tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the controller and nodes ask of time. All times are epoch milliseconds (UTC)."""

    def now_ms(self) -> int: ...

    async def sleep_until(self, when_ms: int) -> None: ...

    async def sleep(self, duration_ms: int) -> None: ...


class SystemClock:
    """Wall-clock time, optionally off by a fixed offset (a node whose clock drifts)."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    async def sleep_until(self, when_ms: int) -> None:
        # Re-check after each wake-up: long sleeps drift, and the clock may be stepped.
        while True:
            remaining = when_ms - self.now_ms()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 60_000) / 1000)

    async def sleep(self, duration_ms: int) -> None:
        await asyncio.sleep(max(duration_ms, 0) / 1000)


class ScaledClock(SystemClock):
    """A clock that runs `speed` times faster than real time from `origin_ms` on.

    Controller and nodes given the same origin and speed agree on the time, so a test can
    schedule an hour ahead and see it play within seconds.
    """

    def __init__(self, speed: float, origin_ms: int | None = None, offset_ms: int = 0) -> None:
        super().__init__(offset_ms)
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.origin_ms = origin_ms if origin_ms is not None else int(time.time() * 1000)

    def now_ms(self) -> int:
        real = time.time() * 1000
        return int(self.origin_ms + (real - self.origin_ms) * self.speed) + self.offset_ms

    async def sleep_until(self, when_ms: int) -> None:
        while True:
            remaining = when_ms - self.now_ms()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining / self.speed, 60_000) / 1000)

    async def sleep(self, duration_ms: int) -> None:
        await asyncio.sleep(max(duration_ms, 0) / self.speed / 1000)
