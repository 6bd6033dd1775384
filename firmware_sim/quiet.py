"""Reports wait for a quiet moment: sounding comes first, telling the controller comes after.

When an area's alert reaches a process of a thousand simulated nodes, each must verify it and
take the speaker. Publishing each node's confirmations at once interleaves a thousand QoS 1
publishes (and their acknowledgements) with that work, and the last node starts later for it.
A real device has its own processor and gains little, but the rule is the same there: what
is heard first, what is reported after. So the event senders of a process wait until no
controller message has arrived for `GAP_S` (at most `LONGEST_S`); one watcher, not one timer
per node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

GAP_S = 0.05  # longer than the gaps of a loaded broker's fan-out to one process (0.02 was not)
# Longer (3 s) made no difference at 10,000 nodes that a run could show (docs/benchmarks.md,
# "Province scale", run 18), and under steady traffic it holds every report that long.
LONGEST_S = 1.0


class Quiet:
    """`monotonic` and `sleep` (seconds) are the time it reads and waits on: the process's
    by default; a test gives its own to move the time by hand."""

    def __init__(
        self,
        gap_s: float = GAP_S,
        longest_s: float = LONGEST_S,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.gap_s = gap_s
        self.longest_s = longest_s
        self.monotonic = monotonic
        self.sleep = sleep
        self.last = 0.0
        self._calm: asyncio.Future[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    def touch(self) -> None:
        """A controller message arrived."""
        self.last = self.monotonic()

    async def wait(self) -> None:
        """Return once no message has arrived for the gap, or after the longest wait."""
        if self.monotonic() - self.last >= self.gap_s:
            return
        loop = asyncio.get_running_loop()
        if self._calm is None or self._calm.done() or self._calm.get_loop() is not loop:
            self._calm = loop.create_future()
            self._watcher = loop.create_task(self._watch(self._calm), name="quiet")
        await asyncio.shield(self._calm)

    async def _watch(self, calm: asyncio.Future[None]) -> None:
        deadline = self.monotonic() + self.longest_s
        # A timestamp polled once per gap, rather than an event set by each of the thousands
        # of messages in a burst.
        while (now := self.monotonic()) < deadline and now - self.last < self.gap_s:
            await self.sleep(self.gap_s - (now - self.last))
        if not calm.done():
            calm.set_result(None)


# One per process: the nodes of a fleet share the processor, so they share the quiet.
QUIET = Quiet()
