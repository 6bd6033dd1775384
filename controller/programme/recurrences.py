"""A schedule's recurrence: checked when it is written, expanded when timelines are computed."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from controller.core.errors import Invalid
from controller.core.models import Schedule
from schedules import InvalidRecurrence, Recurrence, occurrences, parse_rrule
from schedules.localtime import as_local, to_ms

# How far ahead a recurring schedule is searched for a broadcast still to come.
FUTURE_SEARCH_DAYS = 5 * 366
_STEP_DAYS = 31
# Far-off years would overflow the search above; nothing is scheduled that far ahead.
FIRST_YEAR, LAST_YEAR = 2000, 2199


def parse_exdates(values: list[str]) -> tuple[date | datetime, ...]:
    """Local dates ("2025-09-02", the whole day) and local times ("2025-09-02T06:00")."""
    out: list[date | datetime] = []
    for raw in values:
        text = raw.strip()
        try:
            moment = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(
                f"excluded date '{raw}' is not a date or time: write 2025-09-02 for a whole day "
                "or 2025-09-02T06:00 for one broadcast"
            ) from None
        out.append(as_local(moment) if isinstance(moment, datetime) else moment)
    return tuple(out)


def exdates_json(values: tuple[date | datetime, ...]) -> str:
    """Stored as local wall-clock text, as officers wrote them."""
    texts = [
        v.replace(tzinfo=None).isoformat() if isinstance(v, datetime) else v.isoformat()
        for v in values
    ]
    return json.dumps(texts)


def checked_recurrence(
    starts_at: datetime,
    rrule: str | None,
    exdates: tuple[date | datetime, ...] = (),
    ends_on: date | None = None,
) -> Recurrence:
    """The recurrence an officer asked for; a bad rule is a 422 with the library's message."""
    local = as_local(starts_at)
    if not FIRST_YEAR <= local.year <= LAST_YEAR:
        raise Invalid(
            f"starts_at {local.date()} is out of range: give a year from {FIRST_YEAR} to "
            f"{LAST_YEAR}"
        )
    if rrule is None:
        if exdates or ends_on is not None:
            raise Invalid("exdates and ends_on apply only to a repeating schedule: give an rrule")
        return Recurrence.once(as_local(starts_at))
    # Rules cannot give seconds (no BYSECOND), so DTSTART's would silently shift every broadcast.
    anchor = as_local(starts_at).replace(second=0, microsecond=0)
    try:
        return parse_rrule(rrule, anchor, exdates=exdates, end_date=ends_on)
    except InvalidRecurrence as exc:
        raise Invalid(str(exc)) from exc


def recurrence_of(schedule: Schedule) -> Recurrence:
    """The stored recurrence, checked when written, so it is rebuilt without checking again.

    `starts_at` of a repeating schedule is its rule's first broadcast.
    """
    start = as_local(schedule.starts_at)
    if schedule.rrule is None:
        return Recurrence(dtstart=start)
    stored = tuple(json.loads(schedule.exdates or "[]"))
    return Recurrence(start, schedule.rrule, parse_exdates(list(stored)), schedule.ends_on)


def starts_between(schedule: Schedule, start_ms: int, end_ms: int) -> list[int]:
    """Start times (UTC ms) of the schedule's broadcasts in [start_ms, end_ms)."""
    if schedule.rrule is None:
        at = to_ms(schedule.starts_at)
        return [at] if start_ms <= at < end_ms else []
    return occurrences(recurrence_of(schedule), start_ms, end_ms)


def next_start(rec: Recurrence, after_ms: int) -> int | None:
    """The first broadcast after `after_ms`, searched month by month so a rule ends quickly."""
    step = timedelta(days=_STEP_DAYS).total_seconds() * 1000
    lo = after_ms + 1
    for _ in range(FUTURE_SEARCH_DAYS // _STEP_DAYS + 1):
        hi = lo + int(step)
        found = occurrences(rec, lo, hi)
        if found:
            return found[0]
        if rec.until is not None and to_ms(rec.until) < lo:
            return None
        lo = hi
    return None
