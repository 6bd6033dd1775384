"""Emergency alerts: issue in one call, watch every node confirm (JSON or live events), update,
cancel, all-clear."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select
from starlette.background import BackgroundTask

from api.deps import Guard, GuardDep, ServiceDep, SessionDep
from api.schemas import MAX_OFFSET, Strict
from controller.alerts.alert_templates import TEMPLATES
from controller.alerts.alerts import AlertRequest
from controller.alerts.board import Page
from controller.auth.access import Permission
from controller.core.errors import Invalid, NotFound
from controller.core.events import AlertChanged, AlertReceiptHeard
from controller.core.models import Alert

SNAPSHOT_EVERY_S = 0.1
RECHECK_S = 5.0  # a live view looks at the board this often when its alert's events are quiet
MAX_NAMED = 1000  # node ids a live view may name
# `ids`: that many node ids (ID_PATTERN: 64 characters at most) and their commas.
NAMED_CHARS = MAX_NAMED * 65

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertIn(Strict):
    areas: list[str] = Field(min_length=1, max_length=500)
    template: Literal["flood", "storm", "fire", "epidemic", "evacuation", "all_clear"] | None = None
    text: str | None = Field(default=None, max_length=2000)
    title: str | None = Field(default=None, max_length=200)
    repeat: int = Field(default=3, ge=0, le=100, description="0: until cancelled or expired")
    volume: int | None = Field(default=100, ge=0, le=100)
    test: bool = Field(default=False, description="A test alert, recorded apart from real ones")
    expires_in_min: float = Field(default=60, gt=0, le=7 * 24 * 60)


class AlertPublic(BaseModel):
    id: str
    version: int
    title: str
    text: str
    template: str | None
    media_sha256: str
    duration_s: float
    repeat: int
    volume: int | None
    test: bool
    areas: list[str]
    status: str
    expires_at: datetime
    created_by: str
    created_at: datetime
    cancelled_by: str | None
    cancelled_at: datetime | None


class AlertView(BaseModel):
    alert: AlertPublic
    counts: dict[str, int]
    silent: list[str]
    matched: int = Field(description="nodes in `state` (every node when none is asked for)")
    nodes: list[dict[str, Any]]


NodeState = Literal["pending", "received", "playing", "done", "stopped", "silent", "failed"]


class NodesAsked:
    """Which of the alert's nodes a view lists (its counts are always over all of them)."""

    def __init__(
        self,
        state: NodeState | None = Query(default=None, description="only the nodes in this state"),
        offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
        limit: int | None = Query(
            default=None, ge=1, le=1000, description="at most this many nodes (default: all)"
        ),
    ) -> None:
        self.state, self.offset, self.limit = state, offset, limit

    def page(self, guard: Guard) -> Page:
        return Page(guard.sees, self.state, self.offset, self.limit)


NodesAskedDep = Annotated[NodesAsked, Depends()]


def public(a: Alert) -> AlertPublic:
    return AlertPublic(
        **a.model_dump(
            exclude={"areas", "duration_ms", "media_size", "cap_sender", "cap_identifier"}
        ),
        areas=json.loads(a.areas),
        duration_s=a.duration_ms / 1000,
    )


def request_of(body: AlertIn, author: str) -> AlertRequest:
    return AlertRequest(
        areas=body.areas,
        text=body.text,
        template=body.template,
        title=body.title,
        repeat=body.repeat,
        volume=body.volume,
        test=body.test,
        expires_in_min=body.expires_in_min,
        author=author,
    )


def concerns(guard: GuardDep, alert: Alert) -> bool:
    return guard.concerns(json.loads(alert.areas))


def load(session: SessionDep, guard: GuardDep, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id[:40])
    if alert is None or not concerns(guard, alert):
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


@router.get("/templates")
def templates(guard: GuardDep) -> list[dict[str, str]]:
    guard.check(Permission.read)
    return [{"key": k, "title": t, "text": x} for k, (t, x) in TEMPLATES.items()]


