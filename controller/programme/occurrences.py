"""The broadcasts schedules give: each scheduled schedule expanded into timeline occurrences."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from controller.core.models import (
    Announcement,
    NodeGroupMember,
    QuietHoursRule,
    Schedule,
    ScheduleStatus,
    ScheduleTarget,
)
from controller.core.time import utc_datetime
from controller.fleet.groups import members
from controller.programme.playlists import LIVE, WITH_ENTRIES, playlist_parts
from controller.programme.recurrences import starts_between
from protocol import MediaRef, Priority
from schedules import Occurrence, Part, Policy, QuietHours
from schedules.quiet import QuietMap

# Items start looking this far back, so one still playing keeps its place in the timeline.
MAX_ITEM_MS = 6 * 3600 * 1000


def quiet_map(session: Session) -> QuietMap:
    return {r.area_id: QuietHours(r.start, r.end) for r in session.exec(select(QuietHoursRule))}


def item_id_for(schedule_id: int, start_ms: int) -> str:
    return f"s{schedule_id}@{start_ms}"


@dataclass(frozen=True)
class Reach:
    """Nodes and the areas they lie in (with every area above): only schedules targeting
    one of them matter to these nodes."""

    areas: set[str]
    nodes: set[str]


def reaching(session: Session, reach: Reach) -> SelectOfScalar[int]:
    """Ids of schedules with a target among the areas, the nodes, or the nodes' groups."""
    groups = select(NodeGroupMember.group_id).where(col(NodeGroupMember.node_id).in_(reach.nodes))
    return select(ScheduleTarget.schedule_id).where(
        or_(
            (col(ScheduleTarget.kind) == "area") & col(ScheduleTarget.target_id).in_(reach.areas),
            (col(ScheduleTarget.kind) == "node") & col(ScheduleTarget.target_id).in_(reach.nodes),
            (col(ScheduleTarget.kind) == "group") & col(ScheduleTarget.target_id).in_(groups),
        )
    )


def scheduled_occurrences(
    session: Session,
    media_url: Callable[[str], str],
    now_ms: int,
    horizon_end_ms: int,
    exclude: int | None = None,
    reach: Reach | None = None,
) -> list[Occurrence]:
    """Every broadcast of a scheduled schedule that may still play before the horizon (only
    those that can reach `reach`, when given).

    Items start from `now - MAX_ITEM_MS`, so one that is still playing keeps its place.
    """
    earliest_ms = now_ms - MAX_ITEM_MS
    earliest = utc_datetime(earliest_ms)
    query = (
        select(Schedule, Announcement)
        .join(Announcement, col(Announcement.id) == col(Schedule.announcement_id))
        .where(Schedule.status == ScheduleStatus.scheduled)
        .where(Schedule.starts_at < utc_datetime(horizon_end_ms))
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
    if reach is not None:
        query = query.where(col(Schedule.id).in_(reaching(session, reach)))
    rows = session.exec(query).all()
    if not rows:
        return []
    ids = [s.id for s, _ in rows]
    targets: dict[int, list[ScheduleTarget]] = {}
    for t in session.exec(
        select(ScheduleTarget).where(col(ScheduleTarget.schedule_id).in_(ids))
    ).all():
        targets.setdefault(t.schedule_id, []).append(t)
    groups = members(
        session, {t.target_id for ts in targets.values() for t in ts if t.kind == "group"}
    )
    parts = playlist_parts(
        session, {a.id for _, a in rows if a.source in WITH_ENTRIES and a.id is not None}, media_url
    )
    result = []
    for schedule, ann in rows:
        assert schedule.id is not None
        ts = targets.get(schedule.id, [])
        nodes = {t.target_id for t in ts if t.kind == "node"}
        for t in ts:
            if t.kind == "group":
                nodes |= groups.get(t.target_id, set())
        result += expand(
            schedule,
            media_url,
            ann,
            frozenset(t.target_id for t in ts if t.kind == "area"),
            frozenset(nodes),
            earliest_ms,
            horizon_end_ms,
            parts.get(ann.id or 0, ()),
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
    parts: tuple[Part, ...] = (),
) -> list[Occurrence]:
    """The schedule's broadcasts starting in [start_ms, end_ms), as timeline occurrences."""
    assert schedule.id is not None
    media = (
        parts[0].media
        if parts
        else MediaRef(url=media_url(ann.media_sha256), sha256=ann.media_sha256, size=ann.media_size)
    )
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
            parts=parts,
            takes_air=ann.source == LIVE,
        )
        for start in starts_between(schedule, start_ms, end_ms)
    ]
