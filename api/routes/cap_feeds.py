"""Followed warning feeds: the administrator's feeds, rules and area codes; the warnings they
brought, and the officers' one-tap decision on those that wait."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.routes.alerts import AlertPublic, public
from api.schemas import Strict
from controller.alerts.cap import CERTAINTIES, SEVERITIES, URGENCIES
from controller.alerts.cap_feeds import check_url
from controller.auth.access import Permission
from controller.core.errors import Invalid, NotFound
from controller.core.models import Alert, Area, CapFeed, CapGeocode, CapRule, CapWarning

router = APIRouter(prefix="/cap", tags=["warning feeds"])

Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
assert set(SEVERITIES) == set(Severity.__args__)  # type: ignore[attr-defined]
assert set(URGENCIES) == set(Urgency.__args__)  # type: ignore[attr-defined]
assert set(CERTAINTIES) == set(Certainty.__args__)  # type: ignore[attr-defined]


class FeedUrlRefused(Invalid):
    code = "cap_feed_url_refused"


class FeedIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000)
    interval_s: int = Field(default=60, ge=15, le=24 * 3600)
    enabled: bool = True


class FeedPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    interval_s: int | None = Field(default=None, ge=15, le=24 * 3600)
    enabled: bool | None = None


class FeedPublic(BaseModel):
    id: int
    name: str
    url: str
    enabled: bool
    interval_s: int
    polled_at: datetime | None
    changed_at: datetime | None
    error: str | None
    created_by: str
    created_at: datetime


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    action: Literal["auto", "approve", "ignore"]
    severities: list[Severity] = Field(default_factory=list, max_length=5)
    urgencies: list[Urgency] = Field(default_factory=list, max_length=5)
    certainties: list[Certainty] = Field(default_factory=list, max_length=5)
    areas: list[str] = Field(default_factory=list, max_length=500)
    feed_id: int | None = None


class RulePublic(RuleIn):
    id: int
    created_by: str
    created_at: datetime


class GeocodeIn(Strict):
    value_name: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1, max_length=200)
    area_id: str = Field(min_length=1, max_length=64)


class PollOut(BaseModel):
    status: int
    taken: list[int]
    errors: list[str]


class WarningPublic(BaseModel):
    id: int
    feed_id: int | None
    sender: str
    identifier: str
    sent: datetime
    msg_type: str
    cap_version: str
    test: bool
    status: str
    reason: str | None
    priority: str | None
    severity: str | None
    urgency: str | None
    certainty: str | None
    title: str
    text: str
    areas: list[str]
    references: list[str]
    expires_at: datetime | None
    rule_id: int | None
    alert_id: str | None
    received_at: datetime
    decided_by: str | None
    decided_at: datetime | None


def feed_public(f: CapFeed) -> FeedPublic:
    return FeedPublic(**f.model_dump(exclude={"etag", "last_modified"}))


def rule_public(r: CapRule) -> RulePublic:
    lists = {k: json.loads(getattr(r, k)) for k in ("severities", "urgencies", "certainties")}
    data = r.model_dump(exclude={*lists, "areas"})
    return RulePublic(**data, **lists, areas=json.loads(r.areas))


def warning_public(w: CapWarning) -> WarningPublic:
    return WarningPublic(
        **w.model_dump(exclude={"areas", "references", "document", "url"}),
        areas=json.loads(w.areas),
        references=json.loads(w.references),
    )


def _feed(session: SessionDep, feed_id: int) -> CapFeed:
    feed = session.get(CapFeed, feed_id)
    if feed is None:
        raise NotFound(f"feed {feed_id} does not exist")
    return feed


def _checked_url(service: ServiceDep, url: str) -> str:
    why = check_url(url.strip(), service.settings.cap_feed_hosts)
    if why is not None:
        raise FeedUrlRefused(f"the feed address is refused: {why}")
    return url.strip()


@router.get("/feeds", response_model=list[FeedPublic])
def list_feeds(guard: GuardDep, session: SessionDep) -> list[FeedPublic]:
    guard.check(Permission.manage_warning_feeds)
    return [feed_public(f) for f in session.exec(select(CapFeed).order_by(col(CapFeed.id))).all()]


@router.post("/feeds", response_model=FeedPublic, status_code=status.HTTP_201_CREATED)
def add_feed(body: FeedIn, guard: GuardDep, session: SessionDep, service: ServiceDep) -> FeedPublic:
    guard.check(Permission.manage_warning_feeds)
    feed = CapFeed(
        name=body.name,
        url=_checked_url(service, body.url),
        interval_s=body.interval_s,
        enabled=body.enabled,
        created_by=guard.user.username,
    )
    session.add(feed)
    session.commit()
    session.refresh(feed)
    guard.audit("cap.feed.add", f"cap-feed:{feed.id}", body.model_dump())
    return feed_public(feed)


@router.patch("/feeds/{feed_id}", response_model=FeedPublic)
def change_feed(
    feed_id: int, body: FeedPatch, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> FeedPublic:
    guard.check(Permission.manage_warning_feeds)
    feed = _feed(session, feed_id)
    changes = body.model_dump(exclude_none=True)
    if "url" in changes:
        changes["url"] = _checked_url(service, changes["url"])
        if changes["url"] != feed.url:  # another address: its validators mean nothing here
            feed.etag = feed.last_modified = None
    for key, value in changes.items():
        setattr(feed, key, value)
    session.add(feed)
    session.commit()
    session.refresh(feed)
    guard.audit("cap.feed.change", f"cap-feed:{feed.id}", changes)
    return feed_public(feed)


@router.delete("/feeds/{feed_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_feed(feed_id: int, guard: GuardDep, session: SessionDep) -> None:
    """Stop following a feed; the warnings it brought stay on record."""
    guard.check(Permission.manage_warning_feeds)
    feed = _feed(session, feed_id)
    for warning in session.exec(select(CapWarning).where(CapWarning.feed_id == feed_id)).all():
        warning.feed_id = None
        session.add(warning)
    for rule in session.exec(select(CapRule).where(CapRule.feed_id == feed_id)).all():
        session.delete(rule)
    session.delete(feed)
    session.commit()
    guard.audit("cap.feed.remove", f"cap-feed:{feed_id}", {"url": feed.url})


@router.post("/feeds/{feed_id}/poll", response_model=PollOut)
async def poll_feed(
    feed_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> PollOut:
    """Poll the feed now rather than at its next interval."""
    guard.check(Permission.manage_warning_feeds)
    _feed(session, feed_id)
    result = await service.warning_feeds.poll(feed_id)
    return PollOut(status=result.status, taken=list(result.taken), errors=list(result.errors))


@router.get("/rules", response_model=list[RulePublic])
def list_rules(guard: GuardDep, session: SessionDep) -> list[RulePublic]:
    guard.check(Permission.manage_warning_feeds)
    return [rule_public(r) for r in session.exec(select(CapRule).order_by(col(CapRule.id))).all()]


@router.post("/rules", response_model=RulePublic, status_code=status.HTTP_201_CREATED)
def add_rule(body: RuleIn, guard: GuardDep, session: SessionDep) -> RulePublic:
    """Rules are read in the order they were made: the first that matches a warning decides;
    a warning no rule matches waits for an officer."""
    guard.check(Permission.manage_warning_feeds)
    for area_id in body.areas:
        if session.get(Area, area_id) is None:
            raise Invalid(f"area {area_id!r} does not exist")
    if body.feed_id is not None:
        _feed(session, body.feed_id)
    rule = CapRule(
        name=body.name,
        action=body.action,
        severities=json.dumps(body.severities),
        urgencies=json.dumps(body.urgencies),
        certainties=json.dumps(body.certainties),
        areas=json.dumps(body.areas),
        feed_id=body.feed_id,
        created_by=guard.user.username,
    )
    session.add(rule)
    session.commit()
    session.refresh(rule)
    guard.audit("cap.rule.add", f"cap-rule:{rule.id}", body.model_dump())
    return rule_public(rule)


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_rule(rule_id: int, guard: GuardDep, session: SessionDep) -> None:
    guard.check(Permission.manage_warning_feeds)
    rule = session.get(CapRule, rule_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} does not exist")
    session.delete(rule)
    session.commit()
    guard.audit("cap.rule.remove", f"cap-rule:{rule_id}", {"name": rule.name})


@router.get("/geocodes", response_model=list[GeocodeIn])
def list_geocodes(guard: GuardDep, session: SessionDep) -> list[GeocodeIn]:
    guard.check(Permission.manage_warning_feeds)
    rows = session.exec(select(CapGeocode).order_by(col(CapGeocode.value_name))).all()
    return [GeocodeIn(**g.model_dump()) for g in rows]


@router.put("/geocodes", response_model=GeocodeIn)
def put_geocode(body: GeocodeIn, guard: GuardDep, session: SessionDep) -> GeocodeIn:
    """Say which of our areas an agency's area code stands for (replacing an earlier answer)."""
    guard.check(Permission.manage_warning_feeds)
    if session.get(Area, body.area_id) is None:
        raise Invalid(f"area {body.area_id!r} does not exist")
    code = session.get(CapGeocode, (body.value_name, body.value))
    if code is None:
        code = CapGeocode(**body.model_dump())
    code.area_id = body.area_id
    session.add(code)
    session.commit()
    guard.audit("cap.geocode.put", f"{body.value_name}={body.value}"[:200], body.model_dump())
    return body


