"""The commune's programme as a week or a month, with clashes marked, and the form to schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.content import today
from api.console.pages import ApiRefused, ConsoleDep
from api.console.repetition import WEEKDAY_CODES, names_of
from api.console.schedules import default_air_time, form_choices
from controller.auth.access import Permission
from schedules import AreaTree

router = APIRouter(prefix="/console", include_in_schema=False)


@dataclass(frozen=True)
class Entry:
    """One playing in the calendar, as the calendar API gives it, with its start parsed."""

    item: dict[str, Any]
    start: datetime
    end: datetime
    clash: bool = False


def _overlap_in_space(a: str, b: str, tree: AreaTree) -> bool:
    return a == b or tree.contains(a, b) or tree.contains(b, a)


def clashing(entries: Sequence[Entry], tree: AreaTree, node_area: Mapping[str, str]) -> set[int]:
    """Indexes of playings that overlap another in time on a shared loudspeaker or area.

    Same-priority overlaps are refused when scheduling, so what shows here is mostly a more
    urgent item cutting a normal one, or one queued behind another: worth seeing before air.
    """
    order = sorted(range(len(entries)), key=lambda i: entries[i].start)
    places = [{node_area.get(t, t) for t in e.item["targets"]} for e in entries]
    out: set[int] = set()
    for pos, i in enumerate(order):
        for j in order[pos + 1 :]:
            if entries[j].start >= entries[i].end:
                break
            if any(_overlap_in_space(a, b, tree) for a in places[i] for b in places[j]):
                out.update((i, j))
    return out


LIST_DAYS = 28


def span(view: str, day: date) -> tuple[date, date]:
    """The days shown: the week (Monday first), the whole weeks covering the month, or the
    list's four weeks from the day."""
    if view == "list":
        return day, day + timedelta(days=LIST_DAYS - 1)
    if view == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        start = first - timedelta(days=first.weekday())
        last = following - timedelta(days=1)
        return start, last + timedelta(days=6 - last.weekday())
    start = day - timedelta(days=day.weekday())
    return start, start + timedelta(days=6)


def step(view: str, day: date, forward: bool) -> date:
    if view == "list":
        return day + timedelta(days=LIST_DAYS if forward else -LIST_DAYS)
    if view == "month":
        first = day.replace(day=1)
        if forward:
            return (first + timedelta(days=32)).replace(day=1)
        return (first - timedelta(days=1)).replace(day=1)
    return day + timedelta(days=7 if forward else -7)


@router.get("/calendar", response_class=HTMLResponse)
async def calendar_page(
    console: ConsoleDep,
    area: str | None = None,
    view: str = "week",
    day: str | None = None,
    announcement: int | None = None,
    done: str = "",
) -> HTMLResponse:
    console.allow("calendar")
    view = view if view in ("month", "list") else "week"
    error = ""
    try:
        shown = date.fromisoformat(day) if day else today()
        first, last = span(view, shown)
        previous, following = step(view, shown, False), step(view, shown, True)
    except (ValueError, OverflowError):
        shown, error = today(), console.t("cal.bad_day")
        first, last = span(view, shown)
        previous, following = step(view, shown, False), step(view, shown, True)
    areas = await console.areas()
    area_id = area or console.home_area(areas)
    items: list[dict[str, Any]] = []
    if area_id is not None:
        try:
            items = await console.get(
                "/api/v1/calendar",
                area_id=area_id,
                **{"from": first.isoformat()},
                to=last.isoformat(),
            )
        except ApiRefused:
            error = console.t("error.area")
    entries = [
        Entry(i, datetime.fromisoformat(i["start"]), datetime.fromisoformat(i["end"]))
        for i in items
    ]
    tree = AreaTree({a.id: a.parent_id for a in areas})
    names = await names_of(console, areas, (t for i in items for t in i["targets"]))
    clashes = clashing(entries, tree, names["node_areas"])
    by_day: dict[date, list[Entry]] = {}
    for n, e in enumerate(entries):
        by_day.setdefault(e.start.date(), []).append(replace(e, clash=n in clashes))
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]

    def places_of(targets: list[str]) -> list[str]:
        # A calendar entry lists areas and loudspeakers together (a group's are its members).
        return [names["areas"].get(t) or names["nodes"].get(t, t) for t in targets]

    can_schedule = console.may(Permission.schedule)
    form = await form_choices(console) if can_schedule else {"weekday_codes": WEEKDAY_CODES}
    return console.render(
        "calendar.html",
        "calendar",
        view=view,
        shown=shown,
        today=today(),
        weeks=[days[k : k + 7] for k in range(0, len(days), 7)],
        by_day=by_day,
        clashes=len(clashes),
        areas=areas,
        area_id=area_id,
        previous=previous,
        following=following,
        error=error,
        can_schedule=can_schedule,
        chosen=announcement,
        done=done,
        places_of=places_of,
        air_time=default_air_time(),
        **form,
    )
