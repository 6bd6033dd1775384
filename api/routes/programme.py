"""The programme: a node's resolved timeline, an area's calendar and its iCalendar export."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.programme_schemas import CalendarItem, NodeTimelinePublic, TimelineChange, TimelineEntry
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import Area, Node, ScheduleStatus
from controller.core.time import utc_ms
from controller.programme.programme import concerning, day_span
from schedules import calendar_entries, to_ics
from schedules.localtime import from_ms

router = APIRouter(tags=["programme"])
MAX_CALENDAR_DAYS = 62
# The export keeps a month of the past, so a calendar client still shows recent broadcasts.
ICS_PAST_MS = 31 * 24 * 3600 * 1000


@router.get("/nodes/{node_id}/timeline", response_model=NodeTimelinePublic)
def node_timeline(
    node_id: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> NodeTimelinePublic:
    """What the node plays next, after quiet hours and priorities, and what they changed."""
    guard.check(Permission.read)
    node = session.get(Node, node_id)
    if node is None or node.retired or not guard.sees(node.area_id):
        raise NotFound(f"node {node_id!r} does not exist")
    plan, now, horizon_end = service.timelines.view(node)
    return NodeTimelinePublic(
        node_id=node.id,
        version=node.timeline_version,
        generated_at=from_ms(now),
        horizon_end=from_ms(horizon_end),
        items=[
            TimelineEntry(
                item_id=i.item_id,
                schedule_id=int(i.broadcast_id),
                title=i.title,
                priority=i.priority,
                start=from_ms(i.start),
                end=from_ms(i.start + i.duration_ms),
                duration_ms=i.duration_ms,
            )
            for i in plan.items
        ],
        adjustments=[
            TimelineChange(
                item_id=a.item_id,
                schedule_id=int(a.schedule_id),
                change=a.change.value,
                reason=a.reason,
                original_start=from_ms(a.original_start_ms),
                original_duration_ms=a.original_duration_ms,
                start=from_ms(a.start_ms),
                duration_ms=a.duration_ms,
                by_item_id=a.by_item_id,
            )
            for a in plan.adjustments
        ],
    )


def readable_area(guard: GuardDep, session: SessionDep, area_id: str) -> Area:
    guard.check(Permission.read, [area_id])
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"area {area_id!r} does not exist")
    return area


@router.get("/calendar", response_model=list[CalendarItem])
def calendar(
    guard: GuardDep,
    session: SessionDep,
    area_id: str,
    first: Annotated[date, Query(alias="from", description="First local day, YYYY-MM-DD")],
    last: Annotated[date, Query(alias="to", description="Last local day, included")],
) -> list[CalendarItem]:
    """Every broadcast of scheduled and pending schedules that concern the area."""
    readable_area(guard, session, area_id)
    day_span(first, last, MAX_CALENDAR_DAYS)
    found = concerning(
        session, guard.tree, area_id, [ScheduleStatus.scheduled, ScheduleStatus.pending]
    )
    status = {str(c.schedule.id): c.schedule.status for c in found}
    return [
        CalendarItem(
            schedule_id=int(e.schedule_id),
            title=e.title,
            start=e.start_local,
            end=from_ms(e.end_ms),
            duration_ms=e.duration_ms,
            priority=e.priority,
            status=status[e.schedule_id],
            targets=sorted(e.targets),
        )
        for e in calendar_entries([c.broadcast() for c in found], first, last)
    ]


@router.get("/areas/{area_id}/programme.ics", response_class=Response)
def programme_ics(
    area_id: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> Response:
    """The area's scheduled programme for calendar clients: a repeating schedule is one event."""
    area = readable_area(guard, session, area_id)
    now = service.clock.now_ms()
    found = [
        c
        for c in concerning(session, guard.tree, area_id, [ScheduleStatus.scheduled])
        if c.schedule.rrule is not None or utc_ms(c.schedule.starts_at) >= now - ICS_PAST_MS
    ]
    targets = set().union(*(c.targets for c in found))
    names = {a.id: a.name for a in session.exec(select(Area).where(col(Area.id).in_(targets)))}
    names |= {n.id: n.name for n in session.exec(select(Node).where(col(Node.id).in_(targets)))}
    title = f"{area.name} — chương trình"
    text = to_ics([c.broadcast() for c in found], title, now_ms=now, names=names)
    return Response(text, media_type="text/calendar; charset=utf-8")
