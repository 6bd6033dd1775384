"""Each node's desired timeline: computed from the schedules, versioned, signed, published retained.

A node gets a new version only when its items change, so a schedule change reaches exactly the
nodes it affects. Deliveries (one row per item and node) are created as items enter timelines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from controller.core.config import Settings
from controller.core.db import (
    Database,
    in_chunks,
    insert_rows,
    is_transient,
    lock_order,
    rows_by_pair,
    update_rows,
)
from controller.core.models import (
    Delivery,
    DeliveryState,
    Node,
    ScheduleTarget,
)
from controller.core.periodic import Periodic
from controller.core.time import utc_datetime, utc_ms
from controller.fleet.groups import members
from controller.fleet.registry import Registry
from controller.mqtt.gateway import Gateway, NotConnected
from controller.programme.occurrences import Reach, quiet_map, scheduled_occurrences
from protocol import MediaRef, Signer, TimelineBody, TimelineItem, Topics
from protocol.clock import Clock
from schedules import (
    KEPT_AFTER_END_MS,
    NodeTimeline,
    Occurrence,
    OccurrenceIndex,
    occurrence_of,
    plan_node_timeline,
    timeline_digest,
)
from schedules.quiet import QuietMap
from schedules.timeline import AreaTree

log = logging.getLogger(__name__)

TIMELINE_TTL_MS = 7 * 24 * 3600 * 1000
COMPUTE_ATTEMPTS = 4  # a deadlock victim runs again; PostgreSQL detects one in ~1 s
# Timelines in flight at once (QoS 1: each waits for the broker's acknowledgement); a live
# broadcast to a thousand nodes goes out in a handful of windows.
PUBLISH_WINDOW = 250
_WAITING = (DeliveryState.planned, DeliveryState.delivered, DeliveryState.downloaded)
_NODE = Node.__table__  # type: ignore[attr-defined]
_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
# What planning changes of a delivery already there (with its id, the key).
_REPLANNED = ("id", "state", "planned_start", "planned_duration_ms", "timeline_version")
# A new delivery's columns that only the node's reports fill.
_UNREPORTED: dict[str, Any] = {
    "delivered_at": None,
    "downloaded_at": None,
    "started_at": None,
    "finished_at": None,
    "failed_at": None,
    "detail": "",
}


@dataclass
class PlannedNode:
    """What the timeline computation reads and changes of a node."""

    id: str
    area_id: str
    timeline_version: int
    timeline_digest: str


_IN_CHUNK = 800  # item ids per query


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
        # Media every node should hold in advance (the alert templates), set by the alerts.
        self.prefetch: list[MediaRef] = []
        self.settings = settings
        self.db = db
        self.registry = registry
        self.topics = topics
        self.signer = signer
        self.clock = clock
        self._lock = asyncio.Lock()

    def media_url(self, sha256: str) -> str:
        return f"{self.settings.base_url}/media/{sha256}.mp3"

    def occurrences(
        self, session: Session, now_ms: int, horizon_end_ms: int, *, exclude: int | None = None
    ) -> list[Occurrence]:
        return scheduled_occurrences(session, self.media_url, now_ms, horizon_end_ms, exclude)

    @property
    def horizon_ms(self) -> int:
        return int(self.settings.timeline_horizon_h * 3600 * 1000)

    def window(self) -> tuple[int, int]:
        now = self.clock.now_ms()
        return now, now + self.horizon_ms

    def plan(
        self,
        node: Node | PlannedNode,
        tree: AreaTree,
        occurrences: list[Occurrence],
        quiet: QuietMap,
        now: int,
        horizon_end: int,
        deferred: Collection[str] = (),
    ) -> NodeTimeline:
        """Quiet hours dropped, then overlaps resolved by priority and each schedule's policy."""
        return plan_node_timeline(
            node.id,
            node.area_id,
            tree,
            occurrences,
            now,
            horizon_end,
            resolve_conflicts=True,
            quiet_by_area=quiet,
            deferred=deferred,
        )

    @staticmethod
    def deferred(
        session: Session, node_ids: Collection[str] | None, occurrences: list[Occurrence], now: int
    ) -> dict[str, set[str]]:
        """Per node, the occurrences whose own start has passed but that its last timeline
        put later (shifted or queued behind another), at a place that has not ended yet (or
        ended so lately that the node may still be playing it, `KEPT_AFTER_END_MS`): the
        node has not begun them, so they may still move, or it plays them there now, and they
        must stay where they are (placed as an item it has begun, at their own start, the
        item that pushed them would cut them, and the node would stop them mid-sentence).
        Only what the node was told, kept in its deliveries, can say so: for a playlist, any
        part still to play or playing (the ones before it may have finished)."""
        # Each timeline item an occurrence became, with its offset in the occurrence.
        parts: dict[str, tuple[Occurrence, int]] = {}
        for o in occurrences:
            if o.start_ms <= now:
                parts[o.item_id] = (o, 0)
                for n, part in enumerate(o.parts):
                    parts[f"{o.item_id}#{n}"] = (o, part.offset_ms)
        ids = list(parts)
        out: dict[str, set[str]] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            query = select(Delivery.node_id, Delivery.item_id, Delivery.planned_start).where(
                col(Delivery.item_id).in_(ids[i : i + _IN_CHUNK]),
                col(Delivery.state).in_((*_WAITING, DeliveryState.started)),
            )
            if node_ids is not None:
                query = query.where(col(Delivery.node_id).in_(node_ids))
            for node_id, item_id, planned_start in session.exec(query).all():
                occ, offset = parts[item_id]
                placed = utc_ms(planned_start) - offset
                if placed > occ.start_ms and placed + occ.duration_ms + KEPT_AFTER_END_MS > now:
                    out.setdefault(node_id, set()).add(occ.item_id)
        return out

    def view(self, node: Node) -> tuple[NodeTimeline, int, int]:
        """The node's timeline as it would be computed now, with what resolution changed."""
        now, horizon_end = self.window()
        with self.db.session() as session:
            tree = self.registry.area_tree(session)
            reach = Reach(set(tree.lineage(node.area_id)), {node.id})
            occurrences = scheduled_occurrences(
                session, self.media_url, now, horizon_end, reach=reach
            )
            deferred = self.deferred(session, {node.id}, occurrences, now).get(node.id, set())
            plan = self.plan(
                node, tree, occurrences, quiet_map(session), now, horizon_end, deferred
            )
        return plan, now, horizon_end

    def compute(self, node_ids: set[str] | None, force: bool) -> list[Publication]:
        """Recompute timelines (all nodes, or the given ones) and store new versions."""
        now, horizon_end = self.window()
        out: list[Publication] = []
        with self.db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Instances sharing the database take turns: versions never race.
                session.execute(text("SELECT pg_advisory_xact_lock(7231003)"))
            tree = self.registry.area_tree(session)
            query = select(
                Node.id, Node.area_id, Node.timeline_version, Node.timeline_digest
            ).where(Node.retired == False)  # noqa: E712
            if node_ids is not None:
                query = query.where(col(Node.id).in_(node_ids))
            nodes = [PlannedNode(*row) for row in session.exec(query.order_by(col(Node.id)))]
            reach = None
            if node_ids is not None:
                # Only the schedules that can reach these nodes: one change stays cheap however
                # large the province's programme.
                reach = Reach(
                    {a for n in nodes for a in tree.lineage(n.area_id)}, {n.id for n in nodes}
                )
            occurrences = scheduled_occurrences(
                session, self.media_url, now, horizon_end, reach=reach
            )
            index = OccurrenceIndex(occurrences)
            quiet = quiet_map(session)
            deferred = self.deferred(session, node_ids, occurrences, now)
            replanned: list[tuple[PlannedNode, list[TimelineItem], list[Occurrence]]] = []
            for node in nodes:
                mine = index.for_node(node.id, tree.lineage(node.area_id))
                items = self.plan(
                    node, tree, mine, quiet, now, horizon_end, deferred.get(node.id, set())
                ).items
                digest = timeline_digest(items, self.prefetch)
                changed = digest != node.timeline_digest or node.timeline_version == 0
                if changed:
                    node.timeline_version += 1
                    node.timeline_digest = digest
                    replanned.append((node, items, mine))
                if changed or force:
                    body = TimelineBody(
                        node_id=node.id,
                        version=node.timeline_version,
                        generated_at=now,
                        horizon_end=horizon_end,
                        items=items,
                        prefetch=self.prefetch,
                    )
                    out.append(Publication(node.id, body))
            self._store_versions(session, [node for node, _items, _occ in replanned])
            self._plan_deliveries(session, replanned)
            session.commit()
        return out

    @staticmethod
    def _store_versions(session: Session, nodes: list[PlannedNode]) -> None:
        """The new versions, in one statement, once their rows are locked in ascending id (as
        every writer of node rows takes them: no deadlock with ingestion)."""
        ids = sorted(n.id for n in nodes)
        for chunk in in_chunks(ids):
            session.exec(
                select(Node.id)
                .where(col(Node.id).in_(chunk))
                .order_by(lock_order(session, col(Node.id)))
                .with_for_update(key_share=True)
            ).all()
        update_rows(
            session,
            _NODE,
            "id",
            [
                {
                    "id": n.id,
                    "timeline_version": n.timeline_version,
                    "timeline_digest": n.timeline_digest,
                }
                for n in nodes
            ],
        )

    def _plan_deliveries(
        self,
        session: Session,
        replanned: list[tuple[PlannedNode, list[TimelineItem], list[Occurrence]]],
    ) -> None:
        """The deliveries of every node whose timeline changed, in a few statements however many
        nodes: the waiting deliveries of all of them read at once, then those already reported
        for items still on their timelines (an item playing now); the new ones inserted in one
        statement, the changed ones updated in another."""
        if not replanned:
            return
        conn = session.connection()
        waiting: dict[str, dict[str, dict[str, Any]]] = {}
        for chunk in in_chunks([node.id for node, _items, _occ in replanned]):
            for row in conn.execute(
                select(_DELIVERY).where(
                    _DELIVERY.c.node_id.in_(chunk), _DELIVERY.c.state.in_(_WAITING)
                )
            ):
                waiting.setdefault(row.node_id, {})[row.item_id] = dict(row._mapping)
        missing = {
            (node.id, item.item_id)
            for node, items, _occ in replanned
            for item in items
            if item.item_id not in waiting.get(node.id, {})
        }
        reported = rows_by_pair(session, _DELIVERY, "node_id", "item_id", missing)
        now = self.clock.now_ms()
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for node, items, occurrences in replanned:
            by_item = {o.item_id: o for o in occurrences}
            existing = waiting.get(node.id, {})
            for item in items:
                d = existing.get(item.item_id) or reported.get((node.id, item.item_id))
                if d is None and item.start + item.duration_ms <= now:
                    # Kept a while after its end for a node playing it late; a node that
                    # learns of it only now could never have played it.
                    continue
                if d is None:
                    occ = by_item[occurrence_of(item.item_id)]
                    d = {
                        "item_id": item.item_id,
                        "schedule_id": int(occ.broadcast_id),
                        "node_id": node.id,
                        "planned_start": utc_datetime(item.start),
                        "planned_duration_ms": item.duration_ms,
                        "state": DeliveryState.planned.value,
                        "timeline_version": node.timeline_version,
                        **_UNREPORTED,
                    }
                    new.append(d)
                    continue
                if d["state"] in _WAITING:
                    # A shift or a cut moves what the node is to play; what it did stays as
                    # reported.
                    d["planned_start"] = utc_datetime(item.start)
                    d["planned_duration_ms"] = item.duration_ms
                d["timeline_version"] = node.timeline_version
                changed.append(d)
            # Items that left the timeline before their time: their schedule was cancelled or
            # no longer targets this node. Items that left because they ended keep their state.
            present = {i.item_id for i in items}
            for item_id, d in existing.items():
                if item_id not in present and utc_ms(d["planned_start"]) > now:
                    d["state"] = DeliveryState.cancelled.value
                    changed.append(d)
        insert_rows(session, Delivery, new)
        update_rows(
            session,
            _DELIVERY,
            "id",
            [{c: d[c] for c in _REPLANNED} for d in {d["id"]: d for d in changed}.values()],
        )

    async def refresh(self, node_ids: set[str] | None = None, force: bool = False) -> int:
        """Recompute and publish; returns how many timelines were published."""
        async with self._lock:
            pubs = await self._compute(node_ids, force)
        sent = 0
        # A window of publishes in flight (QoS 1 waits for each acknowledgement); the first
        # failure ends the round: every timeline goes out again when the broker is back. Each
        # window is signed in a worker thread, off the loop that serves the nodes.
        for start in range(0, len(pubs), PUBLISH_WINDOW):
            window = pubs[start : start + PUBLISH_WINDOW]
            signed = await asyncio.to_thread(self.sign_all, window)
            done = await asyncio.gather(
                *(self.send(p, b) for p, b in zip(window, signed, strict=True))
            )
            sent += sum(done)
            if not all(done):
                log.warning(
                    "broker unavailable: %d timeline(s) wait for the reconnect", len(pubs) - sent
                )
                break
        if pubs:
            log.info("published %d timeline(s)", sent)
        return sent

    async def _compute(self, node_ids: set[str] | None, force: bool) -> list[Publication]:
        """compute() in a worker thread, run again when PostgreSQL rolled it back as a deadlock
        victim or a serialisation failure (nothing of it was kept)."""
        for attempt in range(1, COMPUTE_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self.compute, node_ids, force)
            except OperationalError as exc:
                if not is_transient(exc) or attempt == COMPUTE_ATTEMPTS:
                    raise
                log.warning("timeline computation rolled back (%s); running it again", exc.orig)
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def sign_all(self, pubs: list[Publication]) -> list[bytes]:
        return [self.sign(p) for p in pubs]

    def sign(self, pub: Publication) -> bytes:
        return self.signer.sign(
            "timeline", pub.body.model_dump(mode="json"), self.clock.now_ms(), TIMELINE_TTL_MS
        )

    async def send(self, pub: Publication, payload: bytes) -> bool:
        try:
            await self.gateway.publish(self.topics.timeline(pub.node_id), payload, 1, True)
        except NotConnected:
            # Published again, with every other timeline, when the broker is back.
            log.debug("broker unavailable; timeline of %s will go out on reconnect", pub.node_id)
            return False
        return True

    async def run_horizon(self) -> None:
        """Roll the horizon forward: items entering it reach nodes without any schedule change."""
        await Periodic("timeline refresh", self.settings.timeline_refresh_s, self.refresh).run()


def affected_nodes(session: Session, registry: Registry, schedule_id: int) -> set[str]:
    targets = session.exec(
        select(ScheduleTarget).where(ScheduleTarget.schedule_id == schedule_id)
    ).all()
    areas = {t.target_id for t in targets if t.kind == "area"}
    result = {t.target_id for t in targets if t.kind == "node"}
    for group in members(session, {t.target_id for t in targets if t.kind == "group"}).values():
        result |= group
    return result | {n.id for n in registry.nodes_under(session, areas)}
