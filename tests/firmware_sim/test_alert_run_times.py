"""An alert's sounding watches two times on the node's clock, the end of a playing and the
alert's expiry, with one sleep; when the clock passes both at once, each still counts, the
playing's end first, as with a sleep for each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firmware_sim.alert_run import AlertRun
from protocol import AlertBody
from protocol.messages import MediaRef
from tests.clocks import SteppedClock


class Clock(SteppedClock):
    """Says when someone first sleeps on it."""

    def __init__(self) -> None:
        super().__init__()
        self.asleep = asyncio.Event()

    async def sleep_until(self, when_ms: int) -> None:
        self.asleep.set()  # no turn of the loop before the sleep below waits
        await super().sleep_until(when_ms)


class Desk:
    """What a run asks of its node's alert desk: the clock, and a place for its reports."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.node_id = "n1"
        self.played: list[Any] = []
        self.sounds = None
        self.bad_media: set[str] = set()
        self.events: list[tuple[str, str]] = []

    def emit(self, kind: Any, **fields: Any) -> None:
        self.events.append((str(kind.value), fields["detail"]))

    def settle(self, run: AlertRun) -> None:
        pass

    def take_speaker(self, run: AlertRun) -> None:
        pass


async def sound(repeat: int, step_ms: int) -> tuple[list[tuple[str, str]], AlertRun]:
    """An alert of 120 s playings that expires after 90 s; the clock stepped `step_ms` at once."""
    clock = Clock()
    clock.pause()
    now = clock.now_ms()
    body = AlertBody(
        alert_id="a1",
        action="play",
        media=MediaRef(url="http://media.invalid/a.mp3", sha256="0" * 64, size=1),
        duration_ms=120_000,
        repeat=repeat,
        pause_ms=0,
        expires=now + 90_000,
    )
    desk = Desk(clock)
    run = AlertRun(desk, body, None)  # type: ignore[arg-type]
    run.turn.set()
    run.begin()  # as a node does when the audio is here and nothing is ahead
    task = asyncio.create_task(run.run())
    await clock.asleep.wait()  # the run sleeps in its first playing
    clock.advance(step_ms)
    await asyncio.wait_for(task, 5)
    return desk.events, run


@pytest.mark.parametrize(
    ("repeat", "last"),
    [(1, "1 playings"), (3, "expired after 2 playings"), (0, "expired after 2 playings")],
)
async def test_a_clock_past_both_times_ends_the_playing_then_expires(
    repeat: int, last: str
) -> None:
    events, run = await sound(repeat, 200_000)
    assert events[-1] == ("alert_finished", f"v1; {last}")
    assert run._stop_waiters == []  # nothing left waiting on the run


async def test_the_expiry_alone_ends_the_alert_within_its_first_playing() -> None:
    events, _ = await sound(1, 100_000)  # past the expiry (90 s), not the playing's end (120 s)
    assert events[-1] == ("alert_finished", "v1; expired after 1 playings")
