"""Live broadcasts: start (then send audio to the WebSocket), follow, stop.

Starting needs the `alert` right over every target: a live voice goes on the air at once, with
no approval step (commune staff's schedules wait for an officer; a voice cannot), which is the
trust the alert right already stands for. Reading needs `read` where the broadcast concerns
the user, as schedules do.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.live_schemas import LiveCreate, LivePublic
from api.schemas import TargetsIn
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import LiveBroadcast, LiveStatus
from controller.programme.broadcasts import Targets
from controller.service import RadioService

router = APIRouter(prefix="/live", tags=["live"])


def public(service: RadioService, live: LiveBroadcast, targets: Targets) -> LivePublic:
    feed = service.live.feeds.get(live.id)
    return LivePublic(
        id=live.id,
        title=live.title,
        priority=live.priority,
        status=live.status,
        targets=TargetsIn(areas=targets.areas, nodes=targets.nodes, groups=targets.groups),
        schedule_id=live.schedule_id,
        started_by=live.started_by,
        started_at=live.started_at,
        ends_by=live.ends_by,
        ended_by=live.ended_by,
        ended_at=live.ended_at,
        end_reason=live.end_reason,
        audio_url=f"/api/v1/live/{live.id}/audio",
        stream_url=service.live.stream_url(live.id),
        source_connected=feed is not None and feed.encoder is not None,
        listeners=feed.hub.listeners if feed is not None else 0,
        audio_s=round(feed.hub.audio_ms / 1000, 1) if feed is not None else 0.0,
    )


def _visible(guard: GuardDep, service: RadioService, live_id: str) -> tuple[LiveBroadcast, Targets]:
    with service.db.session() as session:
        live = session.get(LiveBroadcast, live_id)
    if live is None:
        raise NotFound(f"live broadcast {live_id} does not exist")
    targets = service.broadcasts.targets_of(live.schedule_id)
    if not guard.concerns(service.broadcasts.target_areas(targets)):
        raise NotFound(f"live broadcast {live_id} does not exist")
    return live, targets


@router.post("", response_model=LivePublic, status_code=status.HTTP_201_CREATED)
async def start_live(body: LiveCreate, guard: GuardDep, service: ServiceDep) -> LivePublic:
    """Go on air now on the targets; then send the audio to `audio_url` (a WebSocket)."""
    targets = Targets(
        areas=body.targets.areas, nodes=body.targets.nodes, groups=body.targets.groups
    )
    guard.check(Permission.alert, service.broadcasts.target_areas(targets))
    minutes = min(body.max_minutes or service.settings.live_max_minutes, 720)
    live = await service.live.start(
        body.title, body.priority, targets, guard.user.username, minutes
    )
    guard.audit("live.start", live.id, body.model_dump(mode="json"))
    return public(service, live, targets)


@router.get("", response_model=list[LivePublic])
def list_live(guard: GuardDep, session: SessionDep, service: ServiceDep) -> list[LivePublic]:
    """Live broadcasts concerning the user's area: those on air, then the latest ended."""
    guard.check(Permission.read)
    rows = session.exec(
        select(LiveBroadcast)
        .order_by(
            col(LiveBroadcast.status) == LiveStatus.ended, col(LiveBroadcast.started_at).desc()
        )
        .limit(100)
    ).all()
    out = []
    for live in rows:
        targets = service.broadcasts.targets_of(live.schedule_id)
        if guard.concerns(service.broadcasts.target_areas(targets)):
            out.append(public(service, live, targets))
    return out


@router.get("/{live_id}", response_model=LivePublic)
def get_live(live_id: str, guard: GuardDep, service: ServiceDep) -> LivePublic:
    guard.check(Permission.read)
    live, targets = _visible(guard, service, live_id)
    return public(service, live, targets)


@router.post("/{live_id}/stop", response_model=LivePublic)
async def stop_live(live_id: str, guard: GuardDep, service: ServiceDep) -> LivePublic:
    """End it on every node now (409 if it has already ended)."""
    live, targets = _visible(guard, service, live_id)
    guard.check(Permission.alert, service.broadcasts.target_areas(targets))
    who = guard.user.username
    live = await service.live.stop(live_id, who, f"stopped by {who}")
    guard.audit("live.stop", live_id)
    return public(service, live, targets)