@router.delete("/geocodes", status_code=status.HTTP_204_NO_CONTENT)
def remove_geocode(
    guard: GuardDep,
    session: SessionDep,
    value_name: str = Query(max_length=200),
    value: str = Query(max_length=200),
) -> None:
    guard.check(Permission.manage_warning_feeds)
    code = session.get(CapGeocode, (value_name, value))
    if code is None:
        raise NotFound(f"no area is set for {value_name}={value}")
    session.delete(code)
    session.commit()
    guard.audit("cap.geocode.remove", f"{value_name}={value}"[:200])


@router.get("/warnings", response_model=list[WarningPublic])
def list_warnings(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    state: Literal["pending", "all"] = "pending",
    limit: int = Query(default=100, ge=1, le=500),
) -> list[WarningPublic]:
    """Warnings that concern the user's area: those waiting for a decision (the most urgent
    first), or all of them, newest first."""
    guard.check(Permission.read)
    if state == "pending":
        rows = service.warning_feeds.pending()
    else:
        rows = list(
            session.exec(
                select(CapWarning).order_by(col(CapWarning.received_at).desc()).limit(limit)
            ).all()
        )
    admin = guard.user.area_id is None
    seen = [w for w in rows if admin or guard.concerns(json.loads(w.areas))]
    return [warning_public(w) for w in seen[:limit]]


