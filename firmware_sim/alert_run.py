"""One version of one emergency alert on a node: wait for media and speaker, play, report once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from firmware_sim.stream import MediaStream
from protocol import AlertBody, EventType
from protocol.aio import raise_if_cancelling

if TYPE_CHECKING:
    from firmware_sim.alerts import AlertDesk

log = logging.getLogger(__name__)

# A zero (unknown) duration still takes this long, so that `repeat 0` cannot spin.
MIN_PLAYING_MS = 100


@dataclass(frozen=True)
class AlertPlayed:
    """An alert that sounded. `playings` counts those started; `outcome` is "finished",
    "stopped" (cancelled or updated) or "failed" (media failed verification while playing)."""

    alert_id: str
    version: int
    started_ms: int
    ended_ms: int
    playings: int
    outcome: str


class AlertRun:
    """Lives from acceptance to its one final report (finished, stopped or failed)."""

    def __init__(self, desk: AlertDesk, body: AlertBody, stream: MediaStream | None) -> None:
        assert body.media is not None
        self.media = body.media
        self.desk = desk
        self.body = body
        self.stream = stream
        self.owner = f"alert:{body.alert_id}"
        self.turn = asyncio.Event()  # set when this run is first in the speaker queue
        # Futures of the waits in progress, resolved when the run ends: a plain future costs
        # less than a task waiting on an event, and thousands of emulated nodes wait at once.
        self._stop_waiters: list[asyncio.Future[object]] = []
        self.outcome: str | None = None
        self.started_ms: int | None = None
        self.playings = 0
        self.task: asyncio.Task[None] | None = None

    @property
    def sounding(self) -> bool:
        return self.started_ms is not None and self.outcome is None

    def event(self, kind: EventType, extra: str = "") -> None:
        b = self.body
        parts = [f"v{b.version}"] + (["test"] if b.test else []) + ([extra] if extra else [])
        self.desk.emit(
            kind,
            item_id=b.alert_id,
            broadcast_id=b.alert_id,
            sha256=b.media.sha256 if b.media else None,
            detail="; ".join(parts)[:500],
        )

    def end(self, outcome: str, kind: EventType, detail: str) -> None:
        """Report and settle once; the speaker is freed now, not when the task wakes, so that
        events keep their real order and the next alert or item may start at once."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        now = self.desk.clock.now_ms()
        self.event(kind, detail)
        if self.started_ms is not None:
            b = self.body
            self.desk.played.append(
                AlertPlayed(b.alert_id, b.version, self.started_ms, now, self.playings, outcome)
            )
        log.info(
            "%s: alert %s v%d %s: %s",
            self.desk.node_id,
            self.body.alert_id,
            self.body.version,
            outcome,
            detail,
        )
        for waiter in self._stop_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._stop_waiters.clear()
        self.desk.settle(self)

    def stop(self, reason: str) -> None:
        self.end("stopped", EventType.alert_stopped, reason)

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must free the speaker, not kill the node
            log.exception("%s: alert %s crashed", self.desk.node_id, self.body.alert_id)
            self.end("failed", EventType.alert_failed, f"internal error {type(exc).__name__}")
        finally:
            self.desk.settle(self)

    def begin(self) -> None:
        """Take the speaker and report the start: the alert sounds from now. Called as the
        alert is accepted when its audio is here and nothing is ahead of it, so that it starts
        then and not a turn of the event loop later; otherwise by the run once both are so."""
        b = self.body
        self.desk.take_speaker(self)
        self.started_ms = self.desk.clock.now_ms()
        self.event(EventType.alert_started, f"volume {b.volume}" if b.volume is not None else "")

    async def _run(self) -> None:
        b = self.body
        stream = self.stream
        if self.started_ms is None:
            if stream is not None and not stream.started.is_set():
                why = await self._until({"media": stream.started.wait()})
                if why != "media":
                    return self._not_played(why)
            if stream is not None and stream.error is not None:
                return self.end("failed", EventType.alert_failed, f"media: {stream.error}")
            if not self.turn.is_set():
                why = await self._until({"turn": self.turn.wait()})
                if why != "turn":
                    return self._not_played(why)
            if self.outcome is None:
                self.begin()
        if self.outcome is not None:  # cancelled or updated, before or just after it began
            return None
        playing_ms = max(b.duration_ms, MIN_PLAYING_MS)
        while True:
            self.playings += 1
            end = self.desk.clock.now_ms() + playing_ms
            sounds = self.desk.sounds
            sound = sounds.alert(self.media, stream) if sounds is not None else None
            try:
                why = await self._sound_until(end)
                if why == "done" and stream is not None and not stream.ended.is_set():
                    # A player cannot finish what has not arrived: it stalls until the end.
                    why = await self._until({"done": stream.ended.wait()})
                    why = "media" if why == "done" and stream.error else why
            finally:
                if sound is not None:
                    sound.stop()
            if why != "done":
                return self._interrupted(why)
            if b.repeat and self.playings >= b.repeat:
                break
            if b.pause_ms and (why := await self._sound_until(end + b.pause_ms)) != "done":
                return self._interrupted(why)
        self.end("finished", EventType.alert_finished, f"{self.playings} playings")

    def _not_played(self, why: str) -> None:
        if why == "expired":
            last = self.stream.last_error if self.stream is not None else ""
            detail = "expired before it could play" + (f" (media: {last})" if last else "")
            self.end("failed", EventType.alert_failed, detail)
        # "stopped": already reported by whoever stopped it

    def _interrupted(self, why: str) -> None:
        if why == "expired":
            self.end(
                "finished", EventType.alert_finished, f"expired after {self.playings} playings"
            )
        elif why == "media" and self.stream is not None:
            if self.stream.corrupt:
                self.desk.bad_media.add(self.stream.ref.sha256)
            self.end("failed", EventType.alert_failed, f"media: {self.stream.error}")

    async def _sound_until(self, until_ms: int) -> str:
        """Sound (or a pause) until `until_ms`, watching the download: "done" or why not."""
        stream = self.stream
        while True:
            waits: dict[str, Awaitable[object]] = {}
            if stream is not None and not stream.ended.is_set():
                waits["media"] = stream.ended.wait()
            why = await self._until(waits, done_at=until_ms)
            if why != "media" or (stream is not None and stream.error):
                return why
            # Verified while playing: keep sounding to the end of this playing.

    async def _until(self, waits: dict[str, Awaitable[object]], done_at: int | None = None) -> str:
        """The first of `waits` to finish, or "done" at `done_at` (the clock's ms), or "stopped",
        or "expired"; a tie goes to "stopped", then "done", then `waits`, then "expired"."""
        expires = self.body.expires
        clock = self.desk.clock
        tasks: dict[asyncio.Future[object], str] = {
            asyncio.ensure_future(w): name for name, w in waits.items()
        }
        # One sleep for both times, to the earlier (they are read on the same clock); on waking,
        # each that has come counts, as two sleeps would.
        wake = expires if done_at is None else min(done_at, expires)
        tasks[asyncio.ensure_future(clock.sleep_until(wake))] = "time"
        stop: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.outcome is not None:
            stop.set_result(None)
        else:
            self._stop_waiters.append(stop)
        tasks[stop] = "stopped"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            with contextlib.suppress(ValueError):
                self._stop_waiters.remove(stop)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        raise_if_cancelling()  # the suppress above must not swallow our own cancellation
        names = {tasks[t] for t in done}
        if "time" in names:
            now = max(clock.now_ms(), wake)  # its time came, though the clock be set back since
            if done_at is not None and now >= done_at:
                names.add("done")
            if now >= expires:
                names.add("expired")
        for name in ("stopped", "done", *waits, "expired"):
            if name in names:
                return name
        return "stopped"