@router.post("", response_model=AlertPublic, status_code=status.HTTP_201_CREATED)
async def issue(body: AlertIn, guard: GuardDep, service: ServiceDep) -> AlertPublic:
    guard.check(Permission.alert, body.areas)
    alert = await service.alerts.issue(request_of(body, guard.user.username))
    guard.audit(
        "alert.test" if alert.test else "alert.issue", alert.id, body.model_dump(mode="json")
    )
    return public(alert)


@router.get("", response_model=list[AlertPublic])
def list_alerts(
    guard: GuardDep,
    session: SessionDep,
    state: Literal["active", "cancelled", "expired", "ended", "finished"] | None = None,
    test: bool | None = None,
) -> list[AlertPublic]:
    guard.check(Permission.read)
    q = select(Alert).order_by(col(Alert.created_at).desc()).limit(200)
    if state is not None:
        q = q.where(Alert.status == state)
    if test is not None:
        q = q.where(Alert.test == test)
    return [public(a) for a in session.exec(q).all() if concerns(guard, a)]


@router.get("/{alert_id}", response_model=AlertView)
def view(
    alert_id: str,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    asked: NodesAskedDep,
    silent_after_s: float = Query(default=30, ge=1, le=3600),
) -> AlertView:
    """Counts and silent nodes over the alert's nodes the user sees (an alert for a commune
    reaches its villages, whose staff see their own loudspeakers), and those nodes, or the
    page of them asked for."""
    guard.check(Permission.read)
    alert = load(session, guard, alert_id)
    v = service.alerts.view(session, alert, silent_after_s, asked.page(guard))
    return AlertView(alert=public(alert), **v)


