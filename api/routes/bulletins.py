"""Bulletins from upper levels: pushed by other systems (`X-Api-Key`), seen by officers, and
the officers' rules that relay them without waiting for approval."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from sqlmodel import col, func, select

from api.bulletin_schemas import (
    BulletinCreate,
    BulletinFeedCreate,
    BulletinFeedPublic,
    BulletinPublic,
    BulletinRuleCreate,
    BulletinRulePublic,
    BulletinStatus,
    PlacedSchedule,
    ScheduleState,
)
from api.deps import GuardDep, ServiceDep, ServiceGuardDep, SessionDep
from api.errors import CodedHTTPException
from controller.auth.access import Permission
from controller.auth.service_accounts import Scope
from controller.bulletins.bulletins import BulletinIn, Received, check_rule
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import Bulletin, BulletinFeed, BulletinRule, Delivery, Schedule
from controller.core.time import utc_datetime
from protocol import Priority, valid_id

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


@router.get("/bulletins/sent/{bulletin_id}", response_model=BulletinStatus)
def sent_status(bulletin_id: str, guard: ServiceGuardDep, session: SessionDep) -> BulletinStatus:
    """For the sending system: what became of its bulletin (by its own id) — each area's
    schedule, approved or not, and its loudspeakers by delivery state."""
    guard.check(Scope.bulletins_push, [])
    bulletin = session.exec(
        select(Bulletin).where(
            Bulletin.source == guard.caller.actor, Bulletin.external_id == bulletin_id
        )
    ).first()
    if bulletin is None:
        raise NotFound(f"no bulletin {bulletin_id!r} was received from this account")
    states = []
    for placed in public(bulletin).schedules:
        if placed.schedule_id is None:
            continue
        schedule = session.get(Schedule, placed.schedule_id)
        if schedule is None:
            continue
        counts = session.exec(
            select(Delivery.state, func.count())
            .where(Delivery.schedule_id == placed.schedule_id)
            .group_by(col(Delivery.state))
        ).all()
        states.append(
            ScheduleState(
                schedule_id=placed.schedule_id,
                areas=placed.areas,
                status=schedule.status,
                starts_at=schedule.starts_at,
                approved_by=schedule.approved_by,
                deliveries={state: n for state, n in counts},
            )
        )
    return BulletinStatus(**public(bulletin).model_dump(), states=states)


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


def feed_public(f: BulletinFeed) -> BulletinFeedPublic:
    assert f.id is not None
    return BulletinFeedPublic(
        id=f.id,
        name=f.name,
        url=f.url,
        category=f.category,
        areas=json.loads(f.areas),
        priority=f.priority,
        silent_after_s=f.silent_after_s,
        active=f.active,
        last_polled_at=f.last_polled_at,
        last_status=f.last_status,
        last_new_at=f.last_new_at,
        silent_since=f.silent_since,
        created_by=f.created_by,
    )


@router.get("/bulletin-feeds", response_model=list[BulletinFeedPublic])
def list_feeds(guard: GuardDep, session: SessionDep) -> list[BulletinFeedPublic]:
    guard.check(Permission.read)
    rows = session.exec(
        select(BulletinFeed)
        .where(col(BulletinFeed.active).is_(True))
        .order_by(col(BulletinFeed.id))
    ).all()
    return [feed_public(f) for f in rows if guard.concerns(json.loads(f.areas))]


@router.post(
    "/bulletin-feeds", response_model=BulletinFeedPublic, status_code=status.HTTP_201_CREATED
)
def create_feed(
    body: BulletinFeedCreate, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> BulletinFeedPublic:
    """Follow an upper level's RSS or Atom feed; new entries with audio become bulletins for
    `areas` (source `feed:<name>`), waiting for approval unless a rule relays them."""
    guard.check(Permission.approve, body.areas)
    url = urlsplit(body.url.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CodedHTTPException(422, "url: give an http:// or https:// address", "feed_url")
    why = service.settings.stations.precheck(url.hostname)
    if why is not None:
        raise CodedHTTPException(422, f"url refused: {why}", "feed_host_refused")
    if not valid_id(body.name):
        raise Invalid("name: lowercase letters, digits, '-', '_' or '.' (max 64)")
    if session.exec(select(BulletinFeed).where(BulletinFeed.name == body.name)).first():
        raise Conflict(f"a feed named {body.name!r} exists already")
    for area_id in body.areas:
        if area_id not in guard.tree.parents:
            raise Invalid(f"area {area_id!r} does not exist")
    feed = BulletinFeed(
        name=body.name,
        url=body.url.strip(),
        category=body.category,
        areas=json.dumps(list(dict.fromkeys(body.areas))),
        priority=body.priority.value,
        silent_after_s=body.silent_after_s,
        created_by=guard.user.username,
        created_at=utc_datetime(service.clock.now_ms()),
        last_new_at=utc_datetime(service.clock.now_ms()),
    )
    session.add(feed)
    session.commit()
    session.refresh(feed)
    guard.audit("bulletin_feed.create", body.name, body.model_dump(mode="json"))
    return feed_public(feed)


def feed_of(feed_id: int, guard: GuardDep, session: SessionDep) -> BulletinFeed:
    feed = session.get(BulletinFeed, feed_id)
    if feed is None or not feed.active or not guard.concerns(json.loads(feed.areas)):
        raise NotFound(f"bulletin feed {feed_id} does not exist")
    guard.check(Permission.approve, json.loads(feed.areas))
    return feed


@router.post("/bulletin-feeds/{feed_id}/poll", response_model=BulletinFeedPublic)
async def poll_feed(
    feed_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> BulletinFeedPublic:
    """Read the feed now instead of at the next round."""
    feed_of(feed_id, guard, session)
    await service.feeds.poll(feed_id)
    with service.db.session() as fresh:
        polled = fresh.get(BulletinFeed, feed_id)
        assert polled is not None
    return feed_public(polled)


@router.delete("/bulletin-feeds/{feed_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_feed(feed_id: int, guard: GuardDep, session: SessionDep) -> None:
    feed = feed_of(feed_id, guard, session)
    feed.active = False
    session.add(feed)
    session.commit()
    guard.audit("bulletin_feed.delete", feed.name)
