"""Officers' and commune staff's pages: overview, announcements, drafts, playback log."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.pages import LOCAL, ApiRefused, ConsoleDep
from api.console.repetition import describe, names_of, target_names
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
    areas = await console.areas()
    names = await names_of(console, areas)
    content = {a["id"]: a for a in await console.get("/api/v1/announcements")}
    for d in drafts:
        d["timing"] = describe(console.t, d["starts_at"], d["rrule"], d["ends_on"], d["exdates"])
        d["places"] = target_names(d["targets"], names["areas"], names["nodes"], names["groups"])
    return console.render("approvals.html", "approvals", drafts=drafts, content=content)


@router.get("/playback", response_class=HTMLResponse)
async def playback(
    console: ConsoleDep, area: str | None = None, day: str | None = None
) -> HTMLResponse:
    console.allow("playback")
    areas = await console.areas()
    area_id = area or console.home_area(areas)
    error, rows, chosen = "", [], today()
    try:
        chosen = date.fromisoformat(day) if day else today()
    except ValueError:
        error = console.t("playback.bad_day")
    if area_id is not None and not error:
        try:
            rows = await console.get(
                "/api/v1/playback-log", area_id=area_id, date=chosen.isoformat()
            )
        except ApiRefused:
            error = console.t("error.area")
    return console.render(
        "playback.html",
        "playback",
        areas=areas,
        area_id=area_id,
        day=chosen,
        rows=rows,
        error=error,
        states=Counter(r["state"] for r in rows),
    )
