"""Speech: preview how a text will be read, and the reading dictionary administrators extend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from sqlmodel import select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import Strict
from controller.access import Permission
from controller.errors import Invalid, NotFound
from controller.models import Abbreviation

router = APIRouter(prefix="/speech", tags=["speech"])


class PreviewIn(Strict):
    text: str = Field(min_length=1, max_length=20_000)


class AbbreviationIn(Strict):
    term: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^\S(.*\S)?$",
        description="As written, e.g. 'ĐBSCL' or 'TT-Huế'",
    )
    reading: str = Field(min_length=1, max_length=300, description="As it must be read")


class AbbreviationPublic(BaseModel):
    id: int
    term: str
    reading: str
    created_by: str
    created_at: datetime


@router.post("/preview")
def preview(body: PreviewIn, guard: GuardDep, service: ServiceDep) -> dict[str, Any]:
    """The reading an announcement will get, before it is synthesised."""
    guard.check(Permission.read)
    return service.speech.preview(body.text)


@router.get("/abbreviations", response_model=list[AbbreviationPublic])
def list_abbreviations(guard: GuardDep, session: SessionDep) -> list[Abbreviation]:
    guard.check(Permission.read)
    return list(session.exec(select(Abbreviation).order_by(Abbreviation.term)).all())


@router.post(
    "/abbreviations", response_model=AbbreviationPublic, status_code=status.HTTP_201_CREATED
)
def add_abbreviation(
    body: AbbreviationIn, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> Abbreviation:
    guard.check(Permission.manage_dictionary)
    if session.exec(select(Abbreviation).where(Abbreviation.term == body.term)).first():
        raise Invalid(f"{body.term!r} is already in the dictionary: delete it first to change it")
    row = Abbreviation(term=body.term, reading=body.reading, created_by=guard.user.username)
    session.add(row)
    session.commit()
    session.refresh(row)
    service.speech.forget_dictionary()
    guard.audit("dictionary.add", body.term, {"reading": body.reading})
    return row


@router.delete("/abbreviations/{abbreviation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_abbreviation(
    abbreviation_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> None:
    guard.check(Permission.manage_dictionary)
    row = session.get(Abbreviation, abbreviation_id)
    if row is None:
        raise NotFound(f"dictionary entry {abbreviation_id} does not exist")
    session.delete(row)
    session.commit()
    service.speech.forget_dictionary()
    guard.audit("dictionary.delete", row.term)
