"""The schema from nothing: every migration applies in order on an empty database, the result is
what the models say (autogenerate finds no difference), and running them again changes nothing.
Migrating is a step of its own (`radio db upgrade`): `radio serve` refuses an empty or old schema
and says what to run. Every other test starts from a copy of a database migrated once
(tests/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import controller.core.models  # noqa: F401  (the tables, registered on SQLModel.metadata)
from controller.core.db import (
    MIGRATIONS,
    Database,
    SchemaNotCurrent,
    alembic_config,
    head_revision,
)
from tests.conftest import _database_params, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=_database_params())
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url = str(request.getfixturevalue("empty_postgres_url"))
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_migrations_from_nothing_match_the_models(empty_database: str) -> None:
    db = Database(empty_database)
    try:
        with db.engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        db.migrate()
        head = ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()
        assert head is not None and (MIGRATIONS / "versions").is_dir()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert context.get_current_revision() == head
            drift = compare_metadata(context, SQLModel.metadata)
        assert drift == [], f"the models and the migrations disagree: {drift}"
        tables = set(SQLModel.metadata.tables)
        with db.engine.connect() as conn:
            assert tables <= set(inspect(conn).get_table_names())
        db.migrate()  # at head already: nothing to do, nothing fails
        with db.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head
    finally:
        db.dispose()


class Radio:
    """The `radio` command as its own process, on one data directory and one database."""

    def __init__(self, data: Path, database_url: str | None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "RADIO_DATA_DIR": str(data),
            "RADIO_DEMO": "1",
            "RADIO_HTTP_PORT": str(self.port),
            "RADIO_MQTT_EMBEDDED_PORT": str(free_port()),
            "RADIO_PRERENDER_ALERT_TEMPLATES": "false",
            "PYTHONPATH": str(ROOT),
        }
        # The PostgreSQL pass points every test at a migrated copy: this one wants its own.
        self.env.pop("RADIO_DATABASE_URL", None)
        if database_url is not None:
            self.env["RADIO_DATABASE_URL"] = database_url

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "radio.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(params=_database_params())
def empty_radio(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Radio]:
    """`radio` on a fresh data directory whose database (SQLite there, or PostgreSQL) is empty."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("empty_postgres_url"))
    yield Radio(tmp_path / "data", url)


NO_SCHEMA = "the database has no schema yet: run `radio db upgrade` first"


def test_serve_refuses_an_empty_database_and_names_the_command(empty_radio: Radio) -> None:
    done = empty_radio("serve", "--log-level", "WARNING")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert NO_SCHEMA in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    current = empty_radio("db", "current")
    assert current.returncode == 1
    assert NO_SCHEMA in current.stdout


async def test_after_db_upgrade_serve_starts(empty_radio: Radio) -> None:
    done = empty_radio("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schema upgraded from nothing to revision {head_revision()}"
    assert empty_radio("db", "current").stdout.strip() == f"revision {head_revision()} (current)"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "radio.cli", "serve", "--log-level", "WARNING",
        env=empty_radio.env,
        cwd=ROOT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def ready() -> bool:
                assert proc.returncode is None, f"radio serve exited with {proc.returncode}"
                try:
                    r = await http.get(f"http://127.0.0.1:{empty_radio.port}/api/v1/ready")
                except httpx.HTTPError:
                    return False
                return r.status_code == 200

            await wait_for(ready, 60, "radio serve to be ready")
        brokers = broker_children(proc.pid)
        assert len(brokers) == 1, brokers  # the embedded broker, in a process of its own
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    # A service manager's stop of the controller ends its broker too.
    await wait_for(lambda: not alive(brokers[0]), 30, "the broker to end")


def broker_children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids if b"broker_process" in Path(f"/proc/{k}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    """Running (an ended process not yet reaped by its new parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_serve_says_in_one_line_that_the_broker_port_is_taken(empty_radio: Radio) -> None:
    assert empty_radio("db", "upgrade").returncode == 0
    port = int(empty_radio.env["RADIO_MQTT_EMBEDDED_PORT"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = empty_radio("serve", "--log-level", "WARNING")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"127.0.0.1:{port}, the embedded broker's port, is in use" in done.stderr
    assert "RADIO_MQTT_EMBEDDED_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_upgrade_twice_changes_nothing(empty_radio: Radio) -> None:
    assert empty_radio("db", "upgrade").returncode == 0
    again = empty_radio("db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"schema already current (revision {head_revision()})"


def test_an_old_schema_is_refused_until_upgraded(empty_database: str) -> None:
    db = Database(empty_database)
    try:
        previous = ScriptDirectory(str(MIGRATIONS)).get_revision(head_revision()).down_revision
        assert isinstance(previous, str)
        with db.engine.begin() as conn:
            cfg = alembic_config(empty_database)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, previous)
        with pytest.raises(SchemaNotCurrent) as refused:
            db.check_current()
        assert str(refused.value) == (
            f"the database schema is at revision {previous}, this version needs "
            f"{head_revision()}: run `radio db upgrade` first"
        )
        assert db.migrate() == (previous, head_revision())
        assert db.check_current() == head_revision()
    finally:
        db.dispose()


@pytest.mark.postgres
def test_two_upgrades_at_once_on_one_empty_database(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    """Two instances' upgrades started together on one empty PostgreSQL: one creates the schema,
    the other waits for it (an advisory lock) and finds it current; neither fails."""
    radio = Radio(tmp_path / "data", empty_postgres_url)
    args = [sys.executable, "-m", "radio.cli", "db", "upgrade"]
    procs = [
        subprocess.Popen(
            args, env=radio.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    head = head_revision()
    assert sorted(out.decode().strip() for out, _err in outs) == [
        f"schema already current (revision {head})",
        f"schema upgraded from nothing to revision {head}",
    ]
