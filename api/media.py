"""Media serving by content address: immutable, with ETag and Range, for authenticated nodes."""

from __future__ import annotations

import re

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import FileResponse, Response

from api.deps import ServiceDep
from controller.keys import check_media_token
from controller.security import InvalidToken, read_token
from controller.service import RadioService

router = APIRouter(tags=["media"])
_SHA = re.compile(r"^[0-9a-f]{64}$")


def authorized(secret: str, token: str) -> bool:
    """A node's media token, or a logged-in user's access token (to listen in the console)."""
    if check_media_token(secret, token) is not None:
        return True
    try:
        read_token(secret, token, "access")
    except InvalidToken:
        return False
    return True


@router.get(
    "/media/{name}",
    response_model=None,
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/mpeg": {}}, "description": "The MP3"},
        304: {"description": "Not modified (ETag)"},
    },
)
def media(
    name: str,
    request: Request,
    service: ServiceDep,
    authorization: str | None = Header(default=None),
) -> Response:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not token or not authorized(service.settings.secret_key, token):
        raise HTTPException(401, "media needs a node's media token or a user's access token")
    sha, _, ext = name.partition(".")
    if ext != "mp3" or not _SHA.match(sha):
        raise HTTPException(404, "no such media: use /media/<sha256>.mp3")
    return stored_mp3(service, request, sha, "public, max-age=31536000, immutable")


def stored_mp3(service: RadioService, request: Request, sha: str, cache_control: str) -> Response:
    """The stored MP3 with this SHA-256 (Range via FileResponse), or 304 when the client's ETag
    matches, or 404; `sha` is already checked to be 64 hex digits."""
    path = service.store.path_for(sha)
    if path is None or not path.is_file():
        raise HTTPException(404, "no such media")
    etag = f'"{sha}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return FileResponse(
        path, media_type="audio/mpeg", headers={"ETag": etag, "Cache-Control": cache_control}
    )
