"""The schema from nothing: every migration applies in order on an empty database, the result is
what the models say (autogenerate finds no difference), and running them again changes nothing.
Every other test starts from a copy of a database migrated once (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import controller.core.models  # noqa: F401  (the tables, registered on SQLModel.metadata)
from controller.core.db import MIGRATIONS, Database, alembic_config
from tests.conftest import _database_params


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
