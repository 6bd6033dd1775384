"""What an outside attacker sends at the HTTP edge: endless chunked bodies, uploads without a
login, hostile JSON, formulas in CSV cells, forged X-Forwarded-For, parallel password guesses.
Every test runs against a real controller over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import select

from controller.core.config import Settings
from controller.core.models import AuditEntry, Role
from tests.conftest import TEST_PASSWORD, running_controller, wait_for

CHUNK = 64 * 1024
HUGE = 200 * 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Feed:
    """A chunked request body that would go on for 200 MB, sent over a plain socket while the
    answer is read at the same time (as a browser does): `sent` is how much the server took
    before it answered and hung up."""

    head: bytes = b""
    fill: bytes = b"a"
    total: int = HUGE
    sent: int = 0

    async def post(self, ctl: Any, path: str, headers: dict[str, str]) -> Answer:
        port = int(ctl.base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = asyncio.create_task(read_answer(reader))
        chunk = self.fill * CHUNK
        try:
            if self.head:
                writer.write(b"%x\r\n%s\r\n" % (len(self.head), self.head))
                self.sent += len(self.head)
            while self.sent < self.total and not answer.done():
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                self.sent += len(chunk)
        except ConnectionError:
            pass  # the server hung up: it has answered
        try:
            return await asyncio.wait_for(answer, 30)
        finally:
            writer.close()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    data = b""
    with contextlib.suppress(ConnectionError):
        while b"\r\n\r\n" not in data:
            more = await reader.read(65536)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        while len(body) < int(headers.get("content-length", 0)):
            more = await reader.read(65536)
            if not more:
                break
            body += more
        return Answer(int(lines[0].split()[1]), headers, body)
    raise AssertionError(f"no answer: {data[:200]!r}")


async def test_a_chunked_body_past_the_limit_is_refused_without_being_read(make_settings):
    async with running_controller(make_settings()) as ctl:
        feed = Feed(head=b'{"refresh_token": "', fill=b"A")
        r = await feed.post(ctl, "/api/v1/auth/refresh", {"content-type": "application/json"})
        assert r.status == 413, r
        assert r.json()["code"] == "body_too_large" and len(r.body) < 500
        # The client got its answer after a few megabytes, not 200 MB: the server stopped reading.
        assert feed.sent < 24 * 1024 * 1024, feed.sent

        # Not JSON, same limit (a form to the login; its parser may refuse a field first).
        feed = Feed(head=b"username=root&password=", fill=b"x")
        r = await feed.post(
            ctl, "/api/v1/auth/token", {"content-type": "application/x-www-form-urlencoded"}
        )
        assert r.status in (400, 413)
        assert feed.sent < 24 * 1024 * 1024, feed.sent

        # A declared length over the limit is answered before a byte of the body is sent.
        port = int(ctl.base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /api/v1/announcements HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (3 << 20)
        )
        r = await asyncio.wait_for(read_answer(reader), 30)
        writer.close()
        assert r.status == 413 and r.json()["code"] == "body_too_large"


def spooled_files(ctl: Any) -> list[str]:
    return [str(p) for p in ctl.service.store.root.rglob("upload")]


@pytest.mark.parametrize("path", ["/api/v1/announcements/upload", "/api/v1/firmware"])
async def test_an_upload_without_login_or_right_is_refused_before_its_body(make_settings, path):
    settings = make_settings()
    async with running_controller(settings) as ctl:
        boundary = "b0undary"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="title"\r\n\r\nx\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        for who in ({}, {"authorization": "Bearer not-a-token"}):
            feed = Feed(head=head)
            r = await feed.post(ctl, path, headers | who)
            assert r.status == 401, r
            assert r.json()["code"] == "login_needed"
            assert feed.sent < 24 * 1024 * 1024, feed.sent
        assert spooled_files(ctl) == []

        # Logged in without the right to upload there (an auditor reads only): refused before
        # the body too, and recorded as a refusal.
        auditor = await ctl.login_as_new("kiem-toan", "auditor")
        feed = Feed(head=head)
        r = await feed.post(ctl, path, headers | {"authorization": f"Bearer {auditor}"})
        assert r.status == 403 and r.json()["code"] == "forbidden", r
        assert "auditor may not" in r.json()["detail"]
        assert feed.sent < 24 * 1024 * 1024, feed.sent
        assert spooled_files(ctl) == []
        denied = (await ctl.api("GET", "/audit", params={"action": "denied:"})).json()
        assert [(e["actor"], e["outcome"]) for e in denied][:1] == [("kiem-toan", "denied")]

        # Logged in, the upload's own (larger) limit applies, counted as it arrives.
        feed = Feed(head=head)
        r = await feed.post(ctl, path, headers | {"authorization": f"Bearer {ctl.token}"})
        assert r.status == 413
        assert feed.sent < (70 + 24) * 1024 * 1024, feed.sent


async def test_validation_errors_do_not_echo_the_input(make_settings):
    async with running_controller(make_settings()) as ctl:
        secret = "<script>echo-me</script>" * 100
        r = await ctl.http.post(
            f"{ctl.base_url}/api/v1/auth/refresh", json={"refresh_token": secret}
        )
        assert r.status_code == 422
        assert "echo-me" not in r.text and r.json()["code"] == "invalid_input"
        assert all("input" not in e for e in r.json()["detail"])


HOSTILE_JSON = [
    b'"\\ud800"',
    b'{"title": "\\udfff", "text": "x"}',
    b'{"title": "x", "text": "x", "n": 1e999999}',
    b"[-1e400]",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"title": "\xed\xa0\x80"}',
]


async def test_hostile_json_is_a_4xx_with_a_code_on_every_route(make_settings):
    async with running_controller(make_settings()) as ctl:
        spec = (await ctl.http.get(f"{ctl.base_url}/openapi.json")).json()
        routes = [
            (method.upper(), path.replace("{", "").replace("}", ""))
            for path, methods in spec["paths"].items()
            for method, op in methods.items()
            if "application/json" in op.get("requestBody", {}).get("content", {})
        ]
        assert len(routes) >= 15
        failures = []
        for method, path in routes:
            for body in HOSTILE_JSON:
                r = await ctl.http.request(
                    method,
                    f"{ctl.base_url}{path}",
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "authorization": f"Bearer {ctl.token}",
                    },
                )
                if r.status_code != 422 or r.json().get("code") != "malformed_json":
                    failures.append(f"{method} {path} {body!r}: {r.status_code} {r.text[:80]}")
        assert not failures, "\n".join(failures)


async def test_every_response_carries_the_security_headers(make_settings):
    async with running_controller(make_settings()) as ctl:
        answers = [
            await ctl.http.get(f"{ctl.base_url}/console/login"),
            await ctl.http.get(f"{ctl.base_url}/api/v1/health"),
            await ctl.http.get(f"{ctl.base_url}/api/v1/nodes"),  # 401
            await ctl.api("GET", "/nodes/nowhere"),  # 404
            await ctl.api("POST", "/areas", content=b"x" * (3 << 20)),  # 413
            await ctl.http.get(f"{ctl.base_url}/console/static/map.js"),
        ]
        for r in answers:
            csp = r.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, r.url
            assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
            assert r.headers.get("x-frame-options") == "DENY"
            assert r.headers.get("x-content-type-options") == "nosniff"
            assert r.headers.get("referrer-policy") == "same-origin"


async def test_csv_exports_defuse_formulas(make_settings):
    async with running_controller(make_settings()) as ctl:
        names = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
        for name in names:
            r = await ctl.http.post(
                f"{ctl.base_url}/api/v1/auth/token",
                data={"username": name, "password": "wrong-password-1"},
            )
            assert r.status_code in (401, 429)
            ctl.service.login_throttle.clear(f"u:{name}", "ip:127.0.0.1")
        text = (await ctl.api("GET", "/audit/export.csv?lang=en")).content.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        actors = {row["Who"] for row in rows if row["Outcome"] == "Failed"}
        assert actors == {"'" + n for n in names}, actors
        for row in rows:
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


# --- X-Forwarded-For ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The controller served as `radio serve` serves it (api.main.server_config)."""
    import uvicorn

    from api.main import create_app, server_config
    from controller.auth.users import create_user
    from controller.service import RadioService

    app = create_app(RadioService(settings))
    server = uvicorn.Server(server_config(app, settings))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), 30, "the controller to start")
        with app.state.service.db.session() as s:
            create_user(s, "root", TEST_PASSWORD, Role.admin, None)
        yield f"http://127.0.0.1:{settings.http_port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def failed_login_ips(base: str, forged: list[str]) -> tuple[list[int], list[str]]:
    async with httpx.AsyncClient(timeout=30) as http:
        token = (
            await http.post(
                f"{base}/api/v1/auth/token",
                data={"username": "root", "password": TEST_PASSWORD},
                headers={"X-Forwarded-For": "198.51.100.1"},
            )
        ).json()["access_token"]
        codes = []
        for ip in forged:
            r = await http.post(
                f"{base}/api/v1/auth/token",
                data={"username": f"guess-{ip}", "password": "wrong-password-1"},
                headers={"X-Forwarded-For": ip},
            )
            codes.append(r.status_code)
        entries = (
            await http.get(
                f"{base}/api/v1/audit",
                params={"action": "login"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
    return codes, [e["ip"] for e in entries if e["outcome"] == "failed"]


async def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(make_settings):
    forged = [f"203.0.113.{i}" for i in range(1, 8)]
    async with served(make_settings()) as base:
        codes, ips = await failed_login_ips(base, forged)
    # Every guess came from 127.0.0.1, whatever the header said: the address throttle holds.
    assert set(ips) == {"127.0.0.1"}, ips
    assert codes[:5] == [401] * 5 and 429 in codes[5:], codes


async def test_a_configured_proxy_forwards_the_client_address(make_settings):
    forged = [f"203.0.113.{i}" for i in range(1, 3)]
    async with served(make_settings(trusted_proxies="127.0.0.1")) as base:
        codes, ips = await failed_login_ips(base, forged)
    assert codes == [401, 401] and sorted(ips) == forged


# --- the login throttle -------------------------------------------------------------------


async def test_parallel_password_guesses_are_counted_before_they_are_checked(make_settings):
    async with running_controller(make_settings()) as ctl:
        url = f"{ctl.base_url}/api/v1/auth/token"

        async def guess() -> int:
            r = await ctl.http.post(url, data={"username": "root", "password": "wrong-pass-99"})
            return r.status_code

        codes = await asyncio.gather(*(guess() for _ in range(12)))
        assert codes.count(401) == 5 and codes.count(429) == 7, codes
        with ctl.service.db.session() as s:
            checked = s.exec(select(AuditEntry).where(AuditEntry.outcome == "failed")).all()
        assert len(checked) == 5


async def test_a_login_to_ones_own_account_does_not_reset_the_address(make_settings):
    async with running_controller(make_settings()) as ctl:
        await ctl.login_as_new("mine", "auditor")
        url = f"{ctl.base_url}/api/v1/auth/token"

        async def login(user: str, password: str) -> int:
            r = await ctl.http.post(url, data={"username": user, "password": password})
            return r.status_code

        # Guesses spread over other accounts, each under the per-account limit…
        assert [await login(f"victim{i}", "wrong-pass-99") for i in range(4)] == [401] * 4
        # …a login to one's own account in between…
        assert await login("mine", TEST_PASSWORD) == 200
        # …does not clear them: the fifth failure from the address locks it for every account.
        assert await login("victim4", "wrong-pass-99") == 401
        assert await login("victim5", "wrong-pass-99") == 429
        assert await login("mine", TEST_PASSWORD) == 429


def test_idle_connections_outlive_the_time_clients_reuse_them(make_settings) -> None:
    """A server that closes an idle connection before the client stops reusing it races the
    client's next request on it: the client gets a read error (seen in a loaded test run).
    httpx, which the nodes use, reuses an idle connection for 5 s; the server keeps it longer."""
    from fastapi import FastAPI

    from api.main import server_config

    config = server_config(FastAPI(), make_settings())
    assert config.timeout_keep_alive > httpx.Limits().keepalive_expiry + 10
