"""Fleet counts per area for technicians: online, offline, flapping, alarmed."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import GuardDep, ServiceDep, SessionDep
from api.health_schemas import FleetSummary
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import Area
from controller.health.fleet_view import summary

router = APIRouter(prefix="/fleet", tags=["fleet"])


@router.get("/summary", response_model=FleetSummary)
def fleet_summary(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str | None = Query(
        default=None,
        max_length=64,
        description="Counts for this area and each area directly below it; default: your area "
        "(administrators and auditors: every top-level area)",
    ),
) -> FleetSummary:
    guard.check(Permission.read)
    tree = guard.tree
    if area_id is None and guard.user.area_id is not None:
        area_id = guard.user.area_id
    if area_id is not None and (session.get(Area, area_id) is None or not guard.sees(area_id)):
        raise NotFound(f"area {area_id!r} does not exist")
    roots = [a for a, parent in tree.parents.items() if parent is None and guard.sees(a)]
    data = summary(session, service.health.presence, tree, area_id, roots)
    return FleetSummary.model_validate(data)
