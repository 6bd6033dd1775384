"""Bulletins from upper levels: pushed by other systems (`X-Api-Key`), seen by officers, and
the officers' rules that relay them without waiting for approval."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from sqlmodel import col, select

from api.bulletin_schemas import (
    BulletinCreate,
    BulletinPublic,
    BulletinRuleCreate,
    BulletinRulePublic,
    PlacedSchedule,
)
from api.deps import GuardDep, ServiceDep, ServiceGuardDep, SessionDep
from controller.auth.access import Permission
from controller.auth.service_accounts import Scope
from controller.bulletins.bulletins import BulletinIn, Received, check_rule
from controller.core.errors import Invalid, NotFound
from controller.core.models import Bulletin, BulletinRule
from protocol import Priority

router = APIRouter(tags=["bulletins"])


def public(b: Bulletin) -> BulletinPublic:
    assert b.id is not None
    return BulletinPublic(
        id=b.id,
        source=b.source,
        external_id=b.external_id,
        title=b.title,
        category=b.category,
        priority=b.priority,
        areas=json.loads(b.areas),
        valid_from=b.valid_from,
        valid_until=b.valid_until,
        announcement_id=b.announcement_id,
        schedules=[PlacedSchedule(**p) for p in json.loads(b.schedules)],
        received_at=b.received_at,
    )


def answered(received: Received, response: Response, guard: ServiceGuardDep) -> BulletinPublic:
    """201 for a new bulletin; 200 with the stored one when the same id comes again."""
    b = received.bulletin
    if received.new:
        guard.audit(
            "bulletin.push",
            str(b.id),
            {"id": b.external_id, "title": b.title, "areas": json.loads(b.areas)},
        )
    else:
        response.status_code = status.HTTP_200_OK
        guard.audit("bulletin.push_again", str(b.id), {"id": b.external_id})
    return public(b)


@router.post("/bulletins", response_model=BulletinPublic, status_code=status.HTTP_201_CREATED)
async def push_text(
    body: BulletinCreate, guard: ServiceGuardDep, service: ServiceDep, response: Response
) -> BulletinPublic:
    """A bulletin as text, read out by the voice. Authenticated by `X-Api-Key` with the scope
    `bulletins:push`; its areas must lie within the key's areas. The same `id` again answers
    200 with what was stored the first time."""
    guard.check(Scope.bulletins_push, body.areas)
    data = BulletinIn(
        external_id=body.id,
        title=body.title,
        category=body.category,
        areas=body.areas,
        priority=body.priority,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        starts_at=body.starts_at,
    )
    received = await service.bulletins.receive_text(data, guard.caller.actor, body.text)
    return answered(received, response, guard)


@router.post("/bulletins/audio", response_model=BulletinPublic, status_code=status.HTTP_201_CREATED)
async def push_audio(
    guard: ServiceGuardDep,
    service: ServiceDep,
    response: Response,
    id: Annotated[str, Form(min_length=1, max_length=300)],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    areas: Annotated[str, Form(min_length=1, max_length=4000, description="Comma-separated")],
    file: Annotated[UploadFile, File(description="MP3, WAV, M4A or OGG recording")],
    category: Annotated[str, Form(max_length=40)] = "",
    priority: Annotated[Priority, Form()] = Priority.priority,
    valid_from: Annotated[datetime | None, Form()] = None,
    valid_until: Annotated[datetime | None, Form()] = None,
    starts_at: Annotated[datetime | None, Form()] = None,
) -> BulletinPublic:
    """A recorded bulletin (multipart). The key is checked before the body is read; the body
    is limited to the upload size (`RADIO_UPLOAD_MAX_MB`), counted as it arrives."""
    area_ids = [a.strip() for a in areas.split(",") if a.strip()]
    guard.check(Scope.bulletins_push, area_ids)
    data = BulletinIn(
        external_id=id,
        title=title,
        category=category,
        areas=area_ids,
        priority=priority,
        valid_from=valid_from,
        valid_until=valid_until,
        starts_at=starts_at,
    )
    limit = int(service.settings.upload_max_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(dir=service.store.root) as tmp:
        path = Path(tmp) / "upload"
        size = 0
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise Invalid(
                        f"the recording is larger than {service.settings.upload_max_mb:g} MB"
                    )
                out.write(chunk)
        received = await service.bulletins.receive_audio(
            data, guard.caller.actor, path, file.filename or "bulletin"
        )
    return answered(received, response, guard)


@router.get("/bulletins", response_model=list[BulletinPublic])
def list_bulletins(guard: GuardDep, session: SessionDep) -> list[BulletinPublic]:
    """The bulletins that concern the person's area, newest first."""
    guard.check(Permission.read)
    rows = session.exec(select(Bulletin).order_by(col(Bulletin.id).desc()).limit(300)).all()
    return [public(b) for b in rows if guard.concerns(json.loads(b.areas))]


def rule_public(r: BulletinRule) -> BulletinRulePublic:
    assert r.id is not None
    return BulletinRulePublic(
        id=r.id,
        area_id=r.area_id,
        source=r.source,
        category=r.category,
        at_time=r.at_time,
        weekdays=r.weekdays,
        targets=json.loads(r.targets),
        active=r.active,
        created_by=r.created_by,
        created_at=r.created_at,
    )


@router.get("/bulletin-rules", response_model=list[BulletinRulePublic])
def list_rules(guard: GuardDep, session: SessionDep) -> list[BulletinRulePublic]:
    guard.check(Permission.read)
    rows = session.exec(
        select(BulletinRule)
        .where(col(BulletinRule.active).is_(True))
        .order_by(col(BulletinRule.id))
    ).all()
    return [rule_public(r) for r in rows if guard.sees(r.area_id)]


@router.post(
    "/bulletin-rules", response_model=BulletinRulePublic, status_code=status.HTTP_201_CREATED
)
def create_rule(
    body: BulletinRuleCreate, guard: GuardDep, session: SessionDep
) -> BulletinRulePublic:
    """Bulletins of this source and category reaching `area_id` are scheduled at the next
    `at_time` (on `weekdays`) for `targets`, without approval: the officer approves once, here."""
    guard.check(Permission.approve, [body.area_id, *body.targets])
    weekdays = check_rule(body.area_id, body.at_time, body.weekdays, body.targets, guard.tree)
    rule = BulletinRule(
        area_id=body.area_id,
        source=body.source.strip(),
        category=body.category.strip(),
        at_time=body.at_time,
        weekdays=weekdays,
        targets=json.dumps(list(dict.fromkeys(body.targets))),
        created_by=guard.user.username,
    )
    session.add(rule)
    session.commit()
    session.refresh(rule)
    guard.audit("bulletin_rule.create", str(rule.id), body.model_dump(mode="json"))
    return rule_public(rule)


@router.delete("/bulletin-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: int, guard: GuardDep, session: SessionDep) -> None:
    rule = session.get(BulletinRule, rule_id)
    if rule is None or not rule.active or not guard.sees(rule.area_id):
        raise NotFound(f"bulletin rule {rule_id} does not exist")
    guard.check(Permission.approve, [rule.area_id])
    rule.active = False
    session.add(rule)
    session.commit()
    guard.audit("bulletin_rule.delete", str(rule_id))
