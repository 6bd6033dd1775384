"""The audit record: query, export as CSV, verify the hash chain."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import col, select

from api.csv_export import csv_response
from api.deps import GuardDep, SessionDep
from controller.auth.access import Permission
from controller.auth.audit import verify_chain
from controller.core.models import AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"])


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


def _query(
    session: SessionDep,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[AuditEntry]:
    q = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(col(AuditEntry.action).startswith(action))
    if since:
        q = q.where(AuditEntry.ts >= since)
    if until:
        q = q.where(AuditEntry.ts < until)
    return list(session.exec(q).all())


@router.get("", response_model=list[AuditPublic])
def list_audit(
    guard: GuardDep,
    session: SessionDep,
    actor: str | None = None,
    action: str | None = Query(default=None, description="prefix, e.g. 'schedule.'"),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=200, ge=1, le=5000),
) -> list[AuditPublic]:
    guard.check(Permission.read_audit)
    return [
        AuditPublic(
            **e.model_dump(exclude={"detail", "prev_hash"}), detail=json.loads(e.detail or "{}")
        )
        for e in _query(session, actor, action, since, until, limit)
    ]


@router.get(
    "/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The record as CSV"}},
)
def export_audit(
    guard: GuardDep,
    session: SessionDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    guard.check(Permission.read_audit)
    header = [
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
    ]
    rows = (
        [
            e.id,
            e.ts.isoformat(),
            e.actor,
            e.role,
            e.action,
            e.target,
            e.detail,
            e.ip,
            e.outcome,
            e.prev_hash,
            e.hash,
        ]
        for e in reversed(_query(session, None, None, since, until, 1_000_000))
    )
    return csv_response(header, rows, "audit.csv")


@router.get("/verify")
def verify_audit(guard: GuardDep, session: SessionDep) -> dict[str, Any]:
    guard.check(Permission.read_audit)
    ok, bad_id = verify_chain(session)
    return {"intact": ok, "first_broken_entry": bad_id}
