"""Shared fixtures: free ports, real brokers (embedded and Mosquitto), real databases, a running
controller on real sockets, and simulated nodes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.config import Settings
from protocol.clock import Clock

POSTGRES_URL = os.environ.get("RADIO_TEST_POSTGRES_URL")
# RADIO_TEST_DATABASE=postgres runs every test on PostgreSQL (production mode): each test gets a
# fresh database as RADIO_DATABASE_URL, which in-process settings and `radio` commands read.
ALL_ON_POSTGRES = os.environ.get("RADIO_TEST_DATABASE", "sqlite") == "postgres"
TEST_PASSWORD = "correct-horse-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


async def wait_for(cond: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll `cond` (sync or async) until truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


# --- databases -----------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("RADIO_TEST_POSTGRES_URL is not set")
    import psycopg

    name = f"radio_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["postgres"] if ALL_ON_POSTGRES else ["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Run a test on SQLite (None: the default file) and, where present, on PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(autouse=True)
def _every_test_on_postgres(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ALL_ON_POSTGRES:
        monkeypatch.setenv("RADIO_DATABASE_URL", str(request.getfixturevalue("postgres_url")))


def pytest_configure(config: pytest.Config) -> None:
    if ALL_ON_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError("RADIO_TEST_DATABASE=postgres needs RADIO_TEST_POSTGRES_URL")


# --- settings and the controller -----------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    ports = {"mqtt_embedded_port": free_port(), "http_port": free_port()}

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "demo": True,
            "secret_key": "test-secret-key-0123456789abcdef",
            "topic_prefix": prefix,
            "heartbeat_s": 2,
            "offline_after_s": 8,
            # Rendering the six alert templates at every start would slow every test; the alert
            # tests turn it on.
            "prerender_alert_templates": False,
            **ports,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class RunningController:
    app: Any
    service: Any
    base_url: str
    http: httpx.AsyncClient

    token: str = ""

    async def api(
        self, method: str, path: str, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        bearer = self.token if token is None else token
        if bearer:
            headers.setdefault("Authorization", f"Bearer {bearer}")
        return await self.http.request(
            method, f"{self.base_url}/api/v1{path}", headers=headers, **kw
        )

    async def login(self, username: str, password: str = TEST_PASSWORD) -> str:
        r = await self.http.post(
            f"{self.base_url}/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def login_as_new(self, username: str, role: str, area: str | None = None) -> str:
        """Create a user directly in the database and log in; the first becomes the default."""
        from sqlmodel import select

        from controller.models import Role, User
        from controller.users import create_user

        with self.service.db.session() as s:
            if s.exec(select(User).where(User.username == username)).first() is None:
                create_user(s, username, TEST_PASSWORD, Role(role), area)
        token = await self.login(username)
        if not self.token:
            self.token = token
        return token


@asynccontextmanager
async def running_controller(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[RunningController]:
    import uvicorn

    from api.main import create_app

    app = create_app(settings, clock)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.http_port, log_level="warning", lifespan="on"
        )
    )

    async def serve() -> None:
        # uvicorn exits the process (SystemExit) when it cannot bind; inside a task that would
        # break the event loop and every test after this one. One test fails instead.
        try:
            await server.serve()
        except SystemExit as exc:
            raise RuntimeError(
                f"the controller could not start on port {settings.http_port} (exit {exc.code})"
            ) from None

    task = asyncio.create_task(serve())
    service = app.state.service
    try:
        await wait_for(
            lambda: (server.started and service.gateway.connected.is_set()) or task.done(),
            30,
            "the controller to start",
        )
        if task.done():
            task.result()
            raise RuntimeError("the controller stopped at start")
        base = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(timeout=60) as http:
            ctl = RunningController(app, service, base, http)
            await ctl.login_as_new("root", "admin")
            yield ctl
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 20)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()


# --- Mosquitto -----------------------------------------------------------------------------


class Mosquitto:
    """A real Mosquitto on a free port, with the project's password and ACL files."""

    def __init__(self, directory: Path, passwd: Path | None, acl: Path | None) -> None:
        self.port = free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        lines = ["user root", f"listener {self.port} 127.0.0.1", "persistence false"]
        if passwd is not None:
            lines += [f"password_file {passwd}", "allow_anonymous false"]
        else:
            lines += ["allow_anonymous true"]
        if acl is not None:
            lines.append(f"acl_file {acl}")
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = open(directory / "mosquitto.log", "wb")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_port(self.port)
        return self

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(1)  # SIGHUP: re-read password and ACL files
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    started: list[Mosquitto] = []

    def start(passwd: Path | None = None, acl: Path | None = None) -> Mosquitto:
        m = Mosquitto(tmp_path / f"mosquitto{len(started)}", passwd, acl).start()
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
