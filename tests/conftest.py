"""Shared fixtures: free ports, real brokers (embedded and Mosquitto), real databases, a running
controller on real sockets, and simulated nodes.

Runs under pytest-xdist: every worker reserves its own ports (a lock file per port) and migrates
its own template databases once, so tests in parallel never meet.
"""

from __future__ import annotations

import asyncio
import fcntl
import fnmatch
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.core.config import Settings
from protocol.clock import Clock

POSTGRES_URL = os.environ.get("RADIO_TEST_POSTGRES_URL")
# Which pass this is (scripts/test.sh runs both):
#   sqlite    every test, on SQLite; the tests that need PostgreSQL wait for the other pass;
#   postgres  production mode: only the tests whose behaviour can differ by database (marked
#             `sql`, see SQL_MODULES) and those that need PostgreSQL, every one on PostgreSQL
#             (each test gets a fresh database as RADIO_DATABASE_URL, which in-process settings
#             and `radio` commands read);
#   unset     what was asked for, on SQLite, and on PostgreSQL too where a server is given.
TEST_DATABASE = os.environ.get("RADIO_TEST_DATABASE", "")
ALL_ON_POSTGRES = TEST_DATABASE == "postgres"
TEST_PASSWORD = "correct-horse-42"


# Ports for test servers come from below Linux's ephemeral range (32768-60999), so the kernel
# never hands one of them to an outgoing connection or to a bind to port 0 in the meantime; a
# lock file per port keeps every test process on this machine (xdist workers, parallel runs)
# from handing out the same one. A process keeps its ports until it exits.
PORT_RANGE = range(20000, 32000)
PORT_LOCKS = Path(tempfile.gettempdir()) / "radio-test-ports"
_reserved: list[int] = []  # lock file descriptors, held open for the life of the process
_next_port = [random.randrange(len(PORT_RANGE))]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As servers bind (SO_REUSEADDR): only a listener, not a closed connection, is in the way.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port that nothing listens on and that no other test process will be given."""
    PORT_LOCKS.mkdir(exist_ok=True)
    for _ in range(len(PORT_RANGE)):
        port = PORT_RANGE[_next_port[0] % len(PORT_RANGE)]
        _next_port[0] += 1
        fd = os.open(PORT_LOCKS / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _port_is_free(port):
            _reserved.append(fd)
            return port
        os.close(fd)
    raise RuntimeError(f"no free port left in {PORT_RANGE}")


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


# Test modules whose behaviour can differ between SQLite and PostgreSQL: they read or write
# through SQL that the two engines run differently (locking, transactions, types, upserts,
# time zones, migrations), or they are the end-to-end smoke set that crosses every store. The
# PostgreSQL pass runs these (and every test that needs PostgreSQL); pure logic, the console's
# pages, the node software and the audio chain run once, in the SQLite pass.
SQL_MODULES = {
    "tests/controller/test_migrations.py",  # the schema from nothing, and models = migrations
    "tests/controller/test_province_reports.py",  # time windows and sums over the logs in SQL
    "tests/controller/test_lock_order.py",  # row locks
    "tests/controller/test_health_ingest.py",  # ingestion: batches, de-duplication, upserts
    "tests/controller/test_health_alarms.py",  # alarm state in SQL
    "tests/controller/test_health_logs.py",  # telemetry roll-ups, retention
    "tests/controller/test_recurring.py",  # occurrences, exdates, time zones in SQL
    "tests/controller/test_conflicts_api.py",  # conflicts over stored broadcasts
    "tests/controller/test_approval.py",  # state transitions in transactions
    "tests/controller/test_api_input.py",  # constraints, long text, odd input through SQL
    "tests/controller/test_commands.py",  # command progress rows
    "tests/controller/test_key_rotation.py",  # keyring rows
    "tests/controller/test_seed.py",  # 3,321 communes in bulk
    "tests/controller/test_node_cli.py",  # the registry from the command line, CSV import
    "tests/controller/test_access_control.py",  # filtering by area in SQL, for every role
    "tests/controller/test_programme_api.py",  # calendar and log queries over time ranges
    "tests/controller/test_playlists.py",  # ordered entries, content in use
    "tests/controller/test_health_api.py",  # fleet views: aggregates over telemetry
    "tests/controller/test_broadcast_e2e.py",  # smoke: a broadcast end to end
    "tests/controller/test_alerts.py",  # smoke: alerts and their confirmations
    "tests/controller/test_programme_e2e.py",  # smoke: a programme across a restart
    "tests/faults/test_fault_storage.py",  # the database going away
    "tests/faults/test_fault_two_controllers.py",  # leadership (advisory lock)
}


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("database_url") == "postgres":
        return True
    return "postgres_url" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        module = Path(str(item.path)).relative_to(root).as_posix()
        if module in SQL_MODULES:
            item.add_marker(pytest.mark.sql)
        if _needs_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if TEST_DATABASE == "sqlite":
            wanted = not item.get_closest_marker("postgres")
        elif TEST_DATABASE == "postgres":
            wanted = bool(item.get_closest_marker("sql") or item.get_closest_marker("postgres"))
        else:
            wanted = True
        (keep if wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@contextmanager
def _postgres_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of `template`, or empty), dropped afterwards; its url."""
    import psycopg

    if not POSTGRES_URL:
        pytest.skip("RADIO_TEST_POSTGRES_URL is not set")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once for this process; tests get copies of it."""
    from controller.core.db import Database

    with _postgres_database("radio_tpl") as url:
        db = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
        db.migrate()
        db.dispose()  # CREATE DATABASE ... TEMPLATE wants no one connected to the template
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A PostgreSQL database for one test, already migrated, dropped afterwards."""
    with _postgres_database("radio_test", postgres_template) as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL database with nothing in it (for migrations from nothing)."""
    with _postgres_database("radio_empty") as url:
        yield url


def _database_params() -> list[str]:
    if TEST_DATABASE == "sqlite":
        return ["sqlite"]
    if TEST_DATABASE == "postgres":
        return ["postgres"]
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Run a test on the pass's database: SQLite (None: the default file) or PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def commune_database(tmp_path: Path, database_url: str | None) -> Iterator[Any]:
    """A fresh database of the pass (SQLite in the test's folder, or PostgreSQL), migrated,
    holding one commune, `xa`: the tests add their nodes."""
    from controller.core.db import Database
    from controller.core.models import Area, AreaKind

    database = Database(database_url or f"sqlite:///{tmp_path / 'radio.db'}")
    database.migrate()
    with database.session() as s:
        s.add(Area(id="xa", name="Xã", kind=AreaKind.commune))
        s.commit()
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _nodes_reconnect_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node waits up to 30 s between reconnects in the field (a province of nodes must not
    storm a broker that comes back); in tests that would only be waiting. Capped at 2 s."""
    from firmware_sim.node import Node

    monkeypatch.setattr(Node, "backoff_max_s", 2.0)


@pytest.fixture(autouse=True)
def _every_test_on_postgres(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ALL_ON_POSTGRES:
        monkeypatch.setenv("RADIO_DATABASE_URL", str(request.getfixturevalue("postgres_url")))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for this process; each test's data dir starts with a
    copy (migrating from nothing is tested on its own, in test_migrations)."""
    from controller.core.db import Database

    path = tmp_path_factory.mktemp("template") / "radio.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.engine.connect() as conn:  # everything into the main file: the copy is complete
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


def pytest_configure(config: pytest.Config) -> None:
    if ALL_ON_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError("RADIO_TEST_DATABASE=postgres needs RADIO_TEST_POSTGRES_URL")


# --- skips: reported, and under CI=true a failure unless allowed ---------------------------

SKIPS_ALLOWED = Path(__file__).parent / "skips_allowed.txt"
_skipped: list[tuple[str, str]] = []
_unallowed: list[tuple[str, str]] = []


def allowed_skips() -> list[str]:
    """Node-id patterns (fnmatch) from tests/skips_allowed.txt; each line gives its reason."""
    if not SKIPS_ALLOWED.exists():
        return []
    patterns = []
    for line in SKIPS_ALLOWED.read_text(encoding="utf-8").splitlines():
        pattern = line.split("#", 1)[0].strip()
        if pattern:
            patterns.append(pattern)
    return patterns


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _skipped.append((report.nodeid, reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput") or os.environ.get("CI") != "true":
        return  # xdist workers report to the controller, which decides
    patterns = allowed_skips()
    _unallowed[:] = [
        (nodeid, reason)
        for nodeid, reason in _skipped
        if not any(fnmatch.fnmatch(nodeid, p) for p in patterns)
    ]
    if _unallowed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _unallowed:
        terminalreporter.section("skipped, and not allowed under CI", red=True)
        for nodeid, reason in _unallowed:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(f"(a skip that is expected goes in {SKIPS_ALLOWED}, with its reason)")


# --- settings and the controller -----------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path, sqlite_template: Path) -> Callable[..., Settings]:
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
            # Announcements without the 2 s opening chime: shorter to render and to play
            # (the chime is tested in tests/audio and test_speech_api).
            "opening_chime": False,
            **ports,
        }
        values.update(overrides)
        settings = Settings(**values)
        if not settings.database_url:
            target = Path(settings.data_dir) / "radio.db"
            if not target.exists():
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                shutil.copyfile(sqlite_template, target)
                target.chmod(0o600)
        return settings

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

        from controller.auth.users import create_user
        from controller.core.models import Role, User

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

    from api.main import create_app, server_config
    from controller.service import RadioService

    app = create_app(RadioService(settings, clock))
    # Served as `radio serve` serves it (forwarded headers believed only from trusted proxies).
    server = uvicorn.Server(server_config(app, settings))

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

    def reloads(self) -> int:
        self.log.flush()
        return (self.directory / "mosquitto.log").read_bytes().count(b"Reloading config.")

    def reload(self, timeout: float = 10) -> None:
        """SIGHUP: re-read the password and ACL files. Returns once Mosquitto has logged the
        reload: it reloads in its main loop before it reads from any client again, so every
        connection after this sees the new files."""
        assert self.proc is not None
        before = self.reloads()
        self.proc.send_signal(1)
        deadline = time.monotonic() + timeout
        while self.reloads() == before:
            if time.monotonic() > deadline:
                raise TimeoutError("Mosquitto did not reload its configuration")
            time.sleep(0.02)

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
