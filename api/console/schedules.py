"""One schedule, opened from the calendar: what, when, where, and changing, skipping, cancelling."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.content import today
from api.console.pages import LOCAL, ApiRefused, Console, ConsoleDep, local
from api.console.repetition import WEEKDAY_CODES, day_label, describe, names_of, target_names
from controller.auth.access import Permission
from controller.programme.playlists import LIVE, PLAYLIST
from schedules.rules import parse_parts

router = APIRouter(prefix="/console", include_in_schema=False)
# How many of its coming broadcasts the page lists, each with a button to skip its day.
COMING = 8
COMING_DAYS = 61


def default_air_time() -> str:
    """The next whole hour in Viet Nam, whatever the browser's clock says."""
    return (datetime.now(LOCAL) + timedelta(hours=1)).strftime("%H:00")


async def form_choices(console: Console) -> dict[str, Any]:
    """What the scheduling form offers: content to play (a live broadcast's content is its own
    stream, gone once it ended: not to schedule) and named groups."""
    choices = [
        a
        for a in await console.get("/api/v1/announcements")
        if a["duration_s"] > 0 and a["source"] != LIVE
    ]
    return {
        "announcements": [a for a in choices if a["source"] != PLAYLIST][:100],
        "playlists": [a for a in choices if a["source"] == PLAYLIST][:100],
        "groups": await console.get("/api/v1/groups"),
        "weekday_codes": WEEKDAY_CODES,
    }


def weekdays_of(rrule: str | None, start: datetime) -> list[str]:
    if not rrule:
        return [WEEKDAY_CODES[start.weekday()]]
    byday = parse_parts(rrule).get("BYDAY")
    return byday.split(",") if byday else [WEEKDAY_CODES[start.weekday()]]


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse)
async def schedule_page(
    console: ConsoleDep, schedule_id: int, day: str = "", done: str = ""
) -> HTMLResponse:
    console.allow("calendar")
    try:
        s = await console.get(f"/api/v1/schedules/{schedule_id}")
    except ApiRefused:
        return console.render("missing.html", "calendar", 404)
    areas = await console.areas()
    names = await names_of(console, areas, s["targets"].get("nodes", []))
    try:
        content = await console.get(f"/api/v1/announcements/{s['announcement_id']}")
    except ApiRefused:
        content = None
    start = datetime.fromisoformat(local(s["starts_at"], "%Y-%m-%dT%H:%M"))
    area_id = console.home_area(areas)
    coming: list[dict[str, Any]] = []
    if area_id is not None and s["status"] in ("scheduled", "pending"):
        first = today()
        entries = await console.get(
            "/api/v1/calendar",
            area_id=area_id,
            **{"from": first.isoformat()},
            to=(first + timedelta(days=COMING_DAYS)).isoformat(),
        )
        now = datetime.now(LOCAL)
        coming = [
            e
            for e in entries
            if e["schedule_id"] == schedule_id and datetime.fromisoformat(e["start"]) > now
        ][:COMING]
    try:
        chosen_day = date.fromisoformat(day) if day else None
    except ValueError:
        chosen_day = None
    may_change = console.may(Permission.schedule) and s["status"] in ("scheduled", "pending")
    ctx: dict[str, Any] = {}
    if may_change:
        ctx = await form_choices(console)
    return console.render(
        "schedule.html",
        "calendar",
        s=s,
        content=content,
        title=s["title"] or (content["title"] if content else f"#{schedule_id}"),
        timing=describe(console.t, s["starts_at"], s["rrule"], s["ends_on"], s["exdates"]),
        places=target_names(s["targets"], names["areas"], names["nodes"], names["groups"]),
        start=start,
        weekdays=weekdays_of(s["rrule"], start),
        frequency=(parse_parts(s["rrule"]).freq if s["rrule"] else ""),
        coming=[datetime.fromisoformat(e["start"]) for e in coming],
        chosen_day=chosen_day,
        may_change=may_change,
        done=done,
        skipped_label=day_label,
        areas=areas,
        area_id=area_id,
        **ctx,
    )
