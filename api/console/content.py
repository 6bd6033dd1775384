"""Officers' and commune staff's pages: overview, announcements, drafts, playback log."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.pages import LOCAL, ApiRefused, ConsoleDep

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
