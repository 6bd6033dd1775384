"""The playlist builder and the named groups of loudspeakers, for officers and commune staff."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.pages import ConsoleDep
from api.console.repetition import names_of
from controller.auth.access import Permission
from controller.programme.playlists import WITH_ENTRIES

router = APIRouter(prefix="/console", include_in_schema=False)


def library(announcements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a playlist may hold: texts and recordings with audio (not playlists, not live)."""
    return [a for a in announcements if a["source"] not in WITH_ENTRIES and a["duration_s"] > 0]


def chime_seconds(playlists: list[dict[str, Any]]) -> float | None:
    """The chime's length, as a saved playlist reports it; unknown until one holds a chime."""
    for p in playlists:
        for item in p["items"]:
            if item["kind"] == "chime":
                return float(item["duration_s"])
    return None


def with_hosts(playlists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each relayed station named by its server, as the list shows it."""
    for p in playlists:
        for item in p["items"]:
            if item["kind"] == "stream":
                item["host"] = urlparse(item["url"] or "").hostname or item["url"]
    return playlists


@router.get("/playlists", response_class=HTMLResponse)
async def playlists_page(console: ConsoleDep, saved: int | None = None) -> HTMLResponse:
    console.allow("playlists")
    rows = with_hosts(await console.get("/api/v1/playlists"))
    can_write = console.may(Permission.write_content)
    announcements = await console.get("/api/v1/announcements")
    content = library(announcements) if can_write else []
    return console.render(
        "playlists.html",
        "playlists",
        playlists=rows[:100],
        library=content[:300],
        chime_s=chime_seconds(rows),
        # A stream's fallback recording, named in the list.
        fallbacks={a["id"]: a["title"] for a in announcements},
        can_write=can_write,
        can_schedule=console.may(Permission.schedule),
        saved=next((p for p in rows if p["id"] == saved), None),
    )


@router.get("/groups", response_class=HTMLResponse)
async def groups_page(console: ConsoleDep) -> HTMLResponse:
    console.allow("groups")
    areas = await console.areas()
    names = {a.id: a.name for a in areas}
    groups = await console.get("/api/v1/groups")
    # The members' names only (a province has thousands of nodes): the form finds the others
    # as the person types.
    members = {n for g in groups for n in g["nodes"]}
    return console.render(
        "groups.html",
        "groups",
        groups=groups,
        areas=areas,
        area_id=console.home_area(areas),
        names=names,
        node_names=(await names_of(console, areas, members))["nodes"],
        can_edit=console.may(Permission.schedule),
    )
