"""`radio db`: the database schema, brought up to date as a step of its own before `radio serve`
(which only checks it), so that instances starting together never race to migrate."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from controller.core.db import Database, SchemaNotCurrent, current_revision, head_revision
from controller.core.private_files import secure_data_dir
from radio.tools import load_settings

db_app = typer.Typer(
    help="The database schema: upgrade it, show where it is.", no_args_is_help=True
)


def _open() -> Database:
    settings = load_settings()
    secure_data_dir(settings.data_dir)
    return Database(settings.db_url)


def _unreachable(db: Database, exc: SQLAlchemyError) -> typer.Exit:
    typer.secho(unreachable(db, exc), fg="red", err=True)
    return typer.Exit(1)


def unreachable(db: Database, exc: SQLAlchemyError) -> str:
    """What went wrong with the database, in one line (the password left out)."""
    where = db.engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"the database {where} could not be used: {reason}"


@db_app.command("upgrade")
def upgrade() -> None:
    """Bring the schema to the newest revision (creates it in an empty database). Nothing to do
    when it is current; on PostgreSQL a second run at the same time waits for the first."""
    db = _open()
    try:
        before, after = db.migrate()
    except SQLAlchemyError as exc:
        raise _unreachable(db, exc) from None
    finally:
        db.dispose()
    if before == after:
        typer.echo(f"schema already current (revision {after})")
    else:
        typer.echo(f"schema upgraded from {before or 'nothing'} to revision {after}")


@db_app.command("current")
def current() -> None:
    """Show the schema's revision and the newest; exit status 1 when an upgrade is due."""
    db = _open()
    try:
        with db.engine.connect() as conn:
            revision = current_revision(conn)
    except SQLAlchemyError as exc:
        raise _unreachable(db, exc) from None
    finally:
        db.dispose()
    head = head_revision()
    if revision == head:
        typer.echo(f"revision {revision} (current)")
        return
    typer.echo(str(SchemaNotCurrent(revision, head)))
    raise typer.Exit(1)
