"""The node's desired state: one task per timeline item, re-planned when a new version lands."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from firmware_sim.media import MediaCache
from firmware_sim.outbox import Emit
from firmware_sim.playback import Playback
from protocol import Clock, EventType, TimelineBody, TimelineItem

log = logging.getLogger(__name__)

# How far an item still playing may run into the next one's start before the next (of no
# higher priority: a higher one cuts it at once) is missed or cuts it.
OVERRUN_MS = 10_000

# A node that learns of an item this late still starts it; later it reports it missed. A stream
# (a relay or a live voice) has nothing to lose by joining late: it is joined at its live edge
# for what is left of its time, however late the node learns of it.
LATE_TOLERANCE_MS = 5_000


@dataclass
class _Plan:
    item: TimelineItem
    task: asyncio.Task[None] | None  # None: settled at apply time (finished or missed)


def _plan_key(item: TimelineItem) -> tuple[object, ...]:
    """What makes a re-plan necessary; title or media URL changes alone keep the running plan
    (a stream's URL is what it plays, so that one counts)."""
    stream = item.stream.url if item.stream is not None else None
    key = (item.start, item.duration_ms, item.priority, item.media.sha256, item.broadcast_id)
    return (*key, stream)


class Timeline:
    """Applies signed timeline bodies (already verified and checked for this node)."""

    def __init__(
        self, node_id: str, clock: Clock, emit: Emit, media: MediaCache, playback: Playback
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.emit = emit
        self.media = media
        self.playback = playback
        self.version = 0
        self.body: TimelineBody | None = None
        self._plans: dict[str, _Plan] = {}

    def apply(self, body: TimelineBody) -> None:
        now = self.clock.now_ms()
        self.version, self.body = body.version, body
        items: dict[str, TimelineItem] = {}
        for item in body.items:
            if item.item_id in items:
                log.warning(
                    "%s: timeline v%d repeats item %r; first kept",
                    self.node_id,
                    body.version,
                    item.item_id,
                )
                continue
            items[item.item_id] = item
        self.emit(
            EventType.timeline_applied, timeline_version=body.version, detail=f"{len(items)} items"
        )
        playing = self.playback.now_playing
        for item_id, plan in list(self._plans.items()):
            new = items.get(item_id)
            is_playing = playing is not None and playing.item_id == item_id
            if new is None:
                if is_playing and _live(plan.item):
                    # A live broadcast stopped on the controller leaves the timeline (or is
                    # shortened in it): it has finished.
                    self.playback.shorten(item_id, now, f"live ended (timeline v{body.version})")
                elif is_playing:
                    self.playback.stop(f"removed in timeline v{body.version}")
                self._cancel(item_id)
            elif _plan_key(new) != _plan_key(plan.item) and not is_playing:
                # Changed while playing: let it finish rather than cut the audio mid-sentence.
                self._cancel(item_id)
            elif is_playing and new.stream is not None:
                # A stream has no sentence to finish: a shorter relay or a stopped live ends
                # at its new end.
                reason = f"ends earlier in timeline v{body.version}"
                self.playback.shorten(item_id, new.start + new.duration_ms, reason)
        needs_media: list[TimelineItem] = []
        for item_id, item in items.items():
            kept = self._plans.get(item_id)
            if kept is not None:
                kept.item = item
                if kept.task is not None and not kept.task.done():
                    needs_media.append(item)
                continue
            if self.over(item, now):
                self._plans[item_id] = _Plan(item, None)
                continue
            late = now - item.start
            if late > LATE_TOLERANCE_MS and item.stream is None:
                self._missed(item, f"late by {late} ms")
                self._plans[item_id] = _Plan(item, None)
                continue
            task = asyncio.create_task(self._run(item), name=f"item-{item_id[:40]}")
            self._plans[item_id] = _Plan(item, task)
            needs_media.append(item)
        self.media.want(needs_media, body.version)

    @staticmethod
    def over(item: TimelineItem, now: int) -> bool:
        """Ended before the timeline that lists it came: neither played nor reported (the
        controller keeps an item in timelines a while past its end, for a node playing it
        late)."""
        return item.start + item.duration_ms <= now

    def close(self) -> None:
        for item_id in list(self._plans):
            self._cancel(item_id)

    def _cancel(self, item_id: str) -> None:
        plan = self._plans.pop(item_id, None)
        if plan is not None and plan.task is not None:
            plan.task.cancel()

    def _missed(self, item: TimelineItem, detail: str) -> None:
        self.emit(
            EventType.playback_missed,
            item_id=item.item_id,
            broadcast_id=item.broadcast_id,
            timeline_version=self.version,
            sha256=item.media.sha256,
            detail=detail,
        )

    async def _run(self, item: TimelineItem) -> None:
        await self.clock.sleep_until(item.start)
        if self.playback.stalled:
            log.warning(
                "%s: player stalled; %s neither plays nor reports", self.node_id, item.item_id
            )
            return
        late = self.clock.now_ms() - item.start
        if late > LATE_TOLERANCE_MS and item.stream is None:
            self._missed(item, f"late by {late} ms")
            return
        if (holder := self.playback.held_by) is not None:
            # Regulation-like: what an alert covered is missed, not squeezed in afterwards.
            self._missed(item, f"pre-empted by {holder.replace(':', ' ', 1)}")
            return
        if item.stream is None and not self.media.is_ready(item.media.sha256):
            self.emit(
                EventType.playback_failed,
                item_id=item.item_id,
                broadcast_id=item.broadcast_id,
                timeline_version=self.version,
                sha256=item.media.sha256,
                detail="media not ready",
            )
            return
        ends, busy = self.playback.ends_at(), self.playback.now_playing
        if (
            ends is not None
            and busy is not None
            and busy.priority.rank >= item.priority.rank
            and ends - item.start <= OVERRUN_MS
        ):
            # Timelines never overlap items on purpose: the one still playing started late
            # (a slow download, a busy player), so this one follows it rather than cut it.
            await self.clock.sleep_until(ends)
        if not self.playback.may_start(item):
            busy = self.playback.now_playing
            self._missed(item, f"busy with higher-priority {busy.item_id if busy else '?'}")
            return
        await self.playback.play(item, self.version)


def _live(item: TimelineItem) -> bool:
    return item.stream is not None and item.stream.live