@router.post("/warnings/{warning_id}/approve", response_model=AlertPublic)
async def approve_warning(
    warning_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AlertPublic:
    """One tap: the warning goes out as an alert to the areas it was mapped onto."""
    warning = session.get(CapWarning, warning_id)
    if warning is None:
        raise NotFound(f"warning {warning_id} does not exist")
    guard.check(Permission.alert, json.loads(warning.areas))

    def may_update(running: Alert) -> None:
        # An update replaces the message of an alert already sounding, on its own areas.
        guard.check(Permission.alert, json.loads(running.areas))

    alert = await service.warning_feeds.approve(warning_id, guard.user.username, may_update)
    guard.audit(
        "cap.approve",
        f"cap-warning:{warning_id}",
        {"alert": alert.id, "identifier": warning.identifier, "sender": warning.sender},
    )
    return public(alert)


@router.post("/warnings/{warning_id}/reject", response_model=WarningPublic)
async def reject_warning(
    warning_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> WarningPublic:
    warning = session.get(CapWarning, warning_id)
    if warning is None:
        raise NotFound(f"warning {warning_id} does not exist")
    guard.check(Permission.alert, json.loads(warning.areas))
    done = await service.warning_feeds.reject(warning_id, guard.user.username)
    guard.audit("cap.reject", f"cap-warning:{warning_id}", {"identifier": warning.identifier})
    return warning_public(done)
