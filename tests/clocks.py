"""A clock that tests move by hand: it runs at real speed, and the test can hold it still and
move it forward. Controller and nodes given the same object agree on the time, so a test can
pause before air time (nothing can play while every node downloads), or jump an hour ahead to
the next item, without any race between the machine's load and a scaled clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime


class SteppedClock:
    """Wall-clock time plus an offset, which `pause`, `resume`, `advance` and `skip_to` change.

    Sleepers wake when the time is moved, so an item whose start was jumped over starts at once
    (as it would after a long wait), and nothing is due while the clock is paused.
    """

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms
        self._paused_at: int | None = None
        self._moved: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}

    # --- the Clock protocol -----------------------------------------------------------------

    def now_ms(self) -> int:
        if self._paused_at is not None:
            return self._paused_at
        return int(time.time() * 1000) + self.offset_ms

    async def sleep_until(self, when_ms: int) -> None:
        while True:
            # The event before the time: a move after this read finds the event to set (a
            # move between the two would otherwise leave the sleeper on the old remainder).
            moved = self._event()
            remaining = when_ms - self.now_ms()
            if remaining <= 0:
                return
            timeout = None if self._paused_at is not None else min(remaining, 60_000) / 1000
            try:
                await asyncio.wait_for(moved.wait(), timeout)
            except TimeoutError:
                pass

    async def sleep(self, duration_ms: int) -> None:
        await self.sleep_until(self.now_ms() + max(duration_ms, 0))

    # --- what tests do ----------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        """Hold the time still: nothing scheduled on this clock becomes due."""
        if self._paused_at is None:
            self._paused_at = self.now_ms()
            self._wake()

    def resume(self) -> None:
        """Run on at real speed from where the time was held."""
        if self._paused_at is not None:
            held, self._paused_at = self._paused_at, None
            self.offset_ms = held - int(time.time() * 1000)
            self._wake()

    def advance(self, ms: int) -> None:
        """Move the time forward (never back) by `ms`."""
        if ms < 0:
            raise ValueError("a clock goes forward")
        if self._paused_at is not None:
            self._paused_at += ms
        else:
            self.offset_ms += ms
        self._wake()

    def skip_to(self, when: datetime | int) -> None:
        """Move the time forward to `when` (a datetime, or epoch ms); nothing if already past."""
        target = int(when.timestamp() * 1000) if isinstance(when, datetime) else int(when)
        self.advance(max(0, target - self.now_ms()))

    # --- internals --------------------------------------------------------------------------

    def _event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        event = self._moved.get(loop)
        if event is None or event.is_set():
            event = self._moved[loop] = asyncio.Event()
        return event

    def _wake(self) -> None:
        # Sleepers may run in other threads' loops (a controller served in a thread).
        for loop, event in list(self._moved.items()):
            if loop.is_closed():
                del self._moved[loop]
            elif loop is _running_loop():
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # that loop closed meanwhile
                    loop.call_soon_threadsafe(event.set)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
