"""Quiet hours: the nightly span in which normal announcements may not sound in an area."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from protocol import Priority
from schedules.candidates import Candidate
from schedules.conflicts import Adjustment, Change
from schedules.errors import InvalidQuietHours, QuietHoursViolation
from schedules.localtime import LOCAL_TZ, from_ms, label, to_ms

if TYPE_CHECKING:
    from schedules.timeline import AreaTree

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock(value: str, which: str) -> time:
    match = _HHMM.match(value.strip())
    if match is None:
        raise InvalidQuietHours(
            f"quiet hours {which} '{value}' is not a time: write it as HH:MM, e.g. 22:00"
        )
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class QuietHours:
    """From `start` to `end` local time ("HH:MM"), every night; crossing midnight is allowed."""

    start: str
    end: str

    def __post_init__(self) -> None:
        if _clock(self.start, "start") == _clock(self.end, "end"):
            raise InvalidQuietHours(
                f"quiet hours start and end are both {self.start}: give two different times"
            )

    def __str__(self) -> str:
        return f"{self.start}–{self.end}"

    def spans(self, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
        """The quiet spans, in ms, that touch [start_ms, end_ms]."""
        begin, finish = _clock(self.start, "start"), _clock(self.end, "end")
        day = from_ms(start_ms).date() - timedelta(days=1)
        last = from_ms(end_ms).date()
        out: list[tuple[int, int]] = []
        while day <= last:
            lo = datetime.combine(day, begin, LOCAL_TZ)
            hi_day = day + timedelta(days=1) if finish <= begin else day
            out.append((to_ms(lo), to_ms(datetime.combine(hi_day, finish, LOCAL_TZ))))
            day += timedelta(days=1)
        return out

    def contains(self, ms: int) -> bool:
        return any(lo <= ms < hi for lo, hi in self.spans(ms, ms))

    def overlaps(self, start_ms: int, duration_ms: int) -> bool:
        """Whether any part of the item sounds in quiet hours (touching the edge does not)."""
        if duration_ms <= 0:
            return self.contains(start_ms)
        end_ms = start_ms + duration_ms
        return any(lo < end_ms and start_ms < hi for lo, hi in self.spans(start_ms, end_ms))


QuietMap = Mapping[str, QuietHours | None]


def quiet_hours_for(area_id: str, tree: AreaTree, quiet_by_area: QuietMap) -> QuietHours | None:
    """The quiet hours of the area or its nearest ancestor that sets them.

    An area mapped to None has none, and stops its ancestors' from reaching it.
    """
    for area in tree.lineage(area_id):
        if area in quiet_by_area:
            return quiet_by_area[area]
    return None


@dataclass(frozen=True)
class QuietViolation:
    candidate: Candidate
    area_id: str
    quiet: QuietHours

    def describe(self) -> str:
        c = self.candidate
        return (
            f"{c.name()} at {label(c.start_ms)} falls in the quiet hours {self.quiet} "
            f"of area {self.area_id}"
        )


def quiet_violations(
    candidates: Iterable[Candidate],
    area_ids: Iterable[str],
    tree: AreaTree,
    quiet_by_area: QuietMap,
) -> list[QuietViolation]:
    """Normal-priority candidates that sound in the quiet hours of a targeted area.

    Only the targeted areas' own (or inherited) quiet hours refuse a schedule; a village below
    with stricter hours drops the item from its nodes' timelines instead, so one village does
    not block a commune-wide announcement.
    """
    quiet = [(a, q) for a in area_ids if (q := quiet_hours_for(a, tree, quiet_by_area))]
    out: list[QuietViolation] = []
    for c in candidates:
        if c.priority is not Priority.normal:
            continue
        out.extend(
            QuietViolation(c, a, q) for a, q in quiet if q.overlaps(c.start_ms, c.duration_ms)
        )
    return out


def ensure_quiet(
    candidates: Iterable[Candidate],
    area_ids: Iterable[str],
    tree: AreaTree,
    quiet_by_area: QuietMap,
) -> None:
    """Raise QuietHoursViolation, naming each item, time and area, if any candidate is refused."""
    violations = quiet_violations(candidates, area_ids, tree, quiet_by_area)
    if violations:
        raise QuietHoursViolation(violations)


def drop_quiet(
    candidates: Iterable[Candidate], quiet: QuietHours | None
) -> tuple[list[Candidate], list[Adjustment]]:
    """For a node's timeline: normal items in quiet hours are dropped, each with the reason."""
    kept: list[Candidate] = []
    dropped: list[Adjustment] = []
    for c in candidates:
        if (
            quiet is None
            or c.priority is not Priority.normal
            or not quiet.overlaps(c.start_ms, c.duration_ms)
        ):
            kept.append(c)
            continue
        reason = f"{c.describe()} not played: it falls in the quiet hours {quiet}"
        dropped.append(
            Adjustment(
                c.item_id,
                c.schedule_id,
                Change.quiet_hours,
                reason,
                c.start_ms,
                c.duration_ms,
                c.start_ms,
                0,
            )
        )
    return kept, dropped
