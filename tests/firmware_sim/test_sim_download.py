"""The node's one download function, against real HTTP servers on this machine: caps counted as
bytes arrive, hashes checked, nothing half-written kept, the token only for the controller."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from firmware_sim.download import Downloader, DownloadError, Failure
from firmware_sim.media_token import MediaToken

DATA = b"ID3" + bytes(range(256)) * 64  # 16 KiB and a bit


class Server:
    """A real HTTP/1.1 server. `files[path]` is served with its length; `/chunked/N` sends N
    bytes chunked, without a length; `/endless` sends chunks until the client hangs up;
    `/lying` declares 10 MB and sends a few bytes; `/stall` sends headers, then waits;
    `/redirect` sends the client to `redirect_to`. `auth` lists each GET's Authorization."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.auth: list[tuple[str, str | None]] = []
        self.redirect_to = ""
        self.tokens_refused: set[str] = set()
        self.renewed_token = ""
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                server.auth.append((self.path, auth))
                if auth is not None and auth.removeprefix("Bearer ") in server.tokens_refused:
                    return self._empty(401)
                if self.path in server.files:
                    data = server.files[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif self.path.startswith("/chunked/"):
                    self._chunked(int(self.path.rsplit("/", 1)[1]))
                elif self.path == "/endless":
                    self._chunked(None)
                elif self.path == "/lying":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10_000_000))
                    self.end_headers()
                    self._write(b"x" * 1000)
                    self.close_connection = True
                elif self.path == "/stall":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.flush()
                    server.released.wait(30)
                    self.close_connection = True
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._empty(404)

            def do_POST(self) -> None:  # the token's renewal
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps({"media_token": server.renewed_token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _empty(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _chunked(self, total: int | None) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                sent = 0
                try:
                    while total is None or sent < total:
                        n = 4096 if total is None else min(4096, total - sent)
                        self.wfile.write(b"%x\r\n" % n + b"y" * n + b"\r\n")
                        sent += n
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client hung up: what the cap is for
                self.close_connection = True

            def _write(self, data: bytes) -> None:
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def controller() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture
def elsewhere() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def downloader(http: httpx.AsyncClient, controller: Server, token: str = "tok") -> Downloader:
    media_token = MediaToken(http, token, controller.url("/media/token"), "n1", "broker-pass")
    return Downloader(http, media_token)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_verified_bytes_are_renamed_into_place(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    controller.files["/media/a.mp3"] = DATA
    dest = tmp_path / "media" / sha(DATA)
    fetched = await downloader(client, controller).fetch(
        controller.url("/media/a.mp3"), max_bytes=len(DATA), exact=True, sha256=sha(DATA), dest=dest
    )
    assert fetched.size == len(DATA) and fetched.sha256 == sha(DATA)
    assert dest.read_bytes() == DATA
    assert leftovers(dest.parent) == [dest.name]  # no temporary file left


async def test_a_declared_length_over_the_cap_is_refused_before_the_body(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    dest = tmp_path / "image.bin"
    with pytest.raises(DownloadError) as caught:
        await downloader(client, controller).fetch(
            controller.url("/lying"), max_bytes=5000, dest=dest
        )
    assert caught.value.kind == Failure.too_large and caught.value.received == 0
    assert "Content-Length 10000000" in str(caught.value)
    assert leftovers(tmp_path) == []


async def test_a_body_without_length_stops_at_the_cap(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    dest = tmp_path / "m"
    # An endless chunked body: only counting the bytes as they arrive can end this download.
    with pytest.raises(DownloadError) as caught:
        await downloader(client, controller).fetch(
            controller.url("/endless"), max_bytes=10_000, dest=dest, chunk_size=None
        )
    assert caught.value.kind == Failure.too_large
    assert caught.value.received <= 10_000  # nothing past the cap was written
    assert leftovers(tmp_path) == []
    # A chunked body within the cap is taken whole, its size checked when one is expected.
    got = await downloader(client, controller).fetch(
        controller.url("/chunked/6000"), max_bytes=10_000, dest=dest
    )
    assert got.size == 6000 and dest.read_bytes() == b"y" * 6000
    with pytest.raises(DownloadError) as short:
        await downloader(client, controller).fetch(
            controller.url("/chunked/6000"), max_bytes=10_000, exact=True, dest=tmp_path / "s"
        )
    assert short.value.kind == Failure.incomplete and short.value.received == 6000
    assert leftovers(tmp_path) == ["m"]


async def test_other_bytes_than_the_hash_names_are_not_kept(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    controller.files["/media/b.mp3"] = b"Z" + DATA[1:]  # same size, one byte off
    dest = tmp_path / sha(DATA)
    with pytest.raises(DownloadError) as caught:
        await downloader(client, controller).fetch(
            controller.url("/media/b.mp3"),
            max_bytes=len(DATA),
            exact=True,
            sha256=sha(DATA),
            dest=dest,
        )
    assert caught.value.kind == Failure.hash_mismatch
    assert caught.value.sha256 == sha(b"Z" + DATA[1:]) and "sha256 mismatch" in str(caught.value)
    assert leftovers(tmp_path) == []


async def test_an_http_error_says_its_status(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError) as caught:
        await downloader(client, controller).fetch(
            controller.url("/media/none.mp3"), max_bytes=100, dest=tmp_path / "x"
        )
    assert caught.value.kind == Failure.http_status and caught.value.status == 404
    assert "HTTP 404" in str(caught.value)
    with pytest.raises(DownloadError) as bad:
        await downloader(client, controller).fetch("file:///etc/passwd", max_bytes=100)
    assert bad.value.kind == Failure.bad_url
    assert leftovers(tmp_path) == []


async def test_a_server_that_stops_sending_times_out(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    media_token = MediaToken(client, "tok", controller.url("/media/token"), "n1", "")
    with pytest.raises(DownloadError) as caught:
        await Downloader(client, media_token, timeout_s=0.3).fetch(
            controller.url("/stall"), max_bytes=100, dest=tmp_path / "x"
        )
    assert caught.value.kind == Failure.timeout
    assert leftovers(tmp_path) == []


async def test_the_token_goes_to_the_controller_only(
    client: httpx.AsyncClient, controller: Server, elsewhere: Server
) -> None:
    controller.files["/media/a.mp3"] = DATA
    elsewhere.files["/a.mp3"] = DATA
    d = downloader(client, controller, token="secret")
    await d.fetch(controller.url("/media/a.mp3"), max_bytes=len(DATA))
    await d.fetch(elsewhere.url("/a.mp3"), max_bytes=len(DATA))
    assert controller.auth == [("/media/a.mp3", "Bearer secret")]
    assert elsewhere.auth == [("/a.mp3", None)]
    # A redirect is not followed: the controller's answer cannot carry the token elsewhere.
    controller.redirect_to = elsewhere.url("/a.mp3")
    with pytest.raises(DownloadError) as caught:
        await d.fetch(controller.url("/redirect"), max_bytes=len(DATA))
    assert caught.value.kind == Failure.http_status and caught.value.status == 302
    assert len(elsewhere.auth) == 1
    # Without the controller's address provisioned, the token goes nowhere.
    await Downloader(client, MediaToken(client, "secret", None, "n1", "")).fetch(
        controller.url("/media/a.mp3"), max_bytes=len(DATA)
    )
    assert controller.auth[-1] == ("/media/a.mp3", None)


async def test_a_refused_token_is_renewed_once_and_the_download_tried_again(
    client: httpx.AsyncClient, controller: Server, tmp_path: Path
) -> None:
    controller.files["/media/a.mp3"] = DATA
    controller.tokens_refused = {"old"}
    controller.renewed_token = "new"
    d = downloader(client, controller, token="old")
    dest = tmp_path / "a"
    await d.fetch(controller.url("/media/a.mp3"), max_bytes=len(DATA), sha256=sha(DATA), dest=dest)
    assert [a for _, a in controller.auth] == ["Bearer old", "Bearer new"]
    assert d.token.value == "new" and d.token.renewals == 1 and dest.read_bytes() == DATA
    # Refused again after renewing: the 401 is the answer, not an endless loop.
    controller.tokens_refused = {"new"}
    with pytest.raises(DownloadError) as caught:
        await d.fetch(controller.url("/media/a.mp3"), max_bytes=len(DATA))
    assert caught.value.status == 401


async def test_a_stream_client_with_the_token_as_its_auth_signs_controller_requests_only(
    controller: Server, elsewhere: Server
) -> None:
    # How streams share the rule (Sounds.stream_http): each request is judged by its own
    # address, so HLS segments on another host never see the token, nor does a redirect.
    controller.files["/media/live/1.mp3"] = DATA
    elsewhere.files["/seg1.ts"] = DATA
    async with httpx.AsyncClient() as plain:
        token = MediaToken(plain, "secret", controller.url("/media/token"), "n1", "")
        async with httpx.AsyncClient(auth=token) as streams:
            assert (await streams.get(controller.url("/media/live/1.mp3"))).status_code == 200
            assert (await streams.get(elsewhere.url("/seg1.ts"))).status_code == 200
            controller.redirect_to = elsewhere.url("/seg1.ts")
            followed = await streams.get(controller.url("/redirect"), follow_redirects=True)
            assert followed.status_code == 200
    assert controller.auth == [
        ("/media/live/1.mp3", "Bearer secret"),
        ("/redirect", "Bearer secret"),
    ]
    assert elsewhere.auth == [("/seg1.ts", None), ("/seg1.ts", None)]
