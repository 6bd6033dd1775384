"""Audio for the console's players: an `<audio>` element sends the session cookie, not a token."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from api.deps import ServiceDep, SessionDep
from api.media import stored_mp3
from api.session import read_session

router = APIRouter(prefix="/console", include_in_schema=False)
_NAME = re.compile(r"^([0-9a-f]{64})\.mp3$")


@router.get("/media/{name}")
def media(name: str, request: Request, service: ServiceDep, db: SessionDep) -> Response:
    """As `/media/{name}` for a logged-in user's token: every person may listen to any media."""
    if read_session(request, service, db) is None:
        raise HTTPException(401, "log in to the console first")
    match = _NAME.match(name)
    if match is None:
        raise HTTPException(404, "no such media: use /console/media/<sha256>.mp3")
    # Private: the cookie authorised it, so no shared cache may keep it.
    return stored_mp3(service, request, match.group(1), "private, max-age=86400")
