"""The controller's MP3 streams for nodes: live broadcasts and relayed stations.

One encoder per stream, any number of listeners (`StreamHub`); authenticated like media (a
node's media token, or a user's access token to listen in).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import StreamingResponse

from api.deps import ServiceDep, SessionDep
from api.errors import ErrorOut
from api.media import authorized
from controller.core.models import LiveBroadcast
from controller.live.stream_hub import StreamHub

router = APIRouter(tags=["media"])
_LIVE = re.compile(r"^([0-9a-f]{16})\.mp3$")
_RELAY = re.compile(r"^([0-9]{1,12})\.mp3$")
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
AUDIO: dict[int | str, dict[str, object]] = {
    200: {"content": {"audio/mpeg": {}}, "description": "An endless MP3 stream"}
}
GONE: dict[int | str, dict[str, object]] = {
    410: {"model": ErrorOut, "description": "The live broadcast has ended"}
}


def _check(service: ServiceDep, authorization: str | None) -> None:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not token or not authorized(service, token):
        raise HTTPException(401, "streams need a node's media token or a user's access token")


def _stream(hub: StreamHub) -> StreamingResponse:
    return StreamingResponse(hub.listen(), media_type="audio/mpeg", headers=HEADERS)


@router.get("/media/live/{name}", response_class=StreamingResponse, responses=AUDIO | GONE)
async def live_stream(
    name: str,
    service: ServiceDep,
    session: SessionDep,
    authorization: str | None = Header(default=None),
) -> StreamingResponse:
    """A live broadcast as it is spoken; 410 once it has ended."""
    _check(service, authorization)
    match = _LIVE.match(name)
    if match is None:
        raise HTTPException(404, "no such live stream: use /media/live/<live id>.mp3")
    feed = service.live.feeds.get(match.group(1))
    if feed is None or feed.hub.closed:
        if session.get(LiveBroadcast, match.group(1)) is not None:
            raise HTTPException(410, "this live broadcast has ended")
        raise HTTPException(404, "no such live stream")
    return _stream(feed.hub)


@router.get("/media/relay/{name}", response_class=StreamingResponse, responses=AUDIO)
async def relay_stream(
    name: str,
    service: ServiceDep,
    session: SessionDep,
    authorization: str | None = Header(default=None),
) -> StreamingResponse:
    """The controller's copy of a station written in a playlist (`via_controller`); 503 while
    the station does not answer."""
    _check(service, authorization)
    match = _RELAY.match(name)
    if match is None:
        raise HTTPException(404, "no such relay: use /media/relay/<playlist entry id>.mp3")
    return _stream(await service.relays.hub_for(session, int(match.group(1))))
