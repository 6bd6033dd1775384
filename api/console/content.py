"""Officers' and commune staff's pages: overview, announcements, drafts, playback log."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.pages import LOCAL, ApiRefused, ConsoleDep, day_from_text
from controller.auth.access import Permission

router = APIRouter(prefix="/console", include_in_schema=False)


def today() -> date:
    return datetime.now(LOCAL).date()


@router.get("/", response_class=HTMLResponse)
async def overview(console: ConsoleDep) -> HTMLResponse:
    console.allow("home")
    nodes = await console.get("/api/v1/nodes")
    counts = Counter(n.get("state") or n["status"] for n in nodes)
    active = await console.get("/api/v1/alerts", state="active")
    drafts = []
    if console.can("approvals"):
        drafts = await console.get("/api/v1/schedules", status="pending")
    return console.render(
        "home.html",
        "home",
        node_counts=dict(counts),
        nodes=len(nodes),
        alerts=active,
        drafts=drafts,
        can_alert=console.can("alerts") and console.may(Permission.alert),
        can_audit=console.can("audit") and console.may(Permission.read_audit),
    )


@router.get("/announcements", response_class=HTMLResponse)
async def announcements(console: ConsoleDep) -> HTMLResponse:
    console.allow("announcements")
    rows = await console.get("/api/v1/announcements")
    return console.render(
        "announcements.html",
        "announcements",
        announcements=rows[:50],
        upload_max_mb=console.service.settings.upload_max_mb,
    )


@router.get("/dictionary", response_class=HTMLResponse)
async def dictionary(console: ConsoleDep, area: str | None = None) -> HTMLResponse:
    """The reading dictionary: the list for every area (administrators change it) and each
    area's local list (its officers and commune staff change it), with a reading preview."""
    console.allow("dictionary")
    areas = await console.areas()
    names = {a.id: a.name for a in areas}
    admin = console.may(Permission.manage_dictionary)
    if area == "common":
        entries = await console.get("/api/v1/speech/abbreviations", common="true")
    elif area:
        entries = await console.get("/api/v1/speech/abbreviations", area_id=area)
    else:
        entries = await console.get("/api/v1/speech/abbreviations")
    may_write = console.may(Permission.write_content)
    for entry in entries:
        entry["editable"] = admin or (
            entry["area_id"] is not None and entry["area_id"] in names and may_write
        )
    return console.render(
        "dictionary.html",
        "dictionary",
        entries=entries,
        areas=areas,
        names=names,
        admin=admin,
        chosen=area or "",
        own_area="" if admin else (console.home_area(areas) or ""),
    )


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(console: ConsoleDep) -> HTMLResponse:
    console.allow("approvals")
    drafts = await console.get("/api/v1/schedules", status="pending")
    names = {a.id: a.name for a in await console.areas()}
    titles = {a["id"]: a["title"] for a in await console.get("/api/v1/announcements")}
    return console.render("approvals.html", "approvals", drafts=drafts, names=names, titles=titles)


@router.get("/playback", response_class=HTMLResponse)
async def playback(
    console: ConsoleDep, area: str | None = None, day: str | None = None
) -> HTMLResponse:
    console.allow("playback")
    areas = await console.areas()
    area_id = area or console.home_area(areas)
    error, rows, chosen = "", [], today()
    if day:
        picked = day_from_text(day)
        if picked is None:
            error = console.t("playback.bad_day")
        else:
            chosen = picked
    if area_id is not None and not error:
        try:
            rows = await console.get(
                "/api/v1/playback-log", area_id=area_id, date=chosen.isoformat()
            )
        except ApiRefused:
            error = console.t("error.area")
    # Loudspeakers by name and village, not by code.
    names = {a.id: a.name for a in areas}
    nodes = {
        n["id"]: (n["name"], names.get(n["area_id"], ""))
        for n in (await console.get("/api/v1/nodes") if rows else [])
    }
    return console.render(
        "playback.html",
        "playback",
        areas=areas,
        area_id=area_id,
        day=chosen,
        rows=rows,
        nodes=nodes,
        error=error,
        states=Counter(r["state"] for r in rows),
    )
