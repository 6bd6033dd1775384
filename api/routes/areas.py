"""Areas: the administrative tree."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import AreaCreate, AreaPublic
from controller.auth.access import Permission
from controller.core.errors import Invalid
from controller.core.models import Area
from controller.fleet.registry import RegistryError

router = APIRouter(prefix="/areas", tags=["areas"])


@router.get("", response_model=list[AreaPublic])
def list_areas(guard: GuardDep, session: SessionDep, parent_id: str | None = None) -> list[Area]:
    guard.check(Permission.read)
    query = select(Area).order_by(Area.id)
    if parent_id is not None:
        query = query.where(Area.parent_id == parent_id)
    return [a for a in session.exec(query).all() if guard.sees(a.id)]


@router.post("", response_model=AreaPublic, status_code=status.HTTP_201_CREATED)
def create_area(
    body: AreaCreate, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> Area:
    guard.check(Permission.manage_areas, [body.parent_id] if body.parent_id else None)
    try:
        area = service.registry.add_area(session, body.id, body.name, body.kind, body.parent_id)
    except RegistryError as exc:
        raise Invalid(str(exc)) from exc
    session.commit()
    guard.audit("area.create", body.id, body.model_dump(mode="json"))
    return area
