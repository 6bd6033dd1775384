"""Schedules and the per-node delivery state of each broadcast."""

from __future__ import annotations

import json
from collections import Counter

from fastapi import APIRouter, status
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import (
    Decision,
    DeliveryPublic,
    DeliverySummary,
    ScheduleCreate,
    SchedulePublic,
    ScheduleUpdate,
    SkipDay,
    TargetsIn,
)
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import Announcement, Delivery, Node, Role, Schedule, ScheduleStatus
from controller.core.time import utc_datetime, utc_ms
from controller.programme.approvals import Approvals
from controller.programme.broadcasts import Repetition, Targets
from controller.programme.edits import Revision, ScheduleEdits

router = APIRouter(prefix="/schedules", tags=["schedules"])


def public(schedule: Schedule, targets: Targets) -> SchedulePublic:
    assert schedule.id is not None
    return SchedulePublic(
        id=schedule.id,
        announcement_id=schedule.announcement_id,
        title=schedule.title,
        starts_at=schedule.starts_at,
        rrule=schedule.rrule,
        exdates=json.loads(schedule.exdates or "[]"),
        ends_on=schedule.ends_on,
        # The stored text: pydantic turns it into the enum.
        priority=schedule.priority,  # type: ignore[arg-type]
        on_preempt=schedule.on_preempt,  # type: ignore[arg-type]
        status=schedule.status,
        targets=TargetsIn(areas=targets.areas, nodes=targets.nodes, groups=targets.groups),
        created_by=schedule.created_by,
        created_at=schedule.created_at,
        approved_by=schedule.approved_by,
        approved_at=schedule.approved_at,
    )


@router.get("", response_model=list[SchedulePublic])
def list_schedules(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    status: ScheduleStatus | None = None,
) -> list[SchedulePublic]:
    """Schedules concerning the user's area; `status=pending` lists drafts awaiting approval."""
    guard.check(Permission.read)
    query = select(Schedule).order_by(col(Schedule.starts_at).desc()).limit(500)
    if status is not None:
        query = query.where(Schedule.status == status)
    rows = session.exec(query).all()
    out = []
    for s in rows:
        assert s.id is not None
        targets = service.broadcasts.targets_of(s.id)
        if concerns(guard, service.broadcasts.target_areas(targets)):
            out.append(public(s, targets))
    return out


def concerns(guard: GuardDep, areas: list[str]) -> bool:
    return guard.concerns(areas)


@router.post("", response_model=SchedulePublic, status_code=status.HTTP_201_CREATED)
async def create_schedule(
    body: ScheduleCreate, guard: GuardDep, service: ServiceDep
) -> SchedulePublic:
    targets = Targets(
        areas=body.targets.areas, nodes=body.targets.nodes, groups=body.targets.groups
    )
    guard.check(Permission.schedule, service.broadcasts.target_areas(targets))
    with service.db.session() as session:
        content = session.get(Announcement, body.announcement_id)
        if content is None or not guard.sees_content(content.area_id):
            # Another commune's content is answered like a missing one: nothing tells it exists.
            raise NotFound(f"announcement {body.announcement_id} does not exist")
    # Commune staff draft; an officer's approval puts the draft on air.
    drafted = guard.user.role == Role.commune_staff
    schedule = await service.broadcasts.create_schedule(
        body.announcement_id,
        body.starts_at,
        targets,
        body.priority,
        author=guard.user.username,
        plan=Repetition(body.rrule, body.exdates, body.ends_on, body.on_preempt, body.title),
        status=ScheduleStatus.pending if drafted else ScheduleStatus.scheduled,
    )
    assert schedule.id is not None
    detail = body.model_dump(mode="json") | {"status": schedule.status}
    guard.audit("schedule.create", str(schedule.id), detail)
    return public(schedule, service.broadcasts.targets_of(schedule.id))


