"""`radio node import|list` and `radio firmware …`: the fleet from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

firmware_app = typer.Typer(
    help="The firmware catalogue: images nodes are updated to.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(2)


def node_import(
    file: Annotated[Path, typer.Argument(help="CSV: id,name,area[,lat,lon,hardware,installed_on]")],
) -> None:
    """Register many nodes from a CSV file. Every row is checked first; if any is wrong, all the
    problems are listed with their line numbers and nothing is registered."""
    from controller.core.config import ConfigError
    from controller.fleet.node_import import NodeImportError, add_rows, checked_rows
    from radio.tools import load_settings, open_registry

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{file}: cannot read it as UTF-8 text: {exc}") from None
    registry = open_registry(load_settings())
    try:
        with registry.db.session() as session:
            added = add_rows(registry, session, checked_rows(session, text))
            session.commit()
    except NodeImportError as exc:
        raise _fail(f"{file}: {exc}") from None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    for _node, prov in added:
        registry.write_provisioning(prov)
    registry.write_broker_files()
    where = registry.settings.provisioning_dir
    typer.echo(f"{len(added)} node(s) registered; provisioning files in {where}/")


def node_list(
    area: Annotated[str | None, typer.Option(help="Only this area and the areas below it")] = None,
    include_retired: Annotated[bool, typer.Option("--all", help="Retired nodes too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """The registered nodes: id, area, state, firmware, hardware, install date."""
    from sqlmodel import select

    from controller.core.models import Node
    from radio.tools import load_settings, open_registry

    registry = open_registry(load_settings())
    with registry.db.session() as session:
        nodes = list(session.exec(select(Node).order_by(Node.id)).all())
        if area is not None:
            below = registry.area_tree(session).descendants(area)
            nodes = [n for n in nodes if n.area_id in below]
    if not include_retired:
        nodes = [n for n in nodes if not n.retired]
    for n in nodes:
        if as_json:
            typer.echo(json.dumps(n.model_dump(mode="json", exclude={"mqtt_password_hash"})))
            continue
        state = "retired" if n.retired else n.status
        typer.echo(
            f"{n.id:<24} {n.area_id:<16} {state:<8} {n.firmware or '-':<14} "
            f"{n.hardware or '-':<12} {n.installed_on or '-'}  {n.name}"
        )
    if not as_json:
        typer.echo(f"{len(nodes)} node(s)", err=True)


@firmware_app.command("add")
def firmware_add(
    file: Path,
    version: Annotated[str, typer.Option(help="The version the image reports, e.g. 2.1.0")],
    hardware: Annotated[str, typer.Option(help="Only for nodes of this hardware")] = "",
    notes: Annotated[str, typer.Option(help="What changed")] = "",
    draft: Annotated[bool, typer.Option(help="Not released: for trials on a few nodes")] = False,
) -> None:
    """Store an image in the catalogue (by its sha256) under a new version."""
    from controller.commands.firmware import FirmwareCatalogue
    from controller.core.db import Database
    from controller.core.errors import DomainError
    from radio.tools import load_settings

    settings = load_settings()
    db = Database(settings.db_url)
    db.migrate()
    try:
        image = FirmwareCatalogue(settings, db).add_file(
            file, version, hardware=hardware, notes=notes, released=not draft, author="cli"
        )
    except DomainError as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    state = "draft" if draft else "released"
    typer.echo(f"firmware {image.version} ({image.size} bytes, sha256 {image.sha256}) {state}")


@firmware_app.command("list")
def firmware_list() -> None:
    """The catalogue, newest first; * marks the newest release."""
    from controller.commands.firmware import FirmwareCatalogue, latest_version
    from controller.core.db import Database
    from radio.tools import load_settings

    settings = load_settings()
    db = Database(settings.db_url)
    db.migrate()
    with db.session() as session:
        latest = latest_version(session)
        images = FirmwareCatalogue(settings, db).images(session)
    db.dispose()
    for i in images:
        mark = "*" if i.version == latest else " "
        state = "released" if i.released else "draft"
        typer.echo(
            f"{mark} {i.version:<16} {state:<9} {i.size:>10} B  {i.sha256[:16]}  "
            f"{i.hardware or 'any hardware'}  {i.notes}"
        )


@firmware_app.command("release")
def firmware_release(version: str) -> None:
    """Release a draft: it becomes the version nodes should run if it is the newest."""
    from controller.commands.firmware import FirmwareCatalogue
    from controller.core.db import Database
    from controller.core.errors import DomainError
    from radio.tools import load_settings

    settings = load_settings()
    db = Database(settings.db_url)
    db.migrate()
    try:
        FirmwareCatalogue(settings, db).release(version)
    except DomainError as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    typer.echo(f"firmware {version} released")
