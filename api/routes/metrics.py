"""Prometheus metrics at /metrics, for a scraper with the configured metrics token or for a
logged-in administrator, auditor or technician (fleet-wide counts, no names)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServiceDep
from controller.auth.security import InvalidToken, read_token
from controller.core.models import Role, User

router = APIRouter(tags=["system"])
bearer = HTTPBearer(auto_error=False)
READERS = {Role.admin.value, Role.auditor.value, Role.technician.value}


def may_scrape(service: ServiceDep, token: str | None) -> int:
    """200 when allowed, 401 without a valid token, 403 for a person without the role."""
    if not token:
        return 401
    configured = service.settings.metrics_token
    if configured and secrets.compare_digest(token.encode(), configured.encode()):
        return 200
    try:
        claims = read_token(service.settings.secret_key, token, "access")
    except InvalidToken:
        return 401
    with service.db.session() as session:
        user = session.get(User, claims.user_id)
    if user is None or not user.active:
        return 401
    return 200 if user.role in READERS else 403


@router.get("/metrics", include_in_schema=False)
async def metrics(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    token = credentials.credentials if credentials else None
    verdict = await asyncio.to_thread(may_scrape, service, token)
    if verdict == 403:
        raise HTTPException(403, "metrics are for administrators, auditors and technicians")
    if verdict != 200:
        raise HTTPException(
            401,
            "send 'Authorization: Bearer <RADIO_METRICS_TOKEN>' or an access token of an "
            "administrator, auditor or technician",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await asyncio.to_thread(service.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
