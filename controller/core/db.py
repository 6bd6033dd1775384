"""Database engine, sessions and migrations (Alembic): applied by `radio db upgrade` (and the
administration commands), only checked by `radio serve`, so instances never race to migrate."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, bindparam, event, insert, select, text, update
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
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


# What the database says of a row it cannot store (not of itself being unavailable).
UNSTORABLE = (DataError, IntegrityError, OverflowError)


def database_failed(exc: BaseException) -> bool:
    """The database (a deadlock it broke, its connection, its pool, a lock it held too long),
    not what was written: what failed goes again, whole, once it is back."""
    if is_transient(exc):
        return True
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


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


def in_chunks(items: Sequence[T], size: int = 500) -> list[list[T]]:
    """`items` in lists of at most `size`: an IN (...) list that every database takes."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def rows_by_pair(
    session: Session, table: Table, first: str, second: str, pairs: Iterable[tuple[Any, Any]]
) -> dict[tuple[Any, Any], dict[str, Any]]:
    """The rows whose (`first`, `second`) columns are one of `pairs`, as dicts keyed by that
    pair: a statement per 500 pairs (each column among the chunk's values; the cross matches
    that brings are left out)."""
    wanted = set(pairs)
    found: dict[tuple[Any, Any], dict[str, Any]] = {}
    conn = session.connection()
    for chunk in in_chunks(sorted(wanted)):
        query = select(table).where(
            table.c[first].in_({a for a, _ in chunk}), table.c[second].in_({b for _, b in chunk})
        )
        for row in conn.execute(query):
            values = dict(row._mapping)
            key = (values[first], values[second])
            if key in wanted:
                found[key] = values
    return found


def _bound(conn: Connection, table: Table, names: list[str]) -> list[Any]:
    """Each column's bind processor (or None): what SQLAlchemy would do to a value on its way
    to the database (UTC for times), for the statements below that bypass its compiler."""
    return [table.c[name].type.bind_processor(conn.dialect) for name in names]


def insert_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert the rows (each with the same keys). PostgreSQL: one COPY, its fastest way in;
    SQLite, in the process: an executemany of one prepared INSERT."""
    if not rows:
        return
    table: Table = model.__table__
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    names = list(rows[0])
    procs = _bound(conn, table, names)
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    raw: Any = conn.connection.dbapi_connection  # psycopg's own connection, in this transaction
    statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [row[n] if p is None else p(row[n]) for n, p in zip(names, procs, strict=True)]
                )
    except Exception as exc:
        # As SQLAlchemy raises every other database error (a deadlock is an OperationalError
        # that is_transient() knows), not psycopg's own.
        dbapi = type(conn.dialect).import_dbapi()
        if isinstance(exc, dbapi.Error):
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        raise


def lock_order(session: Session, column: Any) -> Any:
    """`column` ordered as Python's sorted() orders its text (code points): the order every
    writer takes row locks in, chunk after chunk. PostgreSQL's own collation may differ (en_US
    ignores hyphens at first), which would let two writers lock in opposite orders."""
    if session.connection().dialect.name == "postgresql":
        return column.collate("C")
    return column  # SQLite compares text by its bytes: the same order


def update_rows(session: Session, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """Set each row's columns where `key` (a column) equals the row's `key`: every row has the
    same keys. PostgreSQL: one UPDATE … FROM unnest(arrays), the same statement whatever the
    number of rows (one round trip, one plan); SQLite, in the process: an executemany of one
    prepared UPDATE."""
    if not rows:
        return
    names = [name for name in rows[0] if name != key]
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({name: bindparam(f"b_{name}") for name in names}),
            [{f"b_{k}": v for k, v in row.items()} for row in rows],
        )
        return
    order = [key, *names]
    quote = conn.dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"CAST(:a{i} AS {table.c[name].type.compile(dialect=conn.dialect)}[])"
        for i, name in enumerate(order)
    )
    sets = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in names)
    statement = (
        f"UPDATE {quote(table.name)} AS t SET {sets} FROM unnest({arrays}) "
        f"AS v({', '.join(quote(name) for name in order)}) WHERE t.{quote(key)} = v.{quote(key)}"
    )
    procs = _bound(conn, table, order)
    params = {
        f"a{i}": [row[name] if p is None else p(row[name]) for row in rows]
        for i, (name, p) in enumerate(zip(order, procs, strict=True))
    }
    conn.execute(text(statement), params)
