"""The node's media token: sent with downloads and streams to the controller's own URLs only,
renewed before it expires (and when the controller refuses it) with the node's broker login.

The controller's own URLs are those of the scheme, host and port of the provisioned
`media_token_url`: the controller writes every address it gives a node (media, live and relayed
streams, firmware images, the token's renewal) from one base. A node provisioned without that
address sends its token nowhere. The token is an `httpx.Auth`, so a request to any other origin
(a station, an HLS segment on a CDN) never carries it; redirects are not followed with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator

import httpx

log = logging.getLogger(__name__)

RENEW_BEFORE_S = 3600  # renew this long before the token's end (tokens last days)
MAX_ANSWER_BYTES = 16 * 1024  # the renewal's JSON answer; anything longer is not ours
_DEFAULT_PORTS = {"http": 80, "https": 443}


def expires_s(token: str) -> int | None:
    """The expiry a token states (`node_id.expires.mac`), or None for another kind of token."""
    head, _, _mac = token.rpartition(".")
    _, _, expires = head.rpartition(".")
    return int(expires) if expires.isdigit() else None


def origin(url: str | httpx.URL) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port filled in; None for anything else."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        return None
    return parsed.scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS[parsed.scheme]


class MediaToken(httpx.Auth):
    """The token as it is now; as an `httpx.Auth`, it signs requests to the controller only."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        value: str,
        url: str | None,
        node_id: str,
        password: str,
    ) -> None:
        self.http = http
        self.value = value
        self.url = url
        self.node_id = node_id
        self.password = password
        self.renewals = 0
        self.controller = origin(url) if url else None

    def owns(self, url: str | httpx.URL) -> bool:
        """Whether `url` is one of the controller's own (the token may go there)."""
        return self.controller is not None and origin(url) == self.controller

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.value and self.owns(request.url):
            request.headers["Authorization"] = f"Bearer {self.value}"
        yield request

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
            async with self.http.stream(
                "POST",
                self.url,
                auth=(self.node_id, self.password),
                timeout=10,
                follow_redirects=False,
            ) as r:
                if r.status_code != 200:
                    log.warning("%s: media token renewal refused (%d)", self.node_id, r.status_code)
                    return False
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        log.warning("%s: media token renewal answer too long", self.node_id)
                        return False
        except httpx.HTTPError as exc:
            log.warning("%s: media token renewal failed: %s", self.node_id, exc)
            return False
        try:
            value = json.loads(bytes(body))["media_token"]
        except (ValueError, KeyError, TypeError):
            return False
        self.value = str(value)
        self.renewals += 1
        return True


def no_token(http: httpx.AsyncClient) -> MediaToken:
    """For a node (or a test's cache) without a token: nothing is ever sent."""
    return MediaToken(http, "", None, "", "")
