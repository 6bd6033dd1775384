"""Media serving by content address: immutable, with ETag and Range, for authenticated nodes."""

from __future__ import annotations

import re

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import FileResponse, Response

from api.deps import ServiceDep
from controller.keys import check_media_token

router = APIRouter(tags=["media"])
_SHA = re.compile(r"^[0-9a-f]{64}$")


@router.get("/media/{name}", response_model=None)
def media(
    name: str,
    request: Request,
    service: ServiceDep,
    authorization: str | None = Header(default=None),
) -> Response:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not token or check_media_token(service.settings.secret_key, token) is None:
        raise HTTPException(401, "media downloads need the node's media token (Bearer)")
    sha, _, ext = name.partition(".")
    if ext != "mp3" or not _SHA.match(sha):
        raise HTTPException(404, "no such media: use /media/<sha256>.mp3")
    path = service.store.path_for(sha)
    if path is None or not path.is_file():
        raise HTTPException(404, "no such media")
    etag = f'"{sha}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return FileResponse(
        path,
        media_type="audio/mpeg",
        headers={"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"},
    )
