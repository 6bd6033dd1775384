"""Areas: the administrative tree."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import ServiceDep, SessionDep
from api.schemas import AreaCreate, AreaPublic
from controller.errors import Invalid
from controller.models import Area
from controller.registry import RegistryError

router = APIRouter(prefix="/areas", tags=["areas"])


@router.get("", response_model=list[AreaPublic])
def list_areas(session: SessionDep, parent_id: str | None = None) -> list[Area]:
    query = select(Area).order_by(Area.id)
    if parent_id is not None:
        query = query.where(Area.parent_id == parent_id)
    return list(session.exec(query).all())


@router.post("", response_model=AreaPublic, status_code=status.HTTP_201_CREATED)
def create_area(body: AreaCreate, session: SessionDep, service: ServiceDep) -> Area:
    try:
        area = service.registry.add_area(session, body.id, body.name, body.kind, body.parent_id)
    except RegistryError as exc:
        raise Invalid(str(exc)) from exc
    session.commit()
    return area
