"""Database engine, sessions and migrations (Alembic): applied by `radio db upgrade` (and the
administration commands), only checked by `radio serve`, so instances never race to migrate."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event
from sqlmodel import Session, create_engine

from controller.core.private_files import private_file

MIGRATIONS = Path(__file__).parents[1] / "migrations"


def make_engine(url: str, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            # Created private before SQLite opens it; its -wal and -shm files take its mode.
            private_file(Path(path))
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while ingestion writes; foreign keys are off by default.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# The PostgreSQL advisory lock held while migrating (leadership holds 7231002): a second
# `radio db upgrade` waits, then finds the schema current.
MIGRATION_LOCK_KEY = 7231003
UPGRADE_COMMAND = "radio db upgrade"


class SchemaNotCurrent(Exception):
    """The database's schema is not the one this version of the software was written for."""

    def __init__(self, current: str | None, head: str) -> None:
        self.current, self.head = current, head
        if current is None:
            what = "the database has no schema yet"
        elif current in known_revisions():
            what = f"the database schema is at revision {current}, this version needs {head}"
        else:
            what = (
                f"the database schema is at revision {current}, which this version does not "
                f"know (written by a newer release?); it needs {head}"
            )
        super().__init__(f"{what}: run `{UPGRADE_COMMAND}` first")


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "no migrations"
    return head


@functools.cache
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None for a database without the schema."""
    return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns the revisions before and after. Safe to
    run again (nothing to do) and at once from several processes on PostgreSQL (one waits)."""
    head = head_revision()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        before = current_revision(conn)
        if before == head:
            return before, head
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head


def check_current(engine: Engine) -> str:
    """The schema's revision if it is the newest; otherwise SchemaNotCurrent, saying what to run."""
    head = head_revision()
    with engine.connect() as conn:
        current = current_revision(conn)
    if current != head:
        raise SchemaNotCurrent(current, head)
    return current


# PostgreSQL's "deadlock detected" and "could not serialize": the transaction was rolled back
# whole and may simply run again.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(exc: BaseException) -> bool:
    """True when a database error means "run the transaction again", not "something is wrong"."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in TRANSIENT_SQLSTATES


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    def migrate(self) -> tuple[str | None, str]:
        return migrate(self.engine)

    def check_current(self) -> str:
        return check_current(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


T = TypeVar("T")


def in_chunks(values: Sequence[T], size: int = 500) -> list[list[T]]:
    """`values` in lists of at most `size`: an IN (...) list that every database takes."""
    return [list(values[start : start + size]) for start in range(0, len(values), size)]
