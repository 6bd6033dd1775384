"""A warning agency's feed server on 127.0.0.1 for tests: serves documents by path over real
HTTP/1.1, answers conditional requests (ETag, Last-Modified) with 304, and keeps each request's
head so tests can see what the controller asked."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from email.utils import formatdate


class FeedServer:
    def __init__(self) -> None:
        self.documents: dict[str, tuple[bytes, str, str]] = {}  # path -> (body, type, modified)
        self.requests: list[dict[str, str]] = []  # lower-cased headers, plus "path"
        self.statuses: list[int] = []
        self.redirects: dict[str, str] = {}  # path -> Location
        self.unsized: set[str] = set()  # paths answered without Content-Length (until close)
        self.port = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes, content_type: str = "application/xml") -> None:
        self.documents[path] = (body, content_type, formatdate(usegmt=True))

    async def __aenter__(self) -> FeedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, path, _version = lines[0].split(" ", 2)
            headers = {"path": path}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            self.requests.append(headers)
            writer.write(self._answer(path, headers))
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, path: str, headers: dict[str, str]) -> bytes:
        if path in self.redirects:
            self.statuses.append(302)
            return (
                f"HTTP/1.1 302 Found\r\nLocation: {self.redirects[path]}\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n"
            ).encode()
        if path not in self.documents:
            self.statuses.append(404)
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        body, content_type, modified = self.documents[path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if headers.get("if-none-match") == etag:
            self.statuses.append(304)
            return (
                f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n".encode()
            )
        self.statuses.append(200)
        size = "" if path in self.unsized else f"Content-Length: {len(body)}\r\n"
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{size}"
            f"ETag: {etag}\r\nLast-Modified: {modified}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


def atom(entries: list[tuple[str, str]], title: str = "Cảnh báo thiên tai") -> bytes:
    """An Atom index whose entries (id, href) link to CAP documents, newest first."""
    items = "".join(
        f"<entry><id>{entry_id}</id><title>{entry_id}</title>"
        f"<updated>2026-11-28T05:00:00+07:00</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{href}"/></entry>'
        for entry_id, href in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:test:feed</id><title>{title}</title>'
        f"<updated>2026-11-28T05:00:00+07:00</updated>{items}</feed>"
    ).encode()
