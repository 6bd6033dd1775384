"""Speech: preview how a text will be read, and the reading dictionary: one list for every area
(administrators) and a local list per area for its place names (its officers and staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.errors import CodedHTTPException
from api.schemas import Strict
from controller.auth.access import Permission, has
from controller.core.errors import NotFound
from controller.core.models import Abbreviation, Area

router = APIRouter(prefix="/speech", tags=["speech"])

_AREA_ID = Field(
    default=None,
    max_length=64,
    description="An area's local list (its announcements and those below); none: every area",
)


class PreviewIn(Strict):
    text: str = Field(min_length=1, max_length=20_000)
    area_id: str | None = Field(
        default=None,
        max_length=64,
        description="Read with this area's local lists; by default the caller's own area, "
        "whose announcements get the same reading",
    )


class AbbreviationIn(Strict):
    term: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^\S(.*\S)?$",
        description="As written, e.g. 'ĐBSCL' or 'TT-Huế'",
    )
    reading: str = Field(min_length=1, max_length=300, description="As it must be read")
    area_id: str | None = _AREA_ID


class AbbreviationPublic(BaseModel):
    id: int
    term: str
    reading: str
    area_id: str | None
    created_by: str
    created_at: datetime


def _check_edit(guard: GuardDep, area_id: str | None) -> None:
    """Administrators change every list; officers and commune staff their area's and below."""
    if area_id is None or has(guard.user, Permission.manage_dictionary):
        guard.check(Permission.manage_dictionary)
        return
    guard.check(Permission.write_content, [area_id])


@router.post("/preview")
def preview(body: PreviewIn, guard: GuardDep, service: ServiceDep) -> dict[str, Any]:
    """The reading an announcement will get, before it is synthesised: the normalised text,
    its sentences, the inline overrides (`[[UBND|ủy ban nhân dân]]`) and the text as shown."""
    area_id = body.area_id if "area_id" in body.model_fields_set else guard.user.area_id
    guard.check(Permission.read, [area_id] if area_id is not None else None)
    return service.speech.preview(body.text, area_id)


@router.get("/abbreviations", response_model=list[AbbreviationPublic])
def list_abbreviations(
    guard: GuardDep,
    session: SessionDep,
    area_id: Annotated[
        str | None, Query(max_length=64, description="Only this area's local list")
    ] = None,
    common: Annotated[bool, Query(description="Only the list for every area")] = False,
) -> list[Abbreviation]:
    """The list for every area and the local lists the caller sees (their area, below and
    above it)."""
    guard.check(Permission.read)
    query = select(Abbreviation)
    if common:
        query = query.where(col(Abbreviation.area_id).is_(None))
    elif area_id is not None:
        query = query.where(Abbreviation.area_id == area_id)
    rows = session.exec(query.order_by(Abbreviation.term, col(Abbreviation.area_id))).all()
    return [row for row in rows if guard.sees_content(row.area_id)]


@router.post(
    "/abbreviations", response_model=AbbreviationPublic, status_code=status.HTTP_201_CREATED
)
def add_abbreviation(
    body: AbbreviationIn, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> Abbreviation:
    _check_edit(guard, body.area_id)
    if body.area_id is not None and session.get(Area, body.area_id) is None:
        raise NotFound(f"area {body.area_id} does not exist")
    same_list = (
        col(Abbreviation.area_id).is_(None)
        if body.area_id is None
        else Abbreviation.area_id == body.area_id
    )
    if session.exec(select(Abbreviation).where(Abbreviation.term == body.term, same_list)).first():
        raise CodedHTTPException(
            422,
            f"{body.term!r} is already in this list: delete it first to change it",
            "dictionary_duplicate",
        )
    row = Abbreviation(
        term=body.term,
        reading=body.reading,
        area_id=body.area_id,
        created_by=guard.user.username,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    service.speech.forget_dictionary()
    guard.audit("dictionary.add", body.term, {"reading": body.reading, "area_id": body.area_id})
    return row


@router.delete("/abbreviations/{abbreviation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_abbreviation(
    abbreviation_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> None:
    row = session.get(Abbreviation, abbreviation_id)
    if row is None or not guard.sees_content(row.area_id):
        guard.check(Permission.read)
        raise NotFound(f"dictionary entry {abbreviation_id} does not exist")
    _check_edit(guard, row.area_id)
    session.delete(row)
    session.commit()
    service.speech.forget_dictionary()
    guard.audit("dictionary.delete", row.term, {"area_id": row.area_id})
