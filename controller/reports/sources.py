"""The log rows a report is made of, for the nodes under an area in a window: plays (playback-log
deliveries and alert receipts), alert targets, alarms and presence.

How a node counts: in its own area (the village it is registered in) and so in every area above
it. An area's figures are those of every node whose area is the area or lies below it; nodes
registered on the area itself (not in one of its children) are the area's "own nodes"."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Session, col, func, select

from controller.core.models import (
    Alarm,
    Alert,
    AlertReceipt,
    Announcement,
    Delivery,
    DeliveryState,
    Node,
    NodeStateChange,
    PlaylistItem,
    Schedule,
)
from controller.core.time import utc_datetime, utc_ms
from controller.programme.programme import MISSED_AFTER_MS
from controller.reports.periods import Window
from schedules import AreaTree


class Category(StrEnum):
    policy_law = "policy_law"
    local_news = "local_news"
    emergency = "emergency"  # alerts, and scheduled content marked so
    relay = "relay"  # a playlist's stream entry: a relayed station
    live = "live"  # an officer speaking live


def aware(dt: datetime) -> datetime:
    # Stored times are UTC; a database that drops the offset still means UTC.
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Play:
    """One loudspeaker playing one item: a playback-log delivery, or an alert receipt."""

    source: str  # "delivery" (id: Delivery.id) or "alert_receipt" (id: AlertReceipt.id)
    id: int
    node_id: str
    area_id: str
    category: Category
    broadcast: str  # the occurrence (the item id without a playlist's "#n") or the alert id
    item_id: str
    title: str
    planned_start: datetime  # a delivery's planned start; an alert's issue time
    started_at: datetime
    ended_at: datetime | None  # None: the node never reported the end

    @property
    def aired_ms(self) -> int | None:
        if self.ended_at is None or self.ended_at < self.started_at:
            return None
        return utc_ms(self.ended_at) - utc_ms(self.started_at)


@dataclass(frozen=True)
class NotPlayed:
    """A delivery planned in the period that no node reported starting, well after its end
    (the playback log shows it as missed, failed or pre-empted before it began)."""

    id: int
    node_id: str
    area_id: str
    item_id: str
    planned_start: datetime
    state: str


@dataclass(frozen=True)
class AlertTarget:
    """One node an alert was for, and its confirmation (the first report it got the alert)."""

    alert_id: str
    node_id: str
    area_id: str
    title: str
    issued_at: datetime
    receipt_id: int | None
    received_at: datetime | None

    @property
    def delay_ms(self) -> int | None:
        if self.received_at is None:
            return None
        return max(0, utc_ms(self.received_at) - utc_ms(self.issued_at))


@dataclass(frozen=True)
class Fault:
    """An alarm raised in the window; repaired when it was cleared."""

    alarm_id: int
    node_id: str
    area_id: str
    kind: str
    raised_at: datetime
    cleared_at: datetime | None

    @property
    def repair_ms(self) -> int | None:
        if self.cleared_at is None:
            return None
        return max(0, utc_ms(self.cleared_at) - utc_ms(self.raised_at))


@dataclass(frozen=True)
class Uptime:
    """A node's time online in the window, from its state changes. `known_ms` counts from the
    first state the controller recorded (before it, the state is unknown and not counted) to
    the end of the window or now, whichever is first."""

    node_id: str
    area_id: str
    online_ms: int
    known_ms: int
    change_ids: tuple[int, ...]


@dataclass
class Sources:
    nodes: dict[str, str] = field(default_factory=dict)  # node id → its area
    plays: list[Play] = field(default_factory=list)
    not_played: list[NotPlayed] = field(default_factory=list)
    alerts: list[AlertTarget] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    uptime: list[Uptime] = field(default_factory=list)


def collect(session: Session, tree: AreaTree, area_id: str, win: Window, now_ms: int) -> Sources:
    lo, hi = utc_datetime(win.start_ms), utc_datetime(win.end_ms)
    out = Sources()
    active: set[str] = set()
    for node_id, node_area, retired in session.exec(
        select(Node.id, Node.area_id, Node.retired)
    ).all():
        if tree.contains(area_id, node_area):
            out.nodes[node_id] = node_area
            if not retired:
                active.add(node_id)
    out.plays = _deliveries(session, out.nodes, lo, hi)
    out.not_played = _not_played(session, out.nodes, lo, hi, now_ms)
    alert_plays, out.alerts = _alerts(session, tree, out.nodes, lo, hi)
    out.plays += alert_plays
    out.plays.sort(key=lambda p: (p.started_at, p.node_id))
    out.faults = _faults(session, out.nodes, lo, hi)
    out.uptime = _uptime(session, out.nodes, active, win, now_ms)
    return out


def _deliveries(session: Session, nodes: dict[str, str], lo: datetime, hi: datetime) -> list[Play]:
    rows = session.exec(
        select(Delivery, Schedule.announcement_id, Schedule.title)
        .join(Schedule, col(Schedule.id) == col(Delivery.schedule_id))
        .where(col(Delivery.planned_start) >= lo)
        .where(col(Delivery.planned_start) < hi)
        .where(col(Delivery.started_at).is_not(None))
    ).all()
    rows = [r for r in rows if r[0].node_id in nodes]
    ann_ids = {ann_id for _d, ann_id, _t in rows}
    anns = {
        a.id: a
        for a in session.exec(select(Announcement).where(col(Announcement.id).in_(ann_ids))).all()
    }
    parts = _part_kinds(
        session, {i for i, a in anns.items() if i is not None and a.source in ("playlist", "live")}
    )
    plays = []
    for d, ann_id, schedule_title in rows:
        ann = anns[ann_id]
        base, _, part = d.item_id.partition("#")
        kinds = parts.get(ann_id, [])
        if ann.source == "live":
            category = Category.live
        elif part.isdigit() and int(part) < len(kinds) and kinds[int(part)] == "stream":
            category = Category.relay
        else:
            category = Category(ann.category)
        assert d.id is not None and d.started_at is not None
        plays.append(
            Play(
                "delivery",
                d.id,
                d.node_id,
                nodes[d.node_id],
                category,
                base,
                d.item_id,
                schedule_title or ann.title,
                aware(d.planned_start),
                aware(d.started_at),
                aware(d.finished_at) if d.finished_at else None,
            )
        )
    return plays


_WAITING = (DeliveryState.planned, DeliveryState.delivered, DeliveryState.downloaded)


def _not_played(
    session: Session, nodes: dict[str, str], lo: datetime, hi: datetime, now_ms: int
) -> list[NotPlayed]:
    rows = session.exec(
        select(Delivery)
        .where(col(Delivery.planned_start) >= lo)
        .where(col(Delivery.planned_start) < hi)
        .where(col(Delivery.started_at).is_(None))
        .where(Delivery.state != DeliveryState.cancelled)
        .order_by(col(Delivery.planned_start), col(Delivery.node_id))
    ).all()
    return [
        NotPlayed(
            d.id,
            d.node_id,
            nodes[d.node_id],
            d.item_id,
            aware(d.planned_start),
            # As the playback log reads it: still waiting after its end is missed.
            DeliveryState.missed if d.state in _WAITING else d.state,
        )
        for d in rows
        if d.id is not None
        and d.node_id in nodes
        and utc_ms(aware(d.planned_start)) + d.planned_duration_ms + MISSED_AFTER_MS < now_ms
    ]


def _part_kinds(session: Session, playlist_ids: set[int]) -> dict[int, list[str]]:
    """Each playlist's audible entries in order, as its timeline items number them (`#n`);
    silences are gaps, not items."""
    out: dict[int, list[str]] = defaultdict(list)
    if not playlist_ids:
        return out
    for item in session.exec(
        select(PlaylistItem)
        .where(col(PlaylistItem.playlist_id).in_(playlist_ids))
        .order_by(col(PlaylistItem.playlist_id), col(PlaylistItem.position))
    ).all():
        if item.kind != "silence":
            out[item.playlist_id].append(item.kind)
    return out


def _alerts(
    session: Session, tree: AreaTree, nodes: dict[str, str], lo: datetime, hi: datetime
) -> tuple[list[Play], list[AlertTarget]]:
    """Alerts issued in the window (drills, `test`, are left out) to nodes under the area."""
    alerts = [
        a
        for a in session.exec(
            select(Alert).where(Alert.test == False).where(col(Alert.created_at) < hi)  # noqa: E712
        ).all()
        if lo <= aware(a.issued_at or a.created_at) < hi
    ]
    if not alerts:
        return [], []
    receipts: dict[tuple[str, str], AlertReceipt] = {
        (r.alert_id, r.node_id): r
        for r in session.exec(
            select(AlertReceipt).where(col(AlertReceipt.alert_id).in_([a.id for a in alerts]))
        ).all()
    }
    plays: list[Play] = []
    targets: list[AlertTarget] = []
    for alert in alerts:
        issued = aware(alert.issued_at or alert.created_at)
        areas = json.loads(alert.areas)
        for node_id, node_area in nodes.items():
            r = receipts.get((alert.id, node_id))
            if r is None and not any(tree.contains(a, node_area) for a in areas):
                continue
            received = aware(r.received_at) if r and r.received_at else None
            targets.append(
                AlertTarget(
                    alert.id,
                    node_id,
                    node_area,
                    alert.title,
                    issued,
                    r.id if r else None,
                    received,
                )
            )
            if r is not None and r.id is not None and r.started_at is not None:
                end = r.finished_at or r.stopped_at
                plays.append(
                    Play(
                        "alert_receipt",
                        r.id,
                        node_id,
                        node_area,
                        Category.emergency,
                        alert.id,
                        alert.id,
                        alert.title,
                        issued,
                        aware(r.started_at),
                        aware(end) if end else None,
                    )
                )
    return plays, targets


def _faults(session: Session, nodes: dict[str, str], lo: datetime, hi: datetime) -> list[Fault]:
    rows = session.exec(
        select(Alarm)
        .where(col(Alarm.raised_at) >= lo)
        .where(col(Alarm.raised_at) < hi)
        .order_by(col(Alarm.raised_at))
    ).all()
    return [
        Fault(
            a.id,
            a.node_id,
            nodes[a.node_id],
            a.kind,
            aware(a.raised_at),
            aware(a.cleared_at) if a.cleared_at else None,
        )
        for a in rows
        if a.node_id in nodes and a.id is not None
    ]


def _uptime(
    session: Session, nodes: dict[str, str], active: set[str], win: Window, now_ms: int
) -> list[Uptime]:
    end_ms = min(win.end_ms, now_ms)
    changes: dict[str, list[NodeStateChange]] = defaultdict(list)
    if end_ms > win.start_ms:
        start = utc_datetime(win.start_ms)
        # Each node's state as the period begins: its last change before it (one per node,
        # not the whole history), then the changes inside the period.
        last_before = (
            select(NodeStateChange.node_id, func.max(NodeStateChange.id).label("last"))
            .where(col(NodeStateChange.ts) < start)
            .group_by(col(NodeStateChange.node_id))
            .subquery()
        )
        earlier = session.exec(
            select(NodeStateChange).join(last_before, col(NodeStateChange.id) == last_before.c.last)
        ).all()
        inside = session.exec(
            select(NodeStateChange)
            .where(col(NodeStateChange.ts) >= start)
            .where(col(NodeStateChange.ts) < utc_datetime(end_ms))
        ).all()
        for c in sorted([*earlier, *inside], key=lambda c: (aware(c.ts), c.id or 0)):
            if c.node_id in active:
                changes[c.node_id].append(c)
    out = []
    for node_id in sorted(active):
        online = known = 0
        used: list[int] = []
        state: str | None = None
        since = win.start_ms
        before: NodeStateChange | None = None
        for c in changes.get(node_id, []):
            ts = utc_ms(aware(c.ts))
            if ts < win.start_ms:
                before = c
                state = c.state
                continue
            if state is not None:
                known += ts - since
                online += ts - since if state == "online" else 0
            state, since = c.state, ts
            used.append(c.id or 0)
        if before is not None and before.id is not None:
            used.insert(0, before.id)
        if state is not None and end_ms > since:
            known += end_ms - since
            online += end_ms - since if state == "online" else 0
        out.append(Uptime(node_id, nodes[node_id], online, known, tuple(used)))
    return out
