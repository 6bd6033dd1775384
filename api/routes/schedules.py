"""Schedules and the per-node delivery state of each broadcast."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import ServiceDep, SessionDep
from api.schemas import (
    DeliveryPublic,
    DeliverySummary,
    ScheduleCreate,
    SchedulePublic,
    TargetsIn,
)
from controller.broadcasts import Targets
from controller.errors import NotFound
from controller.models import Delivery, Schedule

router = APIRouter(prefix="/schedules", tags=["schedules"])


def public(schedule: Schedule, targets: Targets) -> SchedulePublic:
    assert schedule.id is not None
    return SchedulePublic(
        id=schedule.id,
        announcement_id=schedule.announcement_id,
        starts_at=schedule.starts_at,
        priority=schedule.priority,  # type: ignore[arg-type]
        status=schedule.status,
        targets=TargetsIn(areas=targets.areas, nodes=targets.nodes),
        created_at=schedule.created_at,
    )


@router.get("", response_model=list[SchedulePublic])
def list_schedules(session: SessionDep, service: ServiceDep) -> list[SchedulePublic]:
    rows = session.exec(select(Schedule).order_by(Schedule.starts_at.desc()).limit(500)).all()  # type: ignore[attr-defined]
    return [public(s, service.broadcasts.targets_of(s.id)) for s in rows if s.id is not None]


@router.post("", response_model=SchedulePublic, status_code=status.HTTP_201_CREATED)
async def create_schedule(body: ScheduleCreate, service: ServiceDep) -> SchedulePublic:
    schedule = await service.broadcasts.create_schedule(
        body.announcement_id,
        body.starts_at,
        Targets(areas=body.targets.areas, nodes=body.targets.nodes),
        body.priority,
    )
    assert schedule.id is not None
    return public(schedule, service.broadcasts.targets_of(schedule.id))


@router.get("/{schedule_id}", response_model=SchedulePublic)
def get_schedule(schedule_id: int, session: SessionDep, service: ServiceDep) -> SchedulePublic:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    return public(schedule, service.broadcasts.targets_of(schedule_id))


@router.delete("/{schedule_id}", response_model=SchedulePublic)
async def cancel_schedule(schedule_id: int, service: ServiceDep) -> SchedulePublic:
    schedule = await service.broadcasts.cancel_schedule(schedule_id)
    return public(schedule, service.broadcasts.targets_of(schedule_id))


@router.get("/{schedule_id}/deliveries", response_model=DeliverySummary)
def deliveries(schedule_id: int, session: SessionDep) -> DeliverySummary:
    if session.get(Schedule, schedule_id) is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    rows = session.exec(
        select(Delivery).where(Delivery.schedule_id == schedule_id).order_by(Delivery.node_id)
    ).all()
    items = [DeliveryPublic.model_validate(d, from_attributes=True) for d in rows]
    return DeliverySummary(
        schedule_id=schedule_id,
        nodes=len({d.node_id for d in rows}),
        counts=dict(Counter(d.state for d in rows)),
        deliveries=items,
    )
