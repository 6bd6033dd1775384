"""Device alarms: list and filter, acknowledge, and a live stream of alarm and state changes.

Acknowledging needs `manage_nodes` (technicians and administrators, in their area): it says
"I am on it", and the people who repair loudspeakers are the technicians; officers and commune
staff see alarms but do not take charge of hardware.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import col, select
from starlette.background import BackgroundTask

from api.deps import GuardDep, ServiceDep, SessionDep
from api.health_schemas import AlarmAck, AlarmPublic
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.events import AlarmChanged, NodeStatusChanged
from controller.core.models import Alarm, Node
from controller.health.alarms import AlarmKind

router = APIRouter(prefix="/alarms", tags=["alarms"])


def public(alarm: Alarm, area_id: str | None) -> AlarmPublic:
    return AlarmPublic(**alarm.model_dump(), area_id=area_id)


@router.get("", response_model=list[AlarmPublic])
def list_alarms(
    guard: GuardDep,
    session: SessionDep,
    state: Literal["open", "acknowledged", "cleared", "active"] | None = Query(
        default=None, description="active: open or acknowledged (not cleared)"
    ),
    kind: AlarmKind | None = None,
    area_id: str | None = Query(default=None, max_length=64),
    node_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=500, ge=1, le=5000),
) -> list[AlarmPublic]:
    guard.check(Permission.read)
    q = (
        select(Alarm, Node.area_id)
        .join(Node, col(Node.id) == Alarm.node_id)
        .order_by(col(Alarm.raised_at).desc(), col(Alarm.id).desc())
    )
    if state == "active":
        q = q.where(col(Alarm.cleared_at).is_(None))
    elif state is not None:
        q = q.where(Alarm.state == state)
    if kind is not None:
        q = q.where(Alarm.kind == kind.value)
    if node_id is not None:
        q = q.where(Alarm.node_id == node_id)
    if area_id is not None:
        q = q.where(col(Node.area_id).in_(guard.tree.descendants(area_id)))
    out = []
    for alarm, node_area in session.exec(q).all():
        if guard.sees(node_area):
            out.append(public(alarm, node_area))
            if len(out) >= limit:
                break
    return out


@router.post("/{alarm_id}/ack", response_model=AlarmPublic)
def acknowledge(
    alarm_id: int, body: AlarmAck, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AlarmPublic:
    alarm = session.get(Alarm, alarm_id) if -(2**63) < alarm_id < 2**63 else None
    node = session.get(Node, alarm.node_id) if alarm is not None else None
    if alarm is None or node is None or not guard.sees(node.area_id):
        raise NotFound(f"alarm {alarm_id} does not exist")
    guard.check(Permission.manage_nodes, [node.area_id])
    acked = service.alarms.acknowledge(session, alarm.id or 0, guard.user.username, body.note)
    session.commit()
    guard.audit("alarm.ack", str(alarm_id), {"node_id": node.id, "kind": alarm.kind})
    return public(acked, node.area_id)


@router.get("/events", include_in_schema=False)
async def live(request: Request, guard: GuardDep, service: ServiceDep) -> StreamingResponse:
    """Server-sent events: every alarm change (`alarm`) and node state change (`node`) in the
    user's area, as it happens. Left out of the OpenAPI schema: a stream has no JSON body."""
    guard.check(Permission.read)
    _ = guard.tree  # read now: the request's database session closes when streaming starts
    sees = guard.sees
    # Subscribed before the answer starts, so that nothing done after it is missed; closed when
    # the stream ends, or by the response's background task if the stream never started.
    events = service.changes.listen((NodeStatusChanged, AlarmChanged), "alarms live view")

    async def stream() -> AsyncIterator[str]:
        with events:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                event = await events.get(timeout=5)
                if event is None:
                    yield ": keep-alive\n\n"
                elif sees(event.area_id):
                    data = json.dumps(event.wire(), default=str)
                    yield f"event: {event.kind}\ndata: {data}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
        background=BackgroundTask(events.close),
    )
