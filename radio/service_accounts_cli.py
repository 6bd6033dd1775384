"""`radio service-accounts`: keys for other systems (a provincial platform pushing bulletins)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlmodel import Session

service_accounts_app = typer.Typer(
    help="Service accounts: API keys for other systems, apart from people's logins.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(2)


def _session() -> AbstractContextManager[Session]:
    from radio.tools import load_settings, open_registry

    return open_registry(load_settings()).db.session()


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    from controller.core.errors import Invalid
    from controller.core.time import as_utc

    try:
        return as_utc(datetime.fromisoformat(text))
    except (ValueError, Invalid):
        raise _fail(f"--expires {text!r}: give a date (2027-06-30) or ISO time") from None


@service_accounts_app.command("create")
def create(
    name: str,
    area: Annotated[list[str], typer.Option(help="An area it may act for (repeatable)")],
    scope: Annotated[list[str], typer.Option(help="e.g. bulletins:push (repeatable)")],
    expires: Annotated[str | None, typer.Option(help="Last moment, local time (ISO)")] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an account and print its key, once: only its digest is kept."""
    from controller.auth.audit import record
    from controller.auth.service_accounts import ServiceAccountError, create_account

    now = datetime.now(UTC)
    with _session() as session:
        try:
            account, key = create_account(
                session, name, area, scope, _when(expires), "cli", description, now=now
            )
        except ServiceAccountError as exc:
            raise _fail(str(exc)) from None
        record(session, "cli", "service_account.create", name, {"areas": area, "scopes": scope})
    typer.echo(f"service account {account.name} created; its key (shown once, keep it now):")
    typer.echo(key)


@service_accounts_app.command("list")
def list_accounts() -> None:
    """Accounts, their areas and scopes, expiry, revocation and last use."""
    from sqlmodel import col, select

    from controller.core.models import ServiceAccount

    with _session() as session:
        rows = session.exec(select(ServiceAccount).order_by(col(ServiceAccount.name))).all()
    for a in rows:
        state = "revoked" if a.revoked_at else "active"
        typer.echo(
            f"{a.name}\t{state}\tareas={','.join(json.loads(a.areas))}"
            f"\tscopes={','.join(json.loads(a.scopes))}"
            f"\texpires={a.expires_at.isoformat() if a.expires_at else 'never'}"
            f"\tlast_used={a.last_used_at.isoformat() if a.last_used_at else 'never'}"
            f" {a.last_used_ip}\tuses={a.uses}"
        )


@service_accounts_app.command("revoke")
def revoke_account(name: str) -> None:
    """Revoke the key at once; the account stays listed with who revoked it and when."""
    from controller.auth.audit import record
    from controller.auth.service_accounts import ServiceAccountError, revoke

    with _session() as session:
        try:
            revoke(session, name, "cli", datetime.now(UTC))
        except ServiceAccountError as exc:
            raise _fail(str(exc)) from None
        record(session, "cli", "service_account.revoke", name)
    typer.echo(f"service account {name} revoked")
