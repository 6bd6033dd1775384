"""Node reports wait for a pause in the controller's messages, and never for long.

The time is moved by hand (steps of 1/256 s, exact in binary): what is checked is the order of
events, not how fast this machine runs."""

from __future__ import annotations

import asyncio

from firmware_sim.quiet import Quiet

STEP = 2**-8


class HandTime:
    """A monotonic time that moves only when the test says; sleepers wake when it passes their
    deadline."""

    def __init__(self, start: float = 100.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move on, wake whoever is due, and let what they do run to its next wait."""
        self.t += seconds
        due = [f for when, f in self._sleepers if when <= self.t]
        self._sleepers = [(w, f) for w, f in self._sleepers if f not in due]
        for future in due:
            if not future.done():
                future.set_result(None)
        for _ in range(20):  # a fixed number of loop turns: no real time passes
            await asyncio.sleep(0)


def quiet_on(time: HandTime, gap_s: float, longest_s: float) -> Quiet:
    return Quiet(gap_s=gap_s, longest_s=longest_s, monotonic=time.monotonic, sleep=time.sleep)


async def test_reports_wait_for_the_burst_to_end() -> None:
    time = HandTime()
    quiet = quiet_on(time, gap_s=64 * STEP, longest_s=10.0)  # a gap of 0.25 s
    await asyncio.wait_for(quiet.wait(), 5)  # nothing arrived: it returns
    quiet.touch()
    waiters = [asyncio.create_task(quiet.wait()) for _ in range(50)]
    for _ in range(205):  # 0.8 s of messages
        await time.advance(STEP)
        quiet.touch()
        assert not any(w.done() for w in waiters)  # still arriving: nobody reports yet
    await time.advance(63 * STEP)
    assert not any(w.done() for w in waiters)  # a moment short of the gap: still nobody
    await time.advance(STEP)
    assert all(w.done() for w in waiters)  # the gap after the burst: every one of them
    await asyncio.gather(*waiters)


async def test_a_burst_that_never_ends_does_not_hold_reports() -> None:
    time = HandTime()
    quiet = quiet_on(time, gap_s=16 * STEP, longest_s=64 * STEP)  # at most 0.25 s
    quiet.touch()
    waiter = asyncio.create_task(quiet.wait())
    steps = 0
    while not waiter.done():
        await time.advance(STEP)
        quiet.touch()  # messages keep arriving
        steps += 1
        assert steps <= 64 + 16  # the longest wait, give or take the gap it polls by
    assert steps >= 64  # but not before the longest wait is over
    await waiter