@router.get(
    "/{alert_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live(
    alert_id: str,
    request: Request,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    asked: NodesAskedDep,
    ids: str = Query(
        default="",
        max_length=NAMED_CHARS,
        pattern=r"^[a-z0-9_., -]*$",
        description="comma-separated node ids: the rows a console shows, whose states every "
        "snapshot carries whatever they are (instead of a page by `offset` and `limit`)",
    ),
) -> StreamingResponse:
    """Server-sent events: a snapshot at once, then every confirmation as it arrives, each
    followed by a snapshot (one for all that arrived within a tenth of a second): from the
    alert board in memory, where ingestion puts each confirmation before storing it. When
    nothing arrives for 5 s, a snapshot if the board changed otherwise (what another instance
    heard, merged from the database), else a keep-alive comment. A snapshot has the counts
    over all the alert's nodes the user sees, `matched`, and the states of the nodes asked
    for (`state`, `offset`, `limit`, as in the view: a page, for a console on a phone); a
    page asked for stays the nodes of the first snapshot, whatever states they move to; or
    `ids` names the nodes (those the user sees of them)."""
    guard.check(Permission.read)
    named = frozenset(filter(None, (i.strip() for i in ids.split(","))))
    if len(named) > MAX_NAMED:
        raise Invalid(f"name at most {MAX_NAMED:,} nodes in `ids`")
    alert = load(session, guard, alert_id)
    # Subscribed before the snapshot is read, so nothing falls between the two; closed when
    # the stream ends, or by the response's background task if the stream never started.
    events = service.changes.listen((AlertChanged, AlertReceiptHeard), "alert live view")
    alerts = service.alerts
    await asyncio.to_thread(alerts.view, session, alert, 30, Page(limit=1))  # onto the board
    guard.tree  # noqa: B018  # read here, not in the snapshots' threads
    page = asked.page(guard)
    if named:
        page = Page(page.sees, page.state, ids=named)
    # A page asked for (by `state` or `limit`) is pinned to the nodes of the first snapshot:
    # the rows a console shows keep their states as they leave a filtered state, while the
    # counts and `matched` follow every node. Without one, every node, as the list grows.
    pinned = not named and (asked.state is not None or asked.limit is not None)
    shown: set[str] = set()  # the nodes whose confirmations the stream names

    def snapshot() -> str:
        v = alerts.board.view(alert.id, 30, alerts.now(), page)
        state = alerts.board.state(alert.id)
        if v is None or state is None:  # left the board: read it again
            alerts.load_board(alert.id)
            v = alerts.board.view(alert.id, 30, alerts.now(), page) or {
                "counts": {},
                "nodes": [],
                "silent": [],
                "matched": 0,
            }
            state = alerts.board.state(alert.id) or (alert.status, alert.version)
        shown.update(n["node_id"] for n in v["nodes"])
        data = {
            "status": state[0],
            "version": state[1],
            "counts": v["counts"],
            "matched": v["matched"],
            "nodes": {n["node_id"]: n["state"] for n in v["nodes"]},
        }
        return f"event: snapshot\ndata: {json.dumps(data)}\n\n"

    async def stream() -> AsyncIterator[str]:
        nonlocal page
        loop = asyncio.get_running_loop()
        with events, alerts.board.pinned(alert.id):
            last = await asyncio.to_thread(snapshot)
            if pinned:
                page = Page(page.sees, page.state, ids=frozenset(shown))
            yield last
            recheck = loop.time() + RECHECK_S
            while not await request.is_disconnected():
                event = await events.get(timeout=recheck - loop.time())
                if event is None:  # nothing of this alert for a while: what the merge brought
                    latest = await asyncio.to_thread(snapshot)
                    yield latest if latest != last else ": keep-alive\n\n"
                    last, recheck = latest, loop.time() + RECHECK_S
                    continue
                # What else arrives within a tenth of a second goes with it, in one snapshot.
                batch = [event]
                deadline = loop.time() + SNAPSHOT_EVERY_S
                while (left := deadline - loop.time()) > 0:
                    more = await events.get(timeout=left)
                    if more is None:
                        break
                    batch.append(more)
                mine = [e for e in batch if e.alert_id == alert.id]
                if not mine:  # other alerts' events: they do not put off the recheck
                    continue
                for change in mine:
                    if not isinstance(change, AlertReceiptHeard) or change.node_id in shown:
                        yield f"event: change\ndata: {json.dumps(change.wire(), default=str)}\n\n"
                # Any node's confirmation may change the counts, whichever page is shown; a
                # snapshot that tells nothing new (another village's node, for village staff)
                # is not sent, nor does it put off the recheck and its keep-alive.
                latest = await asyncio.to_thread(snapshot)
                if latest != last:
                    yield latest
                    last, recheck = latest, loop.time() + RECHECK_S

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
        background=BackgroundTask(events.close),
    )


@router.post("/{alert_id}/update", response_model=AlertPublic)
async def update(
    alert_id: str, body: AlertIn, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AlertPublic:
    alert = load(session, guard, alert_id)
    guard.check(Permission.alert, json.loads(alert.areas))
    updated = await service.alerts.update(alert.id, request_of(body, guard.user.username))
    guard.audit("alert.update", alert.id, body.model_dump(mode="json"))
    return public(updated)


@router.post("/{alert_id}/cancel", response_model=AlertPublic)
async def cancel(
    alert_id: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AlertPublic:
    alert = load(session, guard, alert_id)
    guard.check(Permission.alert, json.loads(alert.areas))
    cancelled = await service.alerts.cancel(alert.id, guard.user.username)
    guard.audit("alert.cancel", alert.id)
    return public(cancelled)


@router.post(
    "/{alert_id}/all-clear", response_model=AlertPublic, status_code=status.HTTP_201_CREATED
)
async def all_clear(
    alert_id: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AlertPublic:
    """End the alert (state `ended`) and tell the same areas, once, that the danger is over."""
    alert = load(session, guard, alert_id)
    guard.check(Permission.alert, json.loads(alert.areas))
    clear = await service.alerts.all_clear(alert.id, guard.user.username)
    guard.audit("alert.all_clear", alert.id, {"all_clear": clear.id})
    return public(clear)
