"""Each node's desired timeline: computed from the schedules, versioned, signed, published retained.

A node gets a new version only when its items change, so a schedule change reaches exactly the
nodes it affects. Deliveries (one row per item and node) are created as items enter timelines.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from controller.config import Settings
from controller.db import Database
from controller.gateway import Gateway, NotConnected
from controller.models import (
    Announcement,
    Delivery,
    DeliveryState,
    Node,
    Schedule,
    ScheduleStatus,
    ScheduleTarget,
)
from controller.registry import Registry
from protocol import MediaRef, Priority, Signer, TimelineBody, TimelineItem, Topics
from protocol.clock import Clock
from schedules import Occurrence, node_timeline, timeline_digest

log = logging.getLogger(__name__)

TIMELINE_TTL_MS = 7 * 24 * 3600 * 1000
MAX_ITEM_MS = 6 * 3600 * 1000


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def item_id_for(schedule_id: int, start_ms: int) -> str:
    return f"s{schedule_id}@{start_ms}"


@dataclass
class Publication:
    node_id: str
    body: TimelineBody


class TimelineService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        topics: Topics,
        signer: Signer,
        clock: Clock,
        gateway: Gateway,
    ) -> None:
        self.gateway = gateway
        self.settings = settings
        self.db = db
        self.registry = registry
        self.topics = topics
        self.signer = signer
        self.clock = clock
        self._lock = asyncio.Lock()

    def media_url(self, sha256: str) -> str:
        return f"{self.settings.base_url}/media/{sha256}.mp3"

    def occurrences(self, session: Session, now_ms: int, horizon_end_ms: int) -> list[Occurrence]:
        earliest = from_ms(now_ms - MAX_ITEM_MS)
        latest = from_ms(horizon_end_ms)
        rows = session.exec(
            select(Schedule, Announcement)
            .join(Announcement, col(Announcement.id) == col(Schedule.announcement_id))
            .where(Schedule.status == ScheduleStatus.scheduled)
            .where(Schedule.starts_at >= earliest)
            .where(Schedule.starts_at < latest)
        ).all()
        if not rows:
            return []
        ids = [s.id for s, _ in rows]
        targets: dict[int, list[ScheduleTarget]] = {}
        for t in session.exec(
            select(ScheduleTarget).where(col(ScheduleTarget.schedule_id).in_(ids))
        ).all():
            targets.setdefault(t.schedule_id, []).append(t)
        result = []
        for schedule, ann in rows:
            assert schedule.id is not None
            start = to_ms(schedule.starts_at)
            ts = targets.get(schedule.id, [])
            result.append(
                Occurrence(
                    item_id=item_id_for(schedule.id, start),
                    broadcast_id=str(schedule.id),
                    start_ms=start,
                    duration_ms=ann.duration_ms,
                    media=MediaRef(
                        url=self.media_url(ann.media_sha256),
                        sha256=ann.media_sha256,
                        size=ann.media_size,
                    ),
                    priority=Priority(schedule.priority),
                    title=ann.title,
                    areas=frozenset(t.target_id for t in ts if t.kind == "area"),
                    nodes=frozenset(t.target_id for t in ts if t.kind == "node"),
                )
            )
        return result

    def compute(self, node_ids: set[str] | None, force: bool) -> list[Publication]:
        """Recompute timelines (all nodes, or the given ones) and store new versions."""
        now = self.clock.now_ms()
        horizon_end = now + int(self.settings.timeline_horizon_h * 3600 * 1000)
        out: list[Publication] = []
        with self.db.session() as session:
            tree = self.registry.area_tree(session)
            occurrences = self.occurrences(session, now, horizon_end)
            query = select(Node).where(Node.retired == False)  # noqa: E712
            if node_ids is not None:
                query = query.where(col(Node.id).in_(node_ids))
            for node in session.exec(query).all():
                items = node_timeline(node.id, node.area_id, tree, occurrences, now, horizon_end)
                digest = timeline_digest(items)
                changed = digest != node.timeline_digest or node.timeline_version == 0
                if changed:
                    node.timeline_version += 1
                    node.timeline_digest = digest
                    session.add(node)
                    self._plan_deliveries(session, node, items, occurrences)
                if changed or force:
                    body = TimelineBody(
                        node_id=node.id,
                        version=node.timeline_version,
                        generated_at=now,
                        horizon_end=horizon_end,
                        items=items,
                    )
                    out.append(Publication(node.id, body))
            session.commit()
        return out

    def _plan_deliveries(
        self, session: Session, node: Node, items: list[TimelineItem], occurrences: list[Occurrence]
    ) -> None:
        by_item = {o.item_id: o for o in occurrences}
        existing = {
            d.item_id: d
            for d in session.exec(
                select(Delivery).where(
                    Delivery.node_id == node.id,
                    col(Delivery.state).in_(
                        [DeliveryState.planned, DeliveryState.delivered, DeliveryState.downloaded]
                    ),
                )
            ).all()
        }
        present = {i.item_id for i in items}
        for item in items:
            d = existing.get(item.item_id)
            if d is None:
                d = session.exec(
                    select(Delivery).where(
                        Delivery.node_id == node.id, Delivery.item_id == item.item_id
                    )
                ).first()
            if d is None:
                occ = by_item[item.item_id]
                d = Delivery(
                    item_id=item.item_id,
                    schedule_id=int(occ.broadcast_id),
                    node_id=node.id,
                    planned_start=from_ms(occ.start_ms),
                )
            d.timeline_version = node.timeline_version
            session.add(d)
        # Items that left the timeline before their time: their schedule was cancelled or no
        # longer targets this node. Items that left because they ended keep their state.
        now = self.clock.now_ms()
        for item_id, d in existing.items():
            if item_id not in present and to_ms(d.planned_start) > now:
                d.state = DeliveryState.cancelled
                session.add(d)

    async def refresh(self, node_ids: set[str] | None = None, force: bool = False) -> int:
        """Recompute and publish; returns how many timelines were published."""
        async with self._lock:
            pubs = await asyncio.to_thread(self.compute, node_ids, force)
        sent = 0
        for pub in pubs:
            if await self.publish(pub):
                sent += 1
        if pubs:
            log.info("published %d timeline(s)", sent)
        return sent

    async def publish(self, pub: Publication) -> bool:
        payload = self.signer.sign(
            "timeline", pub.body.model_dump(mode="json"), self.clock.now_ms(), TIMELINE_TTL_MS
        )
        try:
            await self.gateway.publish(self.topics.timeline(pub.node_id), payload, 1, True)
        except NotConnected:
            # Published again, with every other timeline, when the broker is back.
            log.warning("broker unavailable; timeline of %s will go out on reconnect", pub.node_id)
            return False
        return True

    async def run_horizon(self) -> None:
        """Roll the horizon forward: items entering it reach nodes without any schedule change."""
        while True:
            await asyncio.sleep(self.settings.timeline_refresh_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("periodic timeline refresh failed")


def affected_nodes(session: Session, registry: Registry, schedule_id: int) -> set[str]:
    targets = session.exec(
        select(ScheduleTarget).where(ScheduleTarget.schedule_id == schedule_id)
    ).all()
    tree = registry.area_tree(session)
    areas = {t.target_id for t in targets if t.kind == "area"}
    result = {t.target_id for t in targets if t.kind == "node"}
    for node_id, area_id in session.exec(
        select(Node.id, Node.area_id).where(Node.retired == False)  # noqa: E712
    ).all():
        if any(a in areas for a in tree.lineage(area_id)):
            result.add(node_id)
    return result
