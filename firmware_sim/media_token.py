"""The node's media token: sent with every download from the controller, renewed before it
expires (and when the controller refuses it) with the node's broker login."""

from __future__ import annotations

import logging
import time

import httpx

log = logging.getLogger(__name__)

RENEW_BEFORE_S = 3600  # renew this long before the token's end (tokens last days)


def expires_s(token: str) -> int | None:
    """The expiry a token states (`node_id.expires.mac`), or None for another kind of token."""
    head, _, _mac = token.rpartition(".")
    _, _, expires = head.rpartition(".")
    return int(expires) if expires.isdigit() else None


class MediaToken:
    def __init__(
        self, http: httpx.AsyncClient, value: str, url: str | None, node_id: str, password: str
    ) -> None:
        self.http = http
        self.value = value
        self.url = url
        self.node_id = node_id
        self.password = password
        self.renewals = 0

    def due(self, now_s: float | None = None) -> bool:
        expires = expires_s(self.value)
        if self.url is None or expires is None:
            return False
        return (time.time() if now_s is None else now_s) >= expires - RENEW_BEFORE_S

    async def current(self) -> str:
        """The token to send now, renewed first if it is about to end."""
        if self.due():
            await self.renew()
        return self.value

    async def renew(self) -> bool:
        """Ask the controller for a fresh token; False (the old one kept) when it cannot."""
        if self.url is None or not self.password:
            return False
        try:
            r = await self.http.post(
                self.url, auth=(self.node_id, self.password), timeout=10, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            log.warning("%s: media token renewal failed: %s", self.node_id, exc)
            return False
        if r.status_code != 200:
            log.warning("%s: media token renewal refused (%d)", self.node_id, r.status_code)
            return False
        try:
            self.value = str(r.json()["media_token"])
        except (ValueError, KeyError, TypeError):
            return False
        self.renewals += 1
        return True
