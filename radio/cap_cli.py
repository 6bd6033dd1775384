"""`radio cap check`: what CAP documents would raise here, read without writing anything.

The check reads the areas and loudspeakers from the database when there is one, read-only: no
migration, no signing keyring, no demo secret, no data directory; a missing database is an empty
one (every document then reaches no area, and says what it would raise)."""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa
import typer

from controller.alerts.cap_map import NodeLocation
from controller.core.config import Settings
from radio.tools import load_settings

AreaTree = dict[str, str | None]


def read_places(settings: Settings) -> tuple[AreaTree, list[NodeLocation], str]:
    """(areas, nodes, where they came from), read without writing anything."""
    if settings.database_url:
        engine = sa.create_engine(settings.db_url)
        where = engine.url.render_as_string(hide_password=True)
    else:
        path = (settings.data_dir / "radio.db").resolve()
        if not path.is_file():
            return {}, [], f"no database at {path}"
        # mode=ro: SQLite opens the file read-only and creates no journal beside it.
        engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
        where = str(path)
    try:
        with engine.connect() as conn:
            areas: AreaTree = {
                row.id: row.parent_id
                for row in conn.execute(sa.text("SELECT id, parent_id FROM area"))
            }
            nodes: list[NodeLocation] = [
                (row.id, row.area_id, row.lat, row.lon)
                for row in conn.execute(
                    sa.text("SELECT id, area_id, lat, lon FROM node WHERE retired = :no"),
                    {"no": False},
                )
            ]
    except sa.exc.SQLAlchemyError as exc:
        return {}, [], f"the database at {where} cannot be read ({type(exc).__name__})"
    finally:
        engine.dispose()
    return areas, nodes, where


def check(files: list[Path]) -> int:
    from controller.alerts.cap_export import check_file, format_result

    # A secret of its own, so that demo mode does not write one into the data directory: the
    # check signs nothing.
    settings = load_settings(secret_key=secrets.token_urlsafe(32))
    areas, nodes, where = read_places(settings)
    typer.echo(f"khu vực và loa (areas and loudspeakers): {len(areas)}, {len(nodes)} — {where}")
    refused = 0
    for path in files:
        result = check_file(path, areas=areas, nodes=nodes)
        typer.echo(format_result(result))
        refused += not result.ok
    return 1 if refused else 0
