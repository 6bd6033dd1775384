"""Quiet hours per area: normal announcements stay silent at night, inherited by areas below."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import GuardDep, ServiceDep, SessionDep
from api.programme_schemas import QuietHoursIn, QuietHoursPublic
from controller.auth.access import Permission
from controller.core.errors import Invalid, NotFound
from controller.core.models import Area, QuietHoursRule, Role, utcnow
from schedules import InvalidQuietHours, QuietHours

router = APIRouter(prefix="/areas", tags=["areas"])


def describe(session: SessionDep, guard: GuardDep, area_id: str) -> QuietHoursPublic:
    own = session.get(QuietHoursRule, area_id)
    effective: QuietHoursRule | None = None
    for area in guard.tree.lineage(area_id):
        effective = session.get(QuietHoursRule, area)
        if effective is not None:
            break
    return QuietHoursPublic(
        area_id=area_id,
        own=QuietHoursIn(start=own.start, end=own.end) if own else None,
        effective=QuietHoursIn(start=effective.start, end=effective.end) if effective else None,
        from_area=effective.area_id if effective else None,
    )


def existing_area(session: SessionDep, area_id: str) -> Area:
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"area {area_id!r} does not exist")
    return area


def may_set(guard: GuardDep, area_id: str) -> None:
    """Officers over the area and administrators; commune staff only draft schedules."""
    guard.check(Permission.schedule, [area_id])
    if guard.user.role not in (Role.admin, Role.officer):
        reason = f"role {guard.user.role} may not set quiet hours: ask an officer"
        guard.audit("denied:quiet_hours", area_id, {"reason": reason}, outcome="denied")
        raise HTTPException(403, reason)


@router.get("/{area_id}/quiet-hours", response_model=QuietHoursPublic)
def get_quiet_hours(area_id: str, guard: GuardDep, session: SessionDep) -> QuietHoursPublic:
    guard.check(Permission.read, [area_id])
    existing_area(session, area_id)
    return describe(session, guard, area_id)


@router.put("/{area_id}/quiet-hours", response_model=QuietHoursPublic)
async def set_quiet_hours(
    area_id: str, body: QuietHoursIn, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> QuietHoursPublic:
    """Existing normal broadcasts inside the new hours are dropped from timelines, not refused."""
    may_set(guard, area_id)
    existing_area(session, area_id)
    try:
        QuietHours(body.start.strip(), body.end.strip())
    except InvalidQuietHours as exc:
        raise Invalid(str(exc)) from exc
    rule = session.get(QuietHoursRule, area_id) or QuietHoursRule(area_id=area_id, start="", end="")
    rule.start, rule.end = body.start.strip(), body.end.strip()
    rule.updated_by, rule.updated_at = guard.user.username, utcnow()
    session.add(rule)
    session.commit()
    guard.audit("quiet_hours.set", area_id, body.model_dump())
    await service.timelines.refresh()
    return describe(session, guard, area_id)


@router.delete("/{area_id}/quiet-hours", response_model=QuietHoursPublic)
async def clear_quiet_hours(
    area_id: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> QuietHoursPublic:
    """Removes the area's own hours; those of an area above, if any, then apply."""
    may_set(guard, area_id)
    existing_area(session, area_id)
    rule = session.get(QuietHoursRule, area_id)
    if rule is not None:
        session.delete(rule)
        session.commit()
        guard.audit("quiet_hours.clear", area_id, {"start": rule.start, "end": rule.end})
        await service.timelines.refresh()
    return describe(session, guard, area_id)
