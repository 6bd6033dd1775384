"""Reports wait for a quiet moment: sounding comes first, telling the controller comes after.

When an area's alert reaches a process of a thousand simulated nodes, each must verify it and
take the speaker. Publishing each node's confirmations at once interleaves a thousand QoS 1
publishes (and their acknowledgements) with that work, and the last node starts later for it.
A real device has its own processor and gains little, but the rule is the same there: what
is heard first, what is reported after. So the event senders of a process wait until no
controller message has arrived for `GAP_S` (at most `LONGEST_S`); one watcher, not one timer
per node.

The watcher lets them go `SLICE` at a time, one slice per turn of the event loop, so the
messages that arrive meanwhile are read between slices (a message read in one turn is handled
in the next, behind at most one more slice). Let go all at once, the thousands of
reports of a process of 5,000 nodes held the loop for a few hundred milliseconds, and a node
whose alert came just after the pause waited behind all of them (at 10,000 nodes, the last
node played 0.7 s after the 95th percentile; docs/benchmarks.md, "Province scale").
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

GAP_S = 0.05  # longer than the gaps of a loaded broker's fan-out to one process (0.02 was not)
# Longer (3 s) made no difference at 10,000 nodes that a run could show (docs/benchmarks.md,
# "Province scale", runs 18, 33 and 35), and under steady traffic it holds every report that
# long.
LONGEST_S = 1.0
SLICE = 32  # reports let go per turn of the loop: a few milliseconds of work


class Quiet:
    """`monotonic` and `sleep` (seconds) are the time it reads and waits on: the process's
    by default; a test gives its own to move the time by hand."""

    def __init__(
        self,
        gap_s: float = GAP_S,
        longest_s: float = LONGEST_S,
        slice_n: int = SLICE,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.gap_s = gap_s
        self.longest_s = longest_s
        self.slice_n = slice_n
        self.monotonic = monotonic
        self.sleep = sleep
        self.last = 0.0
        self._waiters: deque[tuple[float, asyncio.Future[None]]] = deque()  # (since, future)
        self._watcher: asyncio.Task[None] | None = None

    def touch(self) -> None:
        """A controller message arrived."""
        self.last = self.monotonic()

    async def wait(self) -> None:
        """Return once no message has arrived for the gap, or after the longest wait; behind
        any report still waiting for its turn."""
        now = self.monotonic()
        if now - self.last >= self.gap_s and not self._waiters:
            return
        loop = asyncio.get_running_loop()
        watcher = self._watcher
        if watcher is None or watcher.done() or watcher.get_loop() is not loop:
            # Waiters of another loop (a test's, now closed) have nobody to wake them. The new
            # watcher starts at the loop's next turn, with this waiter in the queue.
            self._waiters = deque(w for w in self._waiters if w[1].get_loop() is loop)
            self._watcher = loop.create_task(self._watch(), name="quiet")
        calm = loop.create_future()
        self._waiters.append((now, calm))
        await calm

    async def _watch(self) -> None:
        waiters = self._waiters
        # A timestamp polled once per gap, rather than an event set by each of the thousands
        # of messages in a burst.
        while waiters:
            now = self.monotonic()
            quiet_for, waited = now - self.last, now - waiters[0][0]
            calm = quiet_for >= self.gap_s
            if not calm and waited < self.longest_s:
                await self.sleep(min(self.gap_s - quiet_for, self.longest_s - waited))
                continue
            let_go = 0
            while waiters and let_go < self.slice_n:
                since, future = waiters[0]
                if not calm and now - since < self.longest_s:
                    break  # still arriving: only those that waited the longest go
                waiters.popleft()
                if not future.done():  # not cancelled meanwhile
                    future.set_result(None)
                    let_go += 1
            await asyncio.sleep(0)  # a turn of the loop: what arrived meanwhile is read first


# One per process: the nodes of a fleet share the processor, so they share the quiet.
QUIET = Quiet()
