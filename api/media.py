"""Media serving by content address: immutable, with ETag and Range, for authenticated nodes."""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel
from sqlmodel import select

from api.deps import ServiceDep
from controller.auth.keys import check_media_token, media_token_parts
from controller.auth.security import InvalidToken, read_token
from controller.core.models import Node
from controller.mqtt.broker_access import verify_password
from controller.service import RadioService

router = APIRouter(tags=["media"])
_SHA = re.compile(r"^[0-9a-f]{64}$")
_basic = HTTPBasic(auto_error=False)


def _credential(service: RadioService, node_id: str) -> str | None:
    """The node's current broker credential (password hash); None when unknown or retired.
    A column, not the node's object: every node of a broadcast fetches its media."""
    with service.db.session() as session:
        row = session.exec(
            select(Node.mqtt_password_hash).where(Node.id == node_id, Node.retired == False)  # noqa: E712
        ).first()
        return row or None


def node_token_ok(service: RadioService, token: str) -> bool:
    """A node's media token, checked against the registry: unexpired, and made for the node's
    current credential (a retired or re-provisioned node's tokens are dead)."""
    parts = media_token_parts(token)
    if parts is None:
        return False
    credential = _credential(service, parts[0])
    return check_media_token(service.settings.secret_key, token, credential, time.time())


def authorized(service: RadioService, token: str) -> bool:
    """A node's media token, or a logged-in user's access token (to listen in the console)."""
    if node_token_ok(service, token):
        return True
    try:
        read_token(service.settings.secret_key, token, "access")
    except InvalidToken:
        return False
    return True


class MediaTokenOut(BaseModel):
    media_token: str
    expires: int  # epoch seconds


@router.post("/media/token", response_model=MediaTokenOut)
def renew_media_token(
    service: ServiceDep, credentials: HTTPBasicCredentials | None = Depends(_basic)
) -> MediaTokenOut:
    """A fresh media token for a node, which logs in with its broker login (HTTP Basic: node
    id and broker password); a retired node, or a wrong password, gets 401."""
    refused = HTTPException(
        401, "give the node id and broker password", headers={"WWW-Authenticate": "Basic"}
    )
    if credentials is None:
        raise refused
    with service.db.session() as session:
        node = session.get(Node, credentials.username)
        if node is None or node.retired or not node.mqtt_password_hash:
            raise refused
        if not verify_password(credentials.password, node.mqtt_password_hash):
            raise refused
        token = service.registry.media_token(node)
    parts = media_token_parts(token)
    assert parts is not None
    return MediaTokenOut(media_token=token, expires=parts[1])


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
    if not token or not authorized(service, token):
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
