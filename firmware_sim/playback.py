"""The loudspeaker: one item at a time, timed on the node clock, pre-emptable by priority."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from firmware_sim.outbox import Emit
from protocol import Clock, EventType, TimelineItem


@dataclass(frozen=True)
class Played:
    """One performance, as the node saw it. `outcome` is "finished" or "preempted"."""

    item_id: str
    broadcast_id: str
    start_ms: int
    end_ms: int
    timeline_version: int | None
    outcome: str = "finished"


@dataclass
class _Playing:
    item: TimelineItem
    version: int | None
    report: bool
    started_ms: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_ms: int | None = None


class Playback:
    """Plays items for their duration. A simulated node only waits; a real one would stream the
    cached file to the amplifier here."""

    def __init__(self, clock: Clock, emit: Emit) -> None:
        self.clock = clock
        self.emit = emit
        self.played: list[Played] = []
        self._current: _Playing | None = None
        self.held_by: str | None = None

    @property
    def now_playing(self) -> TimelineItem | None:
        return self._current.item if self._current is not None else None

    def hold(self, owner: str, reason: str) -> None:
        """Give the speaker to `owner` (an alert): stop what plays; no item starts until
        `release`."""
        self.stop(reason)
        self.held_by = owner

    def release(self, owner: str) -> None:
        if self.held_by == owner:
            self.held_by = None

    def stop(self, reason: str) -> TimelineItem | None:
        """Stop whatever plays (it reports `playback_preempted` with `reason`)."""
        current = self._current
        if current is None:
            return None
        # Reported here, not when the playing task wakes, so events keep their real order.
        self._current = None
        current.stopped_ms = self.clock.now_ms()
        current.stop.set()
        if current.report:
            self._event(EventType.playback_preempted, current, detail=reason)
        return current.item

    def may_start(self, item: TimelineItem) -> bool:
        """An item may interrupt what plays only with equal or higher priority, and never an
        alert holding the speaker."""
        if self.held_by is not None:
            return False
        current = self._current
        return current is None or item.priority.rank >= current.item.priority.rank

    async def play(self, item: TimelineItem, version: int | None, report: bool = True) -> Played:
        """Play `item` now for its duration, pre-empting the current item (callers check
        `may_start` first). `report=False` plays without events (test tones)."""
        if self._current is not None:
            self.stop(f"preempted by {item.item_id} ({item.priority.value})")
        playing = _Playing(item, version, report, self.clock.now_ms())
        self._current = playing
        if report:
            self._event(EventType.playback_started, playing)
        sleeper = asyncio.ensure_future(self.clock.sleep(item.duration_ms))
        stopper = asyncio.ensure_future(playing.stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._current is playing:
                self._current = None
        preempted = playing.stopped_ms is not None
        result = Played(
            item_id=item.item_id,
            broadcast_id=item.broadcast_id,
            start_ms=playing.started_ms,
            end_ms=playing.stopped_ms if preempted else self.clock.now_ms(),
            timeline_version=version,
            outcome="preempted" if preempted else "finished",
        )
        if report:
            self.played.append(result)
            if not preempted:
                self._event(EventType.playback_finished, playing)
        return result

    def _event(self, kind: EventType, playing: _Playing, detail: str = "") -> None:
        self.emit(
            kind,
            item_id=playing.item.item_id,
            broadcast_id=playing.item.broadcast_id,
            timeline_version=playing.version,
            sha256=playing.item.media.sha256,
            detail=detail[:500],
        )
