"""The loudspeaker: one item at a time, timed on the node clock, pre-emptable by priority."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from firmware_sim.outbox import Emit
from protocol import Clock, EventType, TimelineItem

# Items and alerts a node remembers having played, for its status and for tests; what it played
# is recorded by the controller (its events). Few: a fleet process keeps this for every node,
# and at 1,000 a play per node weighed 0.4 MB more until the bound.
PLAYED_KEPT = 20

if TYPE_CHECKING:
    from firmware_sim.sounds import Sounds

# An item this close to its end when the next starts has finished, not been cut: timers of
# back-to-back items (a playlist's parts) fire in either order.
END_SLACK_MS = 250


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
    end_ms: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_ms: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # end_ms moved
    finish_detail: str = ""


class Playback:
    """Plays items for their duration on the node's player (`sounds`): a simulated node's only
    waits (and reads streams), a real one's decodes to the sound card. Without `sounds`,
    items only take their time."""

    def __init__(self, clock: Clock, emit: Emit, sounds: Sounds | None = None) -> None:
        self.clock = clock
        self.emit = emit
        self.sounds = sounds
        # The latest items played (what tests and the status look at), bounded: a node runs
        # for months. `played_total` counts them all.
        self.played: deque[Played] = deque(maxlen=PLAYED_KEPT)
        self.played_total = 0
        self._current: _Playing | None = None
        self.held_by: str | None = None
        # A fault scenario's "silent" node: scheduled items neither play nor report.
        self.stalled = False

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

    def ends_at(self) -> int | None:
        """When what plays now is due to end on the node clock (None when idle)."""
        current = self._current
        return None if current is None else current.end_ms

    def shorten(self, item_id: str, end_ms: int, reason: str) -> bool:
        """End the playing item `item_id` at `end_ms` (now, if that has passed): how a live
        broadcast stopped on the controller ends on the node. It finishes, not pre-empted."""
        current = self._current
        if current is None or current.item.item_id != item_id or end_ms >= current.end_ms:
            return False
        current.end_ms = end_ms
        current.finish_detail = reason
        current.changed.set()
        return True

    def may_start(self, item: TimelineItem) -> bool:
        """An item may interrupt what plays only with equal or higher priority, and never an
        alert holding the speaker."""
        if self.held_by is not None:
            return False
        current = self._current
        return (
            current is None
            or item.priority.rank >= current.item.priority.rank
            or self.clock.now_ms() >= current.end_ms - END_SLACK_MS
        )

    async def play(self, item: TimelineItem, version: int | None, report: bool = True) -> Played:
        """Play `item` now for its duration, pre-empting the current item (callers check
        `may_start` first). `report=False` plays without events (test tones)."""
        current = self._current
        if current is not None:
            if self.clock.now_ms() >= current.end_ms - END_SLACK_MS:
                # Back-to-back items (a playlist's parts): the one ending now has finished.
                self._current = None
                current.stop.set()
            else:
                self.stop(f"preempted by {item.item_id} ({item.priority.value})")
        now = self.clock.now_ms()
        # A recording plays whole; a stream joined late ends at its scheduled end.
        end = now + item.duration_ms
        if item.stream is not None:
            end = max(now, min(end, item.start + item.duration_ms))
        playing = _Playing(item, version, report, now, end)
        self._current = playing
        if report:
            self._event(EventType.playback_started, playing)
        sound = self.sounds.start(item, version) if self.sounds is not None else None
        try:
            await self._sound(playing, sound.ended if sound is not None else None)
        finally:
            if sound is not None:
                sound.stop()
            if self._current is playing:
                self._current = None
        stopped_ms = playing.stopped_ms
        preempted = stopped_ms is not None
        if sound is not None and sound.ended.is_set() and not preempted:
            playing.finish_detail = sound.detail  # a live source ended it
        result = Played(
            item_id=item.item_id,
            broadcast_id=item.broadcast_id,
            start_ms=playing.started_ms,
            end_ms=stopped_ms if stopped_ms is not None else self.clock.now_ms(),
            timeline_version=version,
            outcome="preempted" if preempted else "finished",
        )
        if report:
            self.played.append(result)
            self.played_total += 1
            if not preempted:
                self._event(EventType.playback_finished, playing, playing.finish_detail)
        return result

    async def _sound(self, playing: _Playing, ended: asyncio.Event | None) -> None:
        """Until the item's end (which `shorten` may move), a stop, or its sound's own end."""
        while True:
            waits = {
                asyncio.ensure_future(self.clock.sleep_until(playing.end_ms)),
                asyncio.ensure_future(playing.stop.wait()),
            }
            changed = asyncio.ensure_future(playing.changed.wait())
            waits.add(changed)
            if ended is not None:
                waits.add(asyncio.ensure_future(ended.wait()))
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if done != {changed}:
                return
            playing.changed.clear()

    def _event(self, kind: EventType, playing: _Playing, detail: str = "") -> None:
        self.emit(
            kind,
            item_id=playing.item.item_id,
            broadcast_id=playing.item.broadcast_id,
            timeline_version=playing.version,
            sha256=playing.item.media.sha256,
            detail=detail[:500],
        )
