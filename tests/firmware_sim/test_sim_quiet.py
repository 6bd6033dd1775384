"""Node reports wait for a pause in the controller's messages, and never for long."""

from __future__ import annotations

import asyncio
import time

from firmware_sim.quiet import Quiet


async def burst(quiet: Quiet, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        quiet.touch()
        await asyncio.sleep(0.005)


async def test_reports_wait_for_the_burst_to_end() -> None:
    quiet = Quiet(gap_s=0.25, longest_s=10.0)
    await asyncio.wait_for(quiet.wait(), 5)  # nothing arrived: it returns
    sender = asyncio.create_task(burst(quiet, 0.8))
    await asyncio.sleep(0.02)
    waiters = [asyncio.create_task(quiet.wait()) for _ in range(50)]
    done, _ = await asyncio.wait(waiters, timeout=0.4)
    assert not done  # still arriving: nobody reports yet
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert sender.done()  # every one of them waited for the burst to be over


async def test_a_burst_that_never_ends_does_not_hold_reports() -> None:
    quiet = Quiet(gap_s=0.05, longest_s=0.3)
    endless = asyncio.create_task(burst(quiet, 30.0))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(quiet.wait(), 5)
    assert not endless.done()
    endless.cancel()
