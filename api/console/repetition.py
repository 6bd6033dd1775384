"""A schedule as people read it: its timing in words ("Every week on Monday, Thursday at
07:30"), its places by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from api.console.pages import AreaChoice, Console, local
from schedules import InvalidRecurrence
from schedules.rules import parse_parts

# RRULE weekday codes in the order of the week, Monday first (as `day.0` ... `day.6`).
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
NAMES_AT_ONCE = 200  # nodes named per request of the node list


def _clock(hours: str | None, minutes: str | None, start: datetime) -> str:
    """The air times: from BYHOUR and BYMINUTE when the rule names them, else the start's."""
    hs = [int(h) for h in hours.split(",")] if hours else [start.hour]
    ms = [int(m) for m in minutes.split(",")] if minutes else [start.minute]
    return ", ".join(f"{h:02d}:{m:02d}" for h in sorted(hs) for m in sorted(ms))


def describe(
    t: Callable[..., str],
    starts_at: str,
    rrule: str | None,
    ends_on: str | date | None = None,
    exdates: Sequence[str] = (),
) -> str:
    """The schedule's timing as one sentence; `starts_at` as the API gives it (ISO 8601)."""
    start = datetime.fromisoformat(local(starts_at, "%Y-%m-%dT%H:%M"))
    if not rrule:
        return t("rep.once", time=start.strftime("%H:%M"), day=start.strftime("%d/%m/%Y"))
    try:
        parts = parse_parts(rrule)
    except InvalidRecurrence:
        return rrule
    at = _clock(parts.get("BYHOUR"), parts.get("BYMINUTE"), start)
    interval = parts.interval
    if parts.freq == "WEEKLY":
        codes = (parts.get("BYDAY") or WEEKDAY_CODES[start.weekday()]).split(",")
        days = ", ".join(
            t(f"day.{WEEKDAY_CODES.index(c)}") for c in WEEKDAY_CODES if c in codes
        ) or (parts.get("BYDAY") or "")
        text = t("rep.weekly" if interval == 1 else "rep.weekly_n", n=interval, days=days, time=at)
    elif parts.freq == "MONTHLY":
        day = parts.get("BYMONTHDAY") or str(start.day)
        text = t("rep.monthly", day=day, time=at)
    else:
        weekdays = parts.get("BYDAY")
        if weekdays:
            days = ", ".join(
                t(f"day.{WEEKDAY_CODES.index(c)}") for c in WEEKDAY_CODES if c in weekdays
            )
            text = t("rep.weekly", days=days, time=at)
        else:
            text = t("rep.daily" if interval == 1 else "rep.daily_n", n=interval, time=at)
    text += t("rep.from", day=start.strftime("%d/%m/%Y"))
    if ends_on:
        end = ends_on if isinstance(ends_on, date) else date.fromisoformat(ends_on)
        text += t("rep.until", day=end.strftime("%d/%m/%Y"))
    if parts.count is not None:
        text += t("rep.count", n=parts.count)
    if exdates:
        text += t("rep.except", days=", ".join(day_label(d) for d in exdates))
    return text


def day_label(value: str) -> str:
    try:
        if len(value) == 10:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        return datetime.fromisoformat(value).strftime("%H:%M %d/%m/%Y")
    except ValueError:
        return value


def target_names(
    targets: dict[str, Any], areas: dict[str, str], nodes: dict[str, str], groups: dict[str, str]
) -> list[str]:
    """Names people know (villages, loudspeakers, groups), never the ids."""
    return (
        [areas.get(a, a) for a in targets.get("areas", [])]
        + [groups.get(g, g) for g in targets.get("groups", [])]
        + [nodes.get(n, n) for n in targets.get("nodes", [])]
    )


async def names_of(
    console: Console, areas: list[AreaChoice], node_ids: Iterable[str] = ()
) -> dict[str, dict[str, str]]:
    """The names people know for ids: every area and group of the person's, and the nodes
    named in `node_ids` (only those: a province has thousands), with each one's area."""
    wanted = sorted({i for i in node_ids if i} - {a.id for a in areas})
    nodes: list[dict[str, Any]] = []
    for start in range(0, len(wanted), NAMES_AT_ONCE):
        chunk = wanted[start : start + NAMES_AT_ONCE]
        page = await console.get("/api/v1/nodes", id=chunk, limit=len(chunk), include_retired=True)
        nodes += page["items"]
    groups = await console.get("/api/v1/groups") if console.can("groups") else []
    return {
        "areas": {a.id: a.name for a in areas},
        "nodes": {n["id"]: n["name"] for n in nodes},
        "node_areas": {n["id"]: n["area_id"] for n in nodes},
        "groups": {g["id"]: g["name"] for g in groups},
    }
