"""`radio keys`: the controller's signing keys, their rotation and retirement."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.auth.key_rotation import local_time
from controller.auth.key_rotation import retire as do_retire
from controller.auth.key_rotation import rotate as do_rotate
from controller.auth.keyring import ROOT_KEY_FILE, Keyring, KeyringError
from controller.core.config import Settings
from protocol import load_private_key

keys_app = typer.Typer(
    help="Signing keys of the controller: status, rotation, retirement.", no_args_is_help=True
)

RootKeyOption = Annotated[
    Path | None,
    typer.Option(help="The root key file (default: secrets/root-ed25519.pem, if still there)"),
]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(2)


def _open() -> tuple[Settings, Keyring]:
    from radio.tools import load_settings

    settings = load_settings()
    try:
        return settings, Keyring.open(settings.secrets_dir)
    except KeyringError as exc:
        raise _fail(str(exc)) from None


def _root(ring: Keyring, path: Path | None) -> Ed25519PrivateKey:
    path = path or ring.dir / ROOT_KEY_FILE
    if not path.exists():
        raise _fail(f"{path}: no root key there; give the offline root key with --root-key PATH")
    try:
        return load_private_key(path)
    except (ValueError, OSError) as exc:
        raise _fail(f"{path}: not an Ed25519 private key in PEM ({exc})") from None


@keys_app.command("status")
def status() -> None:
    """Show the root keys, every signing key with its window, and how many nodes hold the set."""
    settings, ring = _open()
    now = _now_ms()
    typer.echo(f"root keys: {', '.join(ring.root_kids)}")
    if (ring.dir / ROOT_KEY_FILE).exists():
        typer.secho(
            f"warning: the root key is still on this machine ({ring.dir / ROOT_KEY_FILE}); "
            "move it offline",
            fg="yellow",
        )
    try:
        current = ring.signing_entry(now).kid
    except KeyringError as exc:
        typer.secho(str(exc), fg="red")
        current = ""
    typer.echo(f"key set {ring.serial}" + (" (never rotated)" if ring.serial == 0 else ""))
    for e in ring.entries():
        if e.kid == current:
            state = "signing now"
        elif e.not_before > now:
            state = f"signs from {local_time(e.not_before)}"
        elif e.not_after is not None and e.not_after <= now:
            state = "retired"
        else:
            state = "trusted"
        if e.not_after is not None and e.not_after > now:
            state += f", trusted until {local_time(e.not_after)}"
        here = "" if ring.key_file(e.kid).exists() else " (private key not here)"
        typer.echo(f"  {e.kid}  {state}{here}")
    if ring.serial:
        holding, total = nodes_holding(settings, ring.serial)
        typer.echo(f"nodes holding key set {ring.serial}: {holding} of {total}")


@keys_app.command("rotate")
def rotate(
    root_key: RootKeyOption = None,
    switch_in: Annotated[
        float, typer.Option(min=0, help="Seconds until the controller signs with the new key")
    ] = 600,
    retire_after: Annotated[
        float, typer.Option(min=1, help="Seconds the old key stays trusted after the switch")
    ] = 86400,
    compromised: Annotated[
        bool, typer.Option(help="The current key is stolen: switch now and trust no older key")
    ] = False,
) -> None:
    """Announce a new signing key to every node (signed with the root key)."""
    _, ring = _open()
    root = _root(ring, root_key)
    try:
        entry = do_rotate(
            ring, root, _now_ms(), int(switch_in * 1000), int(retire_after * 1000), compromised
        )
    except KeyringError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"key set {ring.serial} announced: key {entry.kid} signs from "
        f"{local_time(entry.not_before)}"
    )
    for e in ring.entries():
        if e.kid != entry.kid and e.not_after is not None:
            typer.echo(f"key {e.kid} stays trusted until {local_time(e.not_after)}")
    typer.echo("the running controller publishes it within seconds (radio keys status)")


@keys_app.command("retire")
def retire(root_key: RootKeyOption = None) -> None:
    """Stop trusting, now, every key but the one signing now."""
    _, ring = _open()
    root = _root(ring, root_key)
    try:
        gone = do_retire(ring, root, _now_ms())
    except KeyringError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"key set {ring.serial} announced: retired {', '.join(gone)}")


def nodes_holding(settings: Settings, serial: int) -> tuple[int, int]:
    """(active nodes that reported adopting key set `serial`, active nodes)."""
    from sqlmodel import col, func, select

    from controller.core.models import Node, NodeEventRecord
    from radio.tools import open_registry

    db = open_registry(settings).db
    with db.session() as session:
        active = select(Node.id).where(Node.retired == False)  # noqa: E712
        total = session.exec(select(func.count()).select_from(active.subquery())).one()
        holding = session.exec(
            select(func.count(func.distinct(NodeEventRecord.node_id))).where(
                NodeEventRecord.type == "keys_applied",
                col(NodeEventRecord.detail).startswith(f"serial {serial}:"),
                col(NodeEventRecord.node_id).in_(active),
            )
        ).one()
    db.dispose()
    return int(holding), int(total)