@router.get("/{schedule_id}", response_model=SchedulePublic)
def get_schedule(
    schedule_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> SchedulePublic:
    guard.check(Permission.read)
    schedule = session.get(Schedule, schedule_id)
    targets = service.broadcasts.targets_of(schedule_id)
    if schedule is None or not concerns(guard, service.broadcasts.target_areas(targets)):
        raise NotFound(f"schedule {schedule_id} does not exist")
    return public(schedule, targets)


@router.delete("/{schedule_id}", response_model=SchedulePublic)
async def cancel_schedule(schedule_id: int, guard: GuardDep, service: ServiceDep) -> SchedulePublic:
    targets = service.broadcasts.targets_of(schedule_id)
    guard.check(Permission.schedule, service.broadcasts.target_areas(targets))
    schedule = await service.broadcasts.cancel_schedule(schedule_id)
    guard.audit("schedule.cancel", str(schedule_id))
    return public(schedule, service.broadcasts.targets_of(schedule_id))


def edits(service: ServiceDep) -> ScheduleEdits:
    return ScheduleEdits(service.db, service.registry, service.timelines, service.clock)


@router.patch("/{schedule_id}", response_model=SchedulePublic)
async def edit_schedule(
    schedule_id: int, body: ScheduleUpdate, guard: GuardDep, service: ServiceDep
) -> SchedulePublic:
    """Change a scheduled or pending schedule; the right to schedule is needed over the places
    it reached and those it will reach. A change by commune staff waits for approval again."""
    current = service.broadcasts.targets_of(schedule_id)
    guard.check(Permission.schedule, service.broadcasts.target_areas(current))
    with service.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            raise NotFound(f"schedule {schedule_id} does not exist")
        given = body.model_fields_set
        targets = current
        if body.targets is not None:
            t = body.targets
            targets = Targets(areas=t.areas, nodes=t.nodes, groups=t.groups)
            guard.check(Permission.schedule, service.broadcasts.target_areas(targets))
        announcement_id = body.announcement_id or schedule.announcement_id
        if announcement_id != schedule.announcement_id:
            content = session.get(Announcement, announcement_id)
            if content is None or not guard.sees_content(content.area_id):
                raise NotFound(f"announcement {announcement_id} does not exist")
        plan = Repetition(
            rrule=body.rrule if "rrule" in given else schedule.rrule,
            exdates=body.exdates
            if body.exdates is not None
            else json.loads(schedule.exdates or "[]"),
            ends_on=body.ends_on if "ends_on" in given else schedule.ends_on,
            on_preempt=body.on_preempt or schedule.on_preempt,  # type: ignore[arg-type]
            title=body.title if body.title is not None else schedule.title,
        )
        if plan.rrule is None:  # playing once: nothing left to skip or end
            plan.exdates, plan.ends_on = [], None
        drafted = guard.user.role == Role.commune_staff
        revision = Revision(
            announcement_id=announcement_id,
            starts_at=body.starts_at or utc_datetime(utc_ms(schedule.starts_at)),
            targets=targets,
            priority=body.priority or schedule.priority,  # type: ignore[arg-type]
            plan=plan,
            status=ScheduleStatus.pending if drafted else ScheduleStatus(schedule.status),
        )
    changed = await edits(service).revise(schedule_id, revision)
    detail = body.model_dump(mode="json", exclude_unset=True) | {"status": changed.status}
    guard.audit("schedule.edit", str(schedule_id), detail)
    return public(changed, service.broadcasts.targets_of(schedule_id))


@router.post("/{schedule_id}/skip", response_model=SchedulePublic)
async def skip_day(
    schedule_id: int, body: SkipDay, guard: GuardDep, service: ServiceDep
) -> SchedulePublic:
    """Leave out one local day of a repeating schedule (its broadcasts that day only)."""
    targets = service.broadcasts.targets_of(schedule_id)
    guard.check(Permission.schedule, service.broadcasts.target_areas(targets))
    schedule = await edits(service).skip_day(schedule_id, body.day)
    guard.audit("schedule.skip", str(schedule_id), {"day": body.day.isoformat()})
    return public(schedule, targets)


@router.get("/{schedule_id}/deliveries", response_model=DeliverySummary)
def deliveries(
    schedule_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> DeliverySummary:
    guard.check(Permission.read)
    targets = service.broadcasts.targets_of(schedule_id)
    if session.get(Schedule, schedule_id) is None or not concerns(
        guard, service.broadcasts.target_areas(targets)
    ):
        raise NotFound(f"schedule {schedule_id} does not exist")
    found = [
        (d, name)
        for d, area_id, name in session.exec(
            select(Delivery, Node.area_id, Node.name)
            .join(Node, col(Node.id) == Delivery.node_id)
            .where(Delivery.schedule_id == schedule_id)
            .order_by(Delivery.node_id)
        ).all()
        if guard.sees(area_id)
    ]
    rows = [d for d, _ in found]
    items = [
        DeliveryPublic.model_validate(d, from_attributes=True).model_copy(
            update={"node_name": name}
        )
        for d, name in found
    ]
    return DeliverySummary(
        schedule_id=schedule_id,
        nodes=len({d.node_id for d in rows}),
        counts=dict(Counter(d.state for d in rows)),
        deliveries=items,
    )


def approvals(service: ServiceDep) -> Approvals:
    return Approvals(service.db, service.registry, service.timelines, service.clock)


@router.post("/{schedule_id}/approve", response_model=SchedulePublic)
async def approve_schedule(
    schedule_id: int, guard: GuardDep, service: ServiceDep
) -> SchedulePublic:
    """An officer over every target area puts a commune staff's draft on air."""
    targets = service.broadcasts.targets_of(schedule_id)
    guard.check(Permission.approve, service.broadcasts.target_areas(targets))
    schedule = await approvals(service).approve(schedule_id, guard.user.username)
    guard.audit("schedule.approve", str(schedule_id), {"status": schedule.status})
    return public(schedule, targets)


@router.post("/{schedule_id}/reject", response_model=SchedulePublic)
def reject_schedule(
    schedule_id: int, guard: GuardDep, service: ServiceDep, body: Decision | None = None
) -> SchedulePublic:
    targets = service.broadcasts.targets_of(schedule_id)
    guard.check(Permission.approve, service.broadcasts.target_areas(targets))
    schedule = approvals(service).reject(schedule_id, guard.user.username)
    reason = body.reason if body is not None else ""
    guard.audit("schedule.reject", str(schedule_id), {"reason": reason})
    return public(schedule, targets)
