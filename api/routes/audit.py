"""The audit record: query, export as CSV or Excel, verify the hash chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.console.i18n import Words, language_of
from api.csv_export import XLSX_TYPE, FileFormat, table_response
from api.deps import GuardDep, SessionDep
from controller.auth.access import Permission
from controller.auth.audit import verify_chain
from controller.core.errors import NotFound
from controller.core.models import Area, AuditEntry, User
from controller.core.time import as_utc

router = APIRouter(prefix="/audit", tags=["audit"])
EXPORT_COLUMNS = (
    "id",
    "ts",
    "actor",
    "role",
    "action",
    "target",
    "detail",
    "ip",
    "outcome",
    "prev_hash",
    "hash",
)
BATCH = 500


class AuditPublic(BaseModel):
    id: int
    ts: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]
    ip: str
    outcome: str
    hash: str


def _strings(value: Any) -> Iterator[str]:
    """Every text inside a detail (area ids sit at any depth: targets, areas, area_id)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


class AreaFilter:
    """An entry concerns an area when it names the area or one below it (as its target or in
    its detail), or when its author works there."""

    def __init__(self, guard: GuardDep, session: Session, area_id: str) -> None:
        if session.get(Area, area_id) is None:
            raise NotFound(f"area {area_id!r} does not exist")
        self.areas = guard.tree.descendants(area_id)
        self.people = set(
            session.exec(select(User.username).where(col(User.area_id).in_(self.areas))).all()
        )

    def __call__(self, entry: AuditEntry) -> bool:
        if entry.actor in self.people or entry.target in self.areas:
            return True
        if entry.target and set(entry.target.split(",")) & self.areas:
            return True  # a refusal names the areas asked for, comma-separated
        try:
            detail = json.loads(entry.detail or "{}")
        except ValueError:
            return False
        return any(s in self.areas for s in _strings(detail))


def _query(
    session: Session,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    area: AreaFilter | None = None,
) -> list[AuditEntry]:
    """Newest first. With an area, entries are read in batches until `limit` of them match."""
    q = select(AuditEntry).order_by(col(AuditEntry.id).desc())
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(col(AuditEntry.action).startswith(action))
    # A time without an offset is Viet Nam time, as everywhere a person types one.
    if since:
        q = q.where(AuditEntry.ts >= as_utc(since))
    if until:
        q = q.where(AuditEntry.ts < as_utc(until))
    if area is None:
        return list(session.exec(q.limit(limit)).all())
    found: list[AuditEntry] = []
    before: int | None = None
    while len(found) < limit:
        page = q if before is None else q.where(col(AuditEntry.id) < before)
        batch = list(session.exec(page.limit(BATCH)).all())
        found.extend(e for e in batch if area(e))
        if len(batch) < BATCH:
            break
        before = batch[-1].id
    return found[:limit]


@router.get("", response_model=list[AuditPublic])
def list_audit(
    guard: GuardDep,
    session: SessionDep,
    actor: str | None = None,
    action: str | None = Query(default=None, description="prefix, e.g. 'schedule.'"),
    area_id: str | None = Query(
        default=None, description="entries about this area or one below it, or by its people"
    ),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=200, ge=1, le=5000),
) -> list[AuditPublic]:
    guard.check(Permission.read_audit)
    area = AreaFilter(guard, session, area_id) if area_id else None
    return [
        AuditPublic(
            **e.model_dump(exclude={"detail", "prev_hash"}), detail=json.loads(e.detail or "{}")
        )
        for e in _query(session, actor, action, since, until, limit, area)
    ]


def _export(
    request: Request,
    guard: GuardDep,
    session: Session,
    fmt: FileFormat,
    actor: str | None,
    action: str | None,
    area_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Response:
    guard.check(Permission.read_audit)
    area = AreaFilter(guard, session, area_id) if area_id else None
    found = _query(session, actor, action, since, until, 1_000_000, area)
    words = Words(language_of(request))
    rows = (
        [
            e.id,
            e.ts,
            e.actor,
            words(f"role.{e.role}") if e.role else "",
            e.action,
            e.target,
            e.detail,
            e.ip,
            words(f"audit.outcome_{e.outcome}"),
            e.prev_hash,
            e.hash,
        ]
        for e in reversed(found)
    )
    return table_response(request, "audit", EXPORT_COLUMNS, rows, "audit", fmt)


EXPORT_DOC = (
    "Oldest first, with the hash chain; headers in the console's language (`?lang=`), "
    "times in Viet Nam time"
)


@router.get(
    "/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The record as CSV"}},
    description=EXPORT_DOC,
)
def export_audit(
    request: Request,
    guard: GuardDep,
    session: SessionDep,
    actor: str | None = None,
    action: str | None = None,
    area_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    return _export(request, guard, session, "csv", actor, action, area_id, since, until)


@router.get(
    "/export.xlsx",
    response_class=Response,
    responses={
        200: {
            "content": {XLSX_TYPE: {}},
            "description": "The record as an Excel workbook",
        }
    },
    description=EXPORT_DOC,
)
def export_audit_xlsx(
    request: Request,
    guard: GuardDep,
    session: SessionDep,
    actor: str | None = None,
    action: str | None = None,
    area_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    return _export(request, guard, session, "xlsx", actor, action, area_id, since, until)


@router.get("/verify")
def verify_audit(guard: GuardDep, session: SessionDep) -> dict[str, Any]:
    guard.check(Permission.read_audit)
    ok, bad_id = verify_chain(session)
    return {"intact": ok, "first_broken_entry": bad_id}
