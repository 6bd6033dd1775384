"""What every HTTP request passes before any route sees it: a body limit counted as the bytes
arrive, a login check before an upload is read, strict JSON, and the browser security headers.

These are plain ASGI wrappers around the whole application (outside FastAPI's own error
middleware), so that their answers — and a 500 — carry the same headers, and so that no route,
form parser or validation error can read more of a body than the limit allows.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Ordinary requests; uploads have their own limits (the configured sizes).
MAX_BODY = 2 * 1024 * 1024
# Multipart framing and the form's other fields around an upload's file.
FORM_OVERHEAD = 64 * 1024
# Before hanging up on a refused body, read (and drop) at most this much more of it, for at most
# this long: closing a socket with unread data resets it, and a client still sending would lose
# the answer already sent (seen under load). An endless body still ends here.
LINGER_BYTES = 4 * 1024 * 1024
LINGER_S = 2.0

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        # Templates indent area lists with style="--depth: n"; Leaflet positions with styles.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:{tiles}",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
    )
)


def content_security_policy(tile_url: str | None) -> str:
    """Scripts only from the controller's own files: no inline script, no eval, no other site.
    Images may also come from the configured map tile server."""
    tiles = ""
    if tile_url:
        from urllib.parse import urlsplit

        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.hostname:
            host = parts.netloc.split("@")[-1]
            # {s} is Leaflet's subdomain placeholder: allow the host's siblings.
            if "{s}." in tile_url:
                host = "*." + host.split(".", 1)[1]
            tiles = f" {parts.scheme}://{host}"
    return CONTENT_SECURITY_POLICY.format(tiles=tiles)


def error_body(detail: str, code: str) -> bytes:
    return json.dumps({"detail": detail, "code": code}).encode()


async def send_error(
    send: Send,
    status: int,
    detail: str,
    code: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    close: bool = False,
    drain: Receive | None = None,
) -> None:
    """An answer before (or instead of) the application's. `close`: hang up after it (an endless
    chunked body), once `drain` has lingered on the body; otherwise the server discards the rest
    of a body of declared length as it comes, so that the client reads the answer."""
    body = error_body(detail, code)
    extra = [(b"connection", b"close")] if close else []
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
                *headers,
            ],
        }
    )
    if close and drain is not None:
        # The whole answer is out (its length is declared); the server hangs up only when the
        # response ends, after a short linger on the body.
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await linger(drain)
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": body})


async def linger(receive: Receive) -> None:
    """Read and drop a little more of a refused body (LINGER_BYTES, LINGER_S) or its end."""
    got = 0
    try:
        async with asyncio.timeout(LINGER_S):
            while got < LINGER_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                got += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


class SecurityHeaders:
    """Adds the browser security headers to every response, errors included."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyTooLarge(Exception):
    """Raised inside the application's `receive` once the body passes its limit."""


class MalformedJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson(f"the number {text[:20]} is out of range")
    return value


def check_json(body: bytes) -> str | None:
    """What is wrong with a JSON body, or None. Beyond the grammar: text must be UTF-8 without
    lone surrogates (not even as \\ud800 escapes), and numbers must be finite."""
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        # A lone surrogate (escaped as \udXXX) cannot be stored or sent on as UTF-8.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        return "the body is not valid UTF-8 text (a lone surrogate or a broken byte sequence)"
    except MalformedJson as exc:
        return str(exc)
    except (ValueError, RecursionError) as exc:
        return f"the body is not valid JSON: {str(exc)[:100]}"
    return None


def is_json(headers: Headers) -> bool:
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


Authenticate = Callable[[Scope], Awaitable[tuple[int, str, str] | None]]


class BodyLimit:
    """Counts the body's bytes as they arrive and refuses with 413 once they pass the limit
    (a Content-Length over it is refused before anything is read). Upload routes have a larger
    limit and are answered 401 before their body is read when the caller is not logged in.
    JSON bodies (small by the limit) are read here and refused with 422 when malformed."""

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        upload_limits: dict[str, int],
        authenticate: Authenticate,
    ) -> None:
        self.app = app
        self.default = default_limit
        self.uploads = upload_limits
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        upload = scope["method"] == "POST" and path in self.uploads
        limit = self.uploads[path] if upload else self.default
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self.too_large(send, limit, not length.isdigit(), receive)
            return
        if upload:
            refusal = await self.authenticate(scope)
            if refusal is not None:
                status, detail, code = refusal
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await send_error(
                    send, status, detail, code, extra, close=length is None, drain=receive
                )
                return

        received = 0
        exceeded = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        app_receive: Receive = counted
        if is_json(headers) and scope["method"] not in ("GET", "HEAD"):
            try:
                body = await read_all(counted)
            except BodyTooLarge:
                await self.too_large(send, limit, True, receive)
                return
            problem = check_json(body) if body else None
            if problem is not None:
                await send_error(send, 422, problem, "malformed_json")
                return
            app_receive = replay(body, receive)

        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the application makes of a cut body, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, app_receive, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self.too_large(send, limit, True, receive)

    @staticmethod
    async def too_large(send: Send, limit: int, close: bool, receive: Receive) -> None:
        await send_error(
            send,
            413,
            f"the request body is too large (limit {limit} bytes)",
            "body_too_large",
            close=close,
            drain=receive,
        )


async def read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once; then the connection's own messages (a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
