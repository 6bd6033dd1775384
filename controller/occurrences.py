"""The broadcasts schedules give: each scheduled schedule expanded into timeline occurrences."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from controller.models import (
    Announcement,
    QuietHoursRule,
    Schedule,
    ScheduleStatus,
    ScheduleTarget,
)
from controller.recurrences import starts_between
from protocol import MediaRef, Priority
from schedules import Occurrence, Policy, QuietHours
from schedules.quiet import QuietMap

# Items start looking this far back, so one still playing keeps its place in the timeline.
MAX_ITEM_MS = 6 * 3600 * 1000


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def quiet_map(session: Session) -> QuietMap:
    return {r.area_id: QuietHours(r.start, r.end) for r in session.exec(select(QuietHoursRule))}


def item_id_for(schedule_id: int, start_ms: int) -> str:
    return f"s{schedule_id}@{start_ms}"


def scheduled_occurrences(
    session: Session,
    media_url: Callable[[str], str],
    now_ms: int,
    horizon_end_ms: int,
    exclude: int | None = None,
) -> list[Occurrence]:
    """Every broadcast of a scheduled schedule that may still play before the horizon.

    Items start from `now - MAX_ITEM_MS`, so one that is still playing keeps its place.
    """
    earliest_ms = now_ms - MAX_ITEM_MS
    earliest = from_ms(earliest_ms)
    query = (
        select(Schedule, Announcement)
        .join(Announcement, col(Announcement.id) == col(Schedule.announcement_id))
        .where(Schedule.status == ScheduleStatus.scheduled)
        .where(Schedule.starts_at < from_ms(horizon_end_ms))
        .where(
            or_(
                col(Schedule.starts_at) >= earliest,
                col(Schedule.rrule).is_not(None)
                & (
                    col(Schedule.ends_on).is_(None)
                    | (col(Schedule.ends_on) >= earliest.date() - timedelta(days=1))
                ),
            )
        )
    )
    if exclude is not None:
        query = query.where(Schedule.id != exclude)
    rows = session.exec(query).all()
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
        ts = targets.get(schedule.id, [])
        result += expand(
            schedule,
            media_url,
            ann,
            frozenset(t.target_id for t in ts if t.kind == "area"),
            frozenset(t.target_id for t in ts if t.kind == "node"),
            earliest_ms,
            horizon_end_ms,
        )
    return result


def expand(
    schedule: Schedule,
    media_url: Callable[[str], str],
    ann: Announcement,
    areas: frozenset[str],
    nodes: frozenset[str],
    start_ms: int,
    end_ms: int,
) -> list[Occurrence]:
    """The schedule's broadcasts starting in [start_ms, end_ms), as timeline occurrences."""
    assert schedule.id is not None
    media = MediaRef(url=media_url(ann.media_sha256), sha256=ann.media_sha256, size=ann.media_size)
    return [
        Occurrence(
            item_id=item_id_for(schedule.id, start),
            broadcast_id=str(schedule.id),
            start_ms=start,
            duration_ms=ann.duration_ms,
            media=media,
            priority=Priority(schedule.priority),
            title=schedule.title or ann.title,
            areas=areas,
            nodes=nodes,
            on_preempt=Policy(schedule.on_preempt),
        )
        for start in starts_between(schedule, start_ms, end_ms)
    ]
