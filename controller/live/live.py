"""Live broadcasts: an officer's voice, encoded once, played by every target from one stream.

A live broadcast is put in the targets' timelines like any broadcast: a schedule starting now
of content with one stream entry (`/media/live/<id>.mp3`), planned for at most `max_minutes`.
So targets resolve as schedules do (areas, groups, nodes), the node's priority rules apply
unchanged (at `priority` it cuts a normal programme, an emergency alert cuts it), deliveries
and the playback log record it, and a node that comes online during it joins. Stopping ends the
stream (nodes finish the item at once) and shortens the item to what was spoken.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from sqlmodel import Session, col, select

from controller.auth.audit import record
from controller.core.config import Settings
from controller.core.db import Database
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import (
    Announcement,
    LiveBroadcast,
    LiveStatus,
    PlaylistItem,
    Schedule,
    ScheduleStatus,
)
from controller.core.periodic import Periodic
from controller.core.time import utc_datetime, utc_ms
from controller.fleet.registry import Registry
from controller.live.live_encoder import silence_frames
from controller.live.live_feed import LiveFeed
from controller.live.live_targets import check_targets, reached_nodes
from controller.programme.broadcasts import Targets, add_targets
from controller.programme.playlists import LIVE
from controller.programme.speech import Speech
from controller.programme.stream_entries import LIVE_PREFIX
from controller.programme.timelines import TimelineService
from protocol import Priority
from protocol.clock import Clock

log = logging.getLogger(__name__)


class LiveBroadcasts:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        timelines: TimelineService,
        speech: Speech,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.timelines = timelines
        self.speech = speech
        self.clock = clock
        self.feeds: dict[str, LiveFeed] = {}
        self._silence: list[bytes] = []
        self._lock = asyncio.Lock()

    def stream_url(self, live_id: str) -> str:
        return f"{self.settings.base_url}/media/live/{live_id}.mp3"

    async def start(
        self, title: str, priority: Priority, targets: Targets, author: str, max_minutes: float
    ) -> LiveBroadcast:
        """Put a live broadcast on air on its targets now; its audio comes later, from a source."""
        title = title.strip()
        if not title:
            raise Invalid("title is empty: say what the live broadcast is about")
        if priority == Priority.emergency:
            raise Invalid("a live broadcast is normal or priority; for an emergency issue an alert")
        if not targets.areas and not targets.nodes and not targets.groups:
            raise Invalid("no targets: give at least one area, group or node")
        if not self._silence:
            self._silence = await silence_frames(self.settings.stream_bitrate_kbps)
        sha, size, _ = await self.speech.chime()
        async with self._lock:
            live = await asyncio.to_thread(
                self._create, title, priority, targets, author, max_minutes, sha, size
            )
            kbps = self.settings.stream_bitrate_kbps
            self.feeds[live.id] = LiveFeed(live.id, kbps, self._silence)
        log.info("live %s on air: %r by %s", live.id, title, author)
        await self.timelines.refresh(await asyncio.to_thread(self.nodes_of, live))
        return live

    def _create(
        self,
        title: str,
        priority: Priority,
        targets: Targets,
        author: str,
        max_minutes: float,
        chime_sha: str,
        chime_size: int,
    ) -> LiveBroadcast:
        now = self.clock.now_ms()
        planned_ms = int(max_minutes * 60_000)
        live_id = secrets.token_hex(8)
        with self.db.session() as session:
            tree = self.registry.area_tree(session)
            nodes = check_targets(session, tree, targets, priority, now, planned_ms)
            self._ensure_free(session, nodes)
            ann = Announcement(
                title=title,
                text="",
                normalized_text="",
                media_sha256=chime_sha,
                media_size=chime_size,
                duration_ms=planned_ms,
                engine=LIVE,
                source=LIVE,
                created_by=author,
            )
            session.add(ann)
            session.flush()
            assert ann.id is not None
            session.add(
                PlaylistItem(
                    playlist_id=ann.id,
                    position=1,
                    kind="stream",
                    duration_ms=planned_ms,
                    media_sha256=chime_sha,
                    media_size=chime_size,
                    stream_url=f"{LIVE_PREFIX}{live_id}",
                    stream_format="mp3",
                    via_controller=True,
                )
            )
            schedule = Schedule(
                announcement_id=ann.id,
                title=title,
                starts_at=utc_datetime(now),
                priority=priority,
                status=ScheduleStatus.scheduled,
                created_by=author,
                approved_by=author,
                approved_at=utc_datetime(now),
            )
            session.add(schedule)
            session.flush()
            assert schedule.id is not None
            add_targets(session, schedule.id, targets)
            live = LiveBroadcast(
                id=live_id,
                schedule_id=schedule.id,
                title=title,
                priority=priority,
                started_by=author,
                started_at=utc_datetime(now),
                ends_by=utc_datetime(now + planned_ms),
            )
            session.add(live)
            session.commit()
            session.refresh(live)
        return live

    def _ensure_free(self, session: Session, nodes: set[str]) -> None:
        """One live voice per loudspeaker: a second would be skipped there, silently."""
        for other in session.exec(
            select(LiveBroadcast).where(LiveBroadcast.status == LiveStatus.on_air)
        ).all():
            shared = nodes & reached_nodes(session, self.registry, other.schedule_id)
            if shared:
                raise Conflict(
                    f"{other.started_by} is live on {', '.join(sorted(shared)[:5])} "
                    f"({other.title!r}, live {other.id}): stop that broadcast first"
                )

    def nodes_of(self, live: LiveBroadcast) -> set[str]:
        with self.db.session() as session:
            return reached_nodes(session, self.registry, live.schedule_id)

    def get(self, session: Session, live_id: str) -> LiveBroadcast:
        live = session.get(LiveBroadcast, live_id)
        if live is None:
            raise NotFound(f"live broadcast {live_id} does not exist")
        return live

    async def stop(self, live_id: str, by: str, reason: str = "stopped") -> LiveBroadcast:
        """End it everywhere: the stream ends (nodes finish at once), the item is shortened."""
        async with self._lock:
            live = await asyncio.to_thread(self._end, live_id, by, reason)
            feed = self.feeds.pop(live_id, None)
        if feed is not None:
            await feed.close()
        log.info("live %s ended by %s: %s", live_id, by, reason)
        await self.timelines.refresh(await asyncio.to_thread(self.nodes_of, live))
        return live

    def _end(self, live_id: str, by: str, reason: str) -> LiveBroadcast:
        now = self.clock.now_ms()
        with self.db.session() as session:
            live = self.get(session, live_id)
            if live.status != LiveStatus.on_air:
                raise Conflict(
                    f"live broadcast {live_id} already ended at {live.ended_at:%H:%M:%S} UTC "
                    f"({live.end_reason})"
                )
            spoken = max(1000, now - utc_ms(live.started_at))
            schedule = session.get(Schedule, live.schedule_id)
            assert schedule is not None
            ann = session.get(Announcement, schedule.announcement_id)
            assert ann is not None
            ann.duration_ms = spoken
            for row in session.exec(
                select(PlaylistItem).where(PlaylistItem.playlist_id == ann.id)
            ).all():
                row.duration_ms = spoken
                session.add(row)
            live.status = LiveStatus.ended
            live.ended_at = utc_datetime(now)
            live.ended_by = by[:64]
            live.end_reason = reason[:200]
            session.add_all([ann, live])
            session.commit()
            session.refresh(live)
        return live

    async def run_watch(self) -> None:
        """End what cannot go on: past its longest time, its source gone too long, or on air
        from before a restart (its stream went with the old process)."""
        await Periodic("live broadcast watch", 1.0, self._watch_once, at_start=True).run()

    async def _watch_once(self) -> None:
        # In a worker thread, as every database call here: the loop carries the live audio,
        # and a read or the audit's write may wait for SQLite's lock (ingestion writing the
        # reports of hundreds of nodes tuning in).
        # Under the lock that start() holds from its commit until its feed is in place, so a
        # broadcast started a moment ago is never taken for one from before a restart.
        async with self._lock:
            on_air = await asyncio.to_thread(self._on_air)
            feeds = dict(self.feeds)
        now = self.clock.now_ms()
        grace = self.settings.live_source_grace_s
        for live in on_air:
            feed = feeds.get(live.id)
            why = None
            if feed is None:
                why = "the controller restarted"
            elif now >= utc_ms(live.ends_by):
                why = "its longest time ran out"
            elif feed.absent_s() > grace:
                why = f"no audio source for {grace:.0f} s"
            if why is not None:
                try:
                    await self.stop(live.id, "controller", why)
                except Conflict:
                    continue
                await asyncio.to_thread(self._audit_stop, live.id, why)

    def _on_air(self) -> list[LiveBroadcast]:
        with self.db.session() as session:
            return list(
                session.exec(
                    select(LiveBroadcast).where(col(LiveBroadcast.status) == LiveStatus.on_air)
                ).all()
            )

    def _audit_stop(self, live_id: str, why: str) -> None:
        with self.db.session() as session:
            record(session, "controller", "live.stop", live_id, {"reason": why})

    async def close(self) -> None:
        for live_id in list(self.feeds):
            try:
                await self.stop(live_id, "controller", "the controller stopped")
            except Exception:
                log.exception("could not end live broadcast %s", live_id)
