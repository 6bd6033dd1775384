"""What an area hears: the schedules concerning it, their calendar, and the playback log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from controller.core.errors import Invalid
from controller.core.models import (
    Announcement,
    Delivery,
    DeliveryState,
    Node,
    Schedule,
    ScheduleTarget,
)
from controller.core.time import utc_datetime, utc_ms
from controller.fleet.groups import members
from controller.programme.recurrences import recurrence_of
from protocol import Priority
from schedules import AreaTree, Broadcast
from schedules.localtime import local_day_window

# A broadcast not reported as started this long after it should have ended was missed.
MISSED_AFTER_MS = 5 * 60 * 1000
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)
_WAITING = {DeliveryState.planned, DeliveryState.delivered, DeliveryState.downloaded}


@dataclass(frozen=True)
class Concerning:
    schedule: Schedule
    announcement: Announcement
    targets: frozenset[str]

    def broadcast(self) -> Broadcast:
        assert self.schedule.id is not None
        return Broadcast(
            id=str(self.schedule.id),
            title=self.schedule.title or self.announcement.title,
            recurrence=recurrence_of(self.schedule),
            duration_ms=self.announcement.duration_ms,
            priority=Priority(self.schedule.priority),
            targets=self.targets,
        )


def concerning(
    session: Session, tree: AreaTree, area_id: str, statuses: list[str]
) -> list[Concerning]:
    """Schedules that target the area, an area below it, one above it, or a node within it."""
    rows = session.exec(
        select(Schedule, Announcement)
        .join(Announcement, col(Announcement.id) == col(Schedule.announcement_id))
        .where(col(Schedule.status).in_(statuses))
        .order_by(col(Schedule.id))
    ).all()
    ids = [s.id for s, _ in rows]
    node_area = dict(session.exec(select(Node.id, Node.area_id)).all())
    targets: dict[int, list[ScheduleTarget]] = {}
    for t in session.exec(select(ScheduleTarget).where(col(ScheduleTarget.schedule_id).in_(ids))):
        targets.setdefault(t.schedule_id, []).append(t)
    groups = members(
        session, {t.target_id for ts in targets.values() for t in ts if t.kind == "group"}
    )
    out = []
    for schedule, ann in rows:
        assert schedule.id is not None
        ts = targets.get(schedule.id, [])
        areas = {t.target_id for t in ts if t.kind == "area"}
        nodes = {t.target_id for t in ts if t.kind == "node"}
        for t in ts:
            if t.kind == "group":  # a group reaches its members, wherever they stand
                nodes |= groups.get(t.target_id, set())
        places = areas | {node_area.get(n, "") for n in nodes}
        if any(a in tree.lineage(area_id) or tree.contains(area_id, a) for a in places if a):
            out.append(Concerning(schedule, ann, frozenset(areas | nodes)))
    return out


@dataclass(frozen=True)
class LogRow:
    """One broadcast on one loudspeaker: what was planned and what the node reported."""

    item_id: str
    schedule_id: int
    title: str
    node_id: str
    planned_start: datetime
    planned_duration_ms: int
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    detail: str


def playback_log(
    session: Session, tree: AreaTree, area_id: str, day: date, now_ms: int
) -> list[LogRow]:
    """Deliveries planned on the local day to nodes in the area, oldest first.

    A delivery never reported as started well after its planned end shows as missed: the
    node was off, or never got the timeline, so it has nothing to report.
    """
    lo, hi = local_day_window(day, day)
    rows = session.exec(
        select(Delivery, Schedule, Announcement, Node.area_id)
        .join(Schedule, col(Schedule.id) == col(Delivery.schedule_id))
        .join(Announcement, col(Announcement.id) == col(Schedule.announcement_id))
        .join(Node, col(Node.id) == col(Delivery.node_id))
        .where(col(Delivery.planned_start) >= utc_datetime(lo))
        .where(col(Delivery.planned_start) < utc_datetime(hi))
        .order_by(col(Delivery.planned_start), col(Delivery.node_id))
    ).all()
    out = []
    for d, schedule, ann, node_area in rows:
        if not tree.contains(area_id, node_area):
            continue
        state = d.state
        end = utc_ms(d.planned_start) + (d.planned_duration_ms or ann.duration_ms)
        if state in _WAITING and end + MISSED_AFTER_MS < now_ms:
            state = DeliveryState.missed
        out.append(
            LogRow(
                d.item_id,
                d.schedule_id,
                schedule.title or ann.title,
                d.node_id,
                d.planned_start,
                d.planned_duration_ms or ann.duration_ms,
                state,
                d.started_at,
                d.finished_at,
                d.detail,
            )
        )
    return out


def check_day(day: date, name: str) -> None:
    """Refuse days no broadcast can fall on, before they overflow a time computation."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid(
            f"'{name}' {day} is out of range: give a day from {FIRST_DAY} to {LAST_DAY}",
            code="time_out_of_range",
        )


def day_span(first: date, last: date, limit_days: int) -> None:
    """Refuse a reversed or too long range, saying what to change."""
    check_day(first, "from")
    check_day(last, "to")
    if last < first:
        raise Invalid(f"'to' {last} is before 'from' {first}: swap them")
    if last - first >= timedelta(days=limit_days):
        raise Invalid(f"the range is {(last - first).days + 1} days; ask for {limit_days} at most")
