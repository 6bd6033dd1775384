"""The calendar view of schedules over local dates, and its export as iCalendar (RFC 5545)."""

from __future__ import annotations

import time as wallclock
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event, Timezone, TimezoneStandard, vRecur

from protocol import Priority
from schedules.localtime import TZID, from_ms, local_day_window
from schedules.recurrence import Recurrence, occurrences

PRODID = "-//commune-radio//schedules//VI"
# iCalendar PRIORITY runs from 1 (highest) to 9 (lowest).
ICS_PRIORITY = {Priority.emergency: 1, Priority.priority: 5, Priority.normal: 9}


@dataclass(frozen=True)
class Broadcast:
    """A schedule as the calendar sees it: what, when it recurs, how long, how urgent, where."""

    id: str
    title: str
    recurrence: Recurrence
    duration_ms: int
    priority: Priority = Priority.normal
    targets: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CalendarEntry:
    """One playing of a broadcast, for the calendar view."""

    schedule_id: str
    title: str
    start_ms: int
    duration_ms: int
    priority: Priority
    targets: frozenset[str]

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    @property
    def start_local(self) -> datetime:
        return from_ms(self.start_ms)

    @property
    def local_date(self) -> date:
        return self.start_local.date()


def calendar_entries(
    broadcasts: Iterable[Broadcast], first_day: date, last_day: date
) -> list[CalendarEntry]:
    """Every playing that starts on the local dates first_day..last_day, in time order.

    At the same minute the more urgent comes first, as it would play first.
    """
    start_ms, end_ms = local_day_window(first_day, last_day)
    entries = [
        CalendarEntry(b.id, b.title, ms, b.duration_ms, b.priority, b.targets)
        for b in broadcasts
        for ms in occurrences(b.recurrence, start_ms, end_ms)
    ]
    entries.sort(key=lambda e: (e.start_ms, -e.priority.rank, e.schedule_id))
    return entries


def _vtimezone() -> Timezone:
    # Vietnam has kept +07:00 without summer time since 1975; earlier offsets are irrelevant
    # to anything a commune schedules, so one STANDARD rule describes the zone.
    zone = Timezone()
    zone.add("tzid", TZID)
    standard = TimezoneStandard()
    standard.add("dtstart", datetime(1975, 6, 13))
    standard.add("tzoffsetfrom", timedelta(hours=7))
    standard.add("tzoffsetto", timedelta(hours=7))
    standard.add("tzname", "+07")
    zone.add_component(standard)
    return zone


# The description is for people reading their calendar: in Vietnamese, places by name.
PRIORITY_WORDS = {
    Priority.normal: "thông thường",
    Priority.priority: "ưu tiên",
    Priority.emergency: "khẩn cấp",
}


def _event(
    uid: str,
    stamp: datetime,
    title: str,
    priority: Priority,
    targets: frozenset[str],
    names: Mapping[str, str],
) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("summary", title)
    event.add("priority", ICS_PRIORITY[priority])
    event.add("categories", [priority.value])
    text = f"Mức ưu tiên: {PRIORITY_WORDS[priority]}."
    if targets:
        places = sorted(names.get(t, t) for t in targets)
        text = f"Nơi phát: {', '.join(places)}. {text}"
    event.add("description", text)
    return event


def to_ics(
    items: Iterable[Broadcast | CalendarEntry],
    name: str,
    *,
    now_ms: int | None = None,
    domain: str = "commune-radio",
    names: Mapping[str, str] | None = None,
) -> str:
    """An iCalendar text: a broadcast becomes one recurring VEVENT, an entry a single one.

    Lines are folded at 75 octets and end in CRLF; `now_ms` is the DTSTAMP (default: now);
    `names` gives the areas' and loudspeakers' names for the description (else their ids).
    """
    names = names or {}
    stamp_ms = round(wallclock.time() * 1000) if now_ms is None else now_ms
    stamp = datetime.fromtimestamp(stamp_ms // 1000, UTC)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", TZID)
    cal.add_component(_vtimezone())
    for item in items:
        if isinstance(item, Broadcast):
            event = _event(
                f"schedule-{item.id}@{domain}",
                stamp,
                item.title,
                item.priority,
                item.targets,
                names,
            )
            rec = item.recurrence
            event.add("dtstart", rec.dtstart)
            event.add("duration", timedelta(milliseconds=item.duration_ms))
            rule = rec.to_ics_rrule()
            if rule is not None:
                event.add("rrule", vRecur.from_ical(rule))
                exdates = rec.ics_exdates()
                if exdates:
                    event.add("exdate", exdates)
        else:
            uid = f"schedule-{item.schedule_id}-{item.start_ms}@{domain}"
            event = _event(uid, stamp, item.title, item.priority, item.targets, names)
            event.add("dtstart", item.start_local.replace(microsecond=0))
            event.add("duration", timedelta(milliseconds=item.duration_ms))
        cal.add_component(event)
    ical: bytes = cal.to_ical()
    return ical.decode("utf-8")
