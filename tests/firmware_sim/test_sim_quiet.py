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

    def move(self, seconds: float) -> None:
        """Move on and wake whoever is due; they run at the loop's next turns."""
        self.t += seconds
        due = [f for when, f in self._sleepers if when <= self.t]
        self._sleepers = [(w, f) for w, f in self._sleepers if f not in due]
        for future in due:
            if not future.done():
                future.set_result(None)

    async def advance(self, seconds: float) -> None:
        """Move on, wake whoever is due, and let what they do run to its next wait."""
        self.move(seconds)
        for _ in range(20):  # a fixed number of loop turns: no real time passes
            await asyncio.sleep(0)


async def report(quiet: Quiet, order: list[str], name: str) -> None:
    """A node's report: it waits for its turn, then says so."""
    await quiet.wait()
    order.append(name)


def quiet_on(time: HandTime, gap_s: float, longest_s: float, slice_n: int = 1000) -> Quiet:
    return Quiet(gap_s, longest_s, slice_n, monotonic=time.monotonic, sleep=time.sleep)


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


async def test_reports_go_a_slice_per_turn_with_what_arrives_read_between() -> None:
    """After the pause, the waiting reports go a slice at a time, one slice per turn of the
    loop; a message that arrives meanwhile (a callback of the loop, as a socket's is) is
    handled before the next slice, not behind all of them."""
    time = HandTime()
    quiet = quiet_on(time, gap_s=16 * STEP, longest_s=10.0, slice_n=8)
    quiet.touch()
    order: list[str] = []
    reports = [asyncio.create_task(report(quiet, order, f"report {i}")) for i in range(30)]
    await time.advance(STEP)
    assert order == []
    time.move(16 * STEP)  # the pause is over
    for _ in range(12):  # a message arriving at each turn of the loop, as a burst's would
        asyncio.get_running_loop().call_soon(order.append, "message")
        await asyncio.sleep(0)
    await asyncio.gather(*reports)
    runs = "".join("|" if event == "message" else "r" for event in order).split("|")
    assert max(len(run) for run in runs) <= 8, order  # never more than a slice between two
    assert [e for e in order if e != "message"] == [f"report {i}" for i in range(30)]  # FIFO


async def test_in_a_long_burst_only_the_reports_that_waited_longest_go() -> None:
    time = HandTime()
    quiet = quiet_on(time, gap_s=16 * STEP, longest_s=64 * STEP)
    quiet.touch()
    early = asyncio.create_task(quiet.wait())
    for _ in range(32):
        await time.advance(STEP)
        quiet.touch()
    late = asyncio.create_task(quiet.wait())  # half the longest wait later
    while not early.done():
        await time.advance(STEP)
        quiet.touch()  # messages keep arriving
    assert not late.done()  # its own longest wait is not over
    while not late.done():
        await time.advance(STEP)
        quiet.touch()
    await asyncio.gather(early, late)


async def test_a_cancelled_report_is_skipped() -> None:
    time = HandTime()
    quiet = quiet_on(time, gap_s=16 * STEP, longest_s=10.0, slice_n=1)
    quiet.touch()
    gone, kept = asyncio.create_task(quiet.wait()), asyncio.create_task(quiet.wait())
    await time.advance(STEP)
    gone.cancel()
    await time.advance(16 * STEP)
    assert gone.cancelled() and kept.done()
    await kept


async def test_a_report_after_the_pause_waits_behind_those_still_queued() -> None:
    """The pause is over but reports are still going a slice at a time: a new one queues
    behind them rather than going first."""
    time = HandTime()
    quiet = quiet_on(time, gap_s=16 * STEP, longest_s=10.0, slice_n=1)
    quiet.touch()
    order: list[str] = []
    queued = [asyncio.create_task(report(quiet, order, f"queued {i}")) for i in range(3)]
    await time.advance(STEP)
    time.move(16 * STEP)  # the pause is over: one report a turn from now on
    await asyncio.sleep(0)
    late = asyncio.create_task(report(quiet, order, "late"))
    await asyncio.gather(*queued, late)
    assert order == ["queued 0", "queued 1", "queued 2", "late"]


def test_reports_left_waiting_in_a_closed_loop_hold_up_nobody_in_the_next() -> None:
    """The process's one Quiet outlives an event loop (each test runs its own): a report left
    waiting when its loop closed is dropped, and the next loop's reports still go."""
    time = HandTime()
    quiet = quiet_on(time, gap_s=16 * STEP, longest_s=10.0)

    async def leave_one_waiting() -> None:
        quiet.touch()
        left = asyncio.get_running_loop().create_task(quiet.wait())
        left._log_destroy_pending = False  # type: ignore[attr-defined]  # left so on purpose
        await asyncio.sleep(0)

    first = asyncio.new_event_loop()
    first.run_until_complete(leave_one_waiting())
    first.close()  # its report and watcher never ran to the end

    async def report_in_a_new_loop() -> None:
        time._sleepers.clear()  # the closed loop's sleeper can never be woken
        waiter = asyncio.create_task(quiet.wait())
        await time.advance(16 * STEP)
        assert waiter.done()
        await waiter

    second = asyncio.new_event_loop()
    try:
        second.run_until_complete(report_in_a_new_loop())
    finally:
        second.close()
