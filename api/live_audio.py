"""The WebSocket a live broadcast's audio arrives on (protocol in docs/protocol.md).

The browser logs in with its console session cookie (the page's own origin only, so another
site cannot open it with the officer's cookie); `radio live` sends a bearer token. Binary
messages are audio in the format named in the query; `{"type": "stop"}` ends the broadcast.
The controller answers with `ready`, then `stats` every second, and `ended` at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlmodel import Session

from api.session import read_session
from controller.auth.access import Forbidden, Permission, require
from controller.auth.audit import record
from controller.auth.security import InvalidToken, read_token
from controller.core.errors import Conflict
from controller.core.models import LiveBroadcast, LiveStatus, User
from controller.live.live_encoder import INPUTS, Encoder
from controller.live.live_feed import LiveFeed
from controller.service import RadioService

log = logging.getLogger(__name__)
router = APIRouter()

MAX_MESSAGE = 256 * 1024


def _user(ws: WebSocket, service: RadioService, session: Session) -> User | None:
    header = ws.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        try:
            claims = read_token(service.settings.secret_key, header[7:].strip(), "access")
        except InvalidToken:
            return None
        user = session.get(User, claims.user_id)
        return user if user is not None and user.active else None
    origin = urlparse(ws.headers.get("origin", ""))
    if origin.netloc != ws.headers.get("host"):
        return None  # a cookie is only good from the console's own pages
    console = read_session(ws, service, session)  # type: ignore[arg-type]  # reads only cookies
    return console.user if console is not None else None


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.send_text(json.dumps({"type": "error", "code": code, "detail": reason}))
    await ws.close(code, reason[:120])


@router.websocket("/api/v1/live/{live_id}/audio")
async def live_audio(
    ws: WebSocket, live_id: str, format: str = "webm", rate: int = 48000, channels: int = 1
) -> None:
    service: RadioService = ws.app.state.service
    await ws.accept()
    ip = ws.client.host if ws.client else ""
    with service.db.session() as session:
        user = _user(ws, service, session)
        live = session.get(LiveBroadcast, live_id)
        if user is None:
            return await _refuse(ws, 4401, "log in first: a bearer token or the console session")
        if live is None:
            return await _refuse(ws, 4404, f"live broadcast {live_id} does not exist")
        areas = service.broadcasts.target_areas(service.broadcasts.targets_of(live.schedule_id))
        try:
            require(user, Permission.alert, areas, service.registry.area_tree(session))
        except Forbidden as exc:
            record(session, user.username, "denied:alert", live_id, {"reason": str(exc)},
                   role=user.role, ip=ip, outcome="denied")  # fmt: skip
            return await _refuse(ws, 4403, str(exc))
    feed = service.live.feeds.get(live_id)
    if live.status != LiveStatus.on_air or feed is None:
        return await _refuse(ws, 4409, f"live broadcast {live_id} has ended")
    if format not in INPUTS or not 8000 <= rate <= 96000 or channels not in (1, 2):
        return await _refuse(
            ws, 4422, f"format is one of {', '.join(INPUTS)}; rate 8000-96000; channels 1 or 2"
        )
    try:
        encoder = await feed.attach(format, rate, channels)
    except Conflict as exc:
        return await _refuse(ws, 4409, str(exc))
    with service.db.session() as session:
        record(session, user.username, "live.source", live_id, {"format": format},
               role=user.role, ip=ip)  # fmt: skip
        row = session.get(LiveBroadcast, live_id)
        if row is not None:
            row.source = format
            session.add(row)
            session.commit()
    stats = asyncio.create_task(_report(ws, feed))
    try:
        await ws.send_text(json.dumps({"type": "ready", "live_id": live_id, "format": format}))
        stop = await _receive(ws, encoder)
    finally:
        stats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stats
        await feed.detach(encoder)
    if stop:
        await _stop(ws, service, live_id, user, ip)


async def _receive(ws: WebSocket, encoder: Encoder) -> bool:
    """Audio until the source leaves (False) or asks to stop the broadcast (True)."""
    while True:
        try:
            message: MutableMapping[str, Any] = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return False
        if message.get("type") == "websocket.disconnect":
            return False
        data = message.get("bytes")
        if data:
            if len(data) > MAX_MESSAGE:
                await _refuse(ws, 1009, f"audio messages are at most {MAX_MESSAGE} bytes")
                return False
            await encoder.write(data)
            continue
        text = message.get("text")
        if text:
            try:
                kind = json.loads(text).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "stop":
                return True


async def _stop(ws: WebSocket, service: RadioService, live_id: str, user: User, ip: str) -> None:
    try:
        await service.live.stop(live_id, user.username, f"stopped by {user.username}")
    except Conflict:
        pass  # ended meanwhile (the REST stop, or its time ran out)
    else:
        with service.db.session() as session:
            record(session, user.username, "live.stop", live_id, role=user.role, ip=ip)
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "ended", "reason": f"stopped by {user.username}"}))
        await ws.close(1000)


async def _report(ws: WebSocket, feed: LiveFeed) -> None:
    """Every second: what arrived and how many listen; `ended` when the broadcast ends."""
    while not feed.hub.closed:
        await asyncio.sleep(1.0)
        await ws.send_text(
            json.dumps(
                {
                    "type": "stats",
                    "bytes_in": feed.bytes_in,
                    "audio_s": round(feed.hub.audio_ms / 1000, 1),
                    "listeners": feed.hub.listeners,
                }
            )
        )
    await ws.send_text(json.dumps({"type": "ended", "reason": "the broadcast has ended"}))
    await ws.close(1000)
