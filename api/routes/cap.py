"""CAP 1.2 in and out: a warning agency's document raises, updates or cancels an alert; every
alert we issue can be fetched as CAP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from sqlmodel import select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.errors import ErrorOut
from api.routes.alerts import AlertPublic, load, public
from controller.alerts.alerts import AlertRequest
from controller.alerts.cap import MAX_BYTES, CapRefused
from controller.alerts.cap_export import export_cap
from controller.alerts.cap_follow import referenced_alert
from controller.alerts.cap_map import map_alert
from controller.alerts.cap_parse import parse_cap
from controller.auth.access import Permission
from controller.core.errors import Invalid, NotFound
from controller.core.models import Alert, Area, Node

router = APIRouter(prefix="/alerts", tags=["alerts"])
SENDER = "radio-controller@commune-radio"


@router.post(
    "/cap",
    response_model=AlertPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ErrorOut, "description": "The CAP document is refused, and why"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    },
)
async def receive_cap(
    request: Request, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AlertPublic:
    """Accept a CAP 1.2 document (Alert, Update or Cancel) from a warning agency."""
    guard.check(Permission.alert)
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise Invalid(f"the CAP document is larger than {MAX_BYTES // 1024} KiB")
    areas = {a.id: a.parent_id for a in session.exec(select(Area)).all()}
    nodes = [
        (n.id, n.area_id, n.lat, n.lon)
        for n in session.exec(select(Node).where(Node.retired == False)).all()  # noqa: E712
    ]
    try:
        # The administrator's geocodes apply here as to followed feeds (docs/operations.md).
        mapping = service.warning_feeds.mapping(session)
        mapped = map_alert(
            parse_cap(body), mapping, areas=areas, nodes=nodes, now=datetime.now(UTC)
        )
    except CapRefused as exc:
        raise Invalid(f"CAP document refused ({exc.reason}): {exc.message}") from None
    earlier: Alert | None = None
    if mapped.action in ("update", "cancel"):
        earlier = referenced_alert(session, mapped.sender, mapped.referenced_identifiers)
        if earlier is None:
            raise NotFound("no active alert matches the document's <references>")
        guard.check(Permission.alert, json.loads(earlier.areas))
        if mapped.action == "cancel":
            done = await service.alerts.cancel(earlier.id, guard.user.username)
            guard.audit("alert.cancel", done.id, {"cap": mapped.identifier})
            return public(done)
    area_ids = list(mapped.area_ids)
    guard.check(Permission.alert, area_ids)
    minutes = max((mapped.expires - datetime.now(UTC)).total_seconds() / 60, 1)
    req = AlertRequest(
        areas=area_ids,
        text=mapped.text,
        title=mapped.title,
        repeat=mapped.repeat or 3,
        volume=mapped.volume,
        test=mapped.test,
        expires_in_min=min(minutes, 7 * 24 * 60),
        cap_sender=mapped.sender,
        cap_identifier=mapped.identifier,
        author=guard.user.username,
    )
    if mapped.action == "update" and earlier is not None:  # None: refused above
        alert = await service.alerts.update(earlier.id, req)
        alert.cap_identifier = mapped.identifier
        with service.db.session() as s:
            s.add(alert)
            s.commit()
        guard.audit("alert.update", alert.id, {"cap": mapped.identifier})
    else:
        alert = await service.alerts.issue(req)
        guard.audit(
            "alert.test" if alert.test else "alert.issue",
            alert.id,
            {"cap": mapped.identifier, "sender": mapped.sender, "cap_version": mapped.cap_version},
        )
    return public(alert)


@router.get(
    "/{alert_id}/cap.xml",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def alert_as_cap(alert_id: str, guard: GuardDep, session: SessionDep) -> Response:
    guard.check(Permission.read)
    alert = load(session, guard, alert_id)
    names = {a.id: a.name for a in session.exec(select(Area)).all()}
    doc = export_cap(
        {
            "id": alert.id,
            "sender": SENDER,
            "sent": alert.created_at,
            "status": "Test" if alert.test else "Actual",
            "msg_type": "Cancel" if alert.status == "cancelled" else "Alert",
            "event": alert.title,
            "headline": alert.title,
            "description": alert.text,
            "severity": "Extreme",
            "urgency": "Immediate",
            "certainty": "Observed",
            "expires": alert.expires_at,
            "language": "vi-VN",
            "areas": [(a, names.get(a, a)) for a in json.loads(alert.areas)],
        }
    )
    return Response(doc, media_type="application/xml")
