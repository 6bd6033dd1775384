"""Officers' and commune staff's pages: overview, announcements (the recent list live), the
reading dictionary, drafts to approve."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console.devices import STREAM_S
from api.console.pages import LOCAL, ApiRefused, Console, ConsoleDep, duration, local
from api.console.repetition import describe, names_of, target_names
from controller.auth.access import Permission
from controller.health.fleet_view import STATES

router = APIRouter(prefix="/console", include_in_schema=False)
RECENT = 50
# Writing an announcement announces nothing to the rest of the controller: the list is read
# again this often while a page shows it.
RECENT_RECHECK_S = 3.0


def today() -> date:
    return datetime.now(LOCAL).date()


@router.get("/", response_class=HTMLResponse)
async def overview(console: ConsoleDep) -> HTMLResponse:
    console.allow("home")
    fleet = (await console.get("/api/v1/nodes", limit=1))["counts"]
    counts = {s: fleet[s] for s in STATES if fleet[s]}
    active = await console.get("/api/v1/alerts", state="active")
    drafts = []
    if console.can("approvals"):
        drafts = await console.get("/api/v1/schedules", status="pending")
    can_alert = console.can("alerts") and console.may(Permission.alert)
    # Agencies' warnings waiting for one tap come first on the page, the most urgent first.
    warnings = await console.get("/api/v1/cap/warnings") if can_alert else []
    names = {a.id: a.name for a in await console.areas()} if warnings else {}
    return console.render(
        "home.html",
        "home",
        node_counts=counts,
        nodes=fleet["nodes"],
        alerts=active,
        drafts=drafts,
        can_alert=can_alert,
        warnings=warnings,
        names=names,
        can_audit=console.can("audit") and console.may(Permission.read_audit),
    )


@router.get("/announcements", response_class=HTMLResponse)
async def announcements(console: ConsoleDep) -> HTMLResponse:
    console.allow("announcements")
    rows = await console.get("/api/v1/announcements")
    return console.render(
        "announcements.html",
        "announcements",
        announcements=rows[:RECENT],
        upload_max_mb=console.service.settings.upload_max_mb,
    )


def recent_rows(console: Console, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recent announcements as the list shows them (Viet Nam time, m:ss)."""
    return [
        {
            "id": a["id"],
            "title": a["title"],
            "recording": a["source"] == "upload",
            "created": local(a["created_at"]),
            "length": duration(a["duration_s"] * 1000),
            "media": a["media_sha256"],
        }
        for a in rows[:RECENT]
    ]


@router.get("/announcements/events")
async def announcement_events(console: ConsoleDep, request: Request) -> StreamingResponse:
    """Server-sent events: the recent announcements again whenever the list changed (one
    written here or by a colleague), read every few seconds."""
    console.allow("announcements")

    async def stream() -> AsyncIterator[str]:
        last: list[dict[str, Any]] | None = None
        ends = asyncio.get_running_loop().time() + STREAM_S
        yield "retry: 1000\n\n"
        while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
            try:
                now = recent_rows(console, await console.get("/api/v1/announcements"))
            except ApiRefused:
                return
            if now != last:
                last = now
                yield f"event: recent\ndata: {json.dumps(now)}\n\n"
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(RECENT_RECHECK_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
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
    names = await names_of(
        console, areas, (n for d in drafts for n in d["targets"].get("nodes", []))
    )
    content = {a["id"]: a for a in await console.get("/api/v1/announcements")}
    # Drafts that are bulletins from an upper level say so (source, category, validity).
    from_above = {
        p["schedule_id"]: b
        for b in await console.get("/api/v1/bulletins")
        for p in b["schedules"]
        if p.get("schedule_id") is not None
    }
    for d in drafts:
        d["timing"] = describe(console.t, d["starts_at"], d["rrule"], d["ends_on"], d["exdates"])
        d["places"] = target_names(d["targets"], names["areas"], names["nodes"], names["groups"])
    return console.render(
        "approvals.html", "approvals", drafts=drafts, content=content, from_above=from_above
    )
