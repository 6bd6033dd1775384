"""The periods a report covers: a day, week, month, quarter or year of Viet Nam local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from schedules.localtime import local_day_window


class Period(StrEnum):
    day = "day"
    week = "week"  # Monday to Sunday, as calendars in Viet Nam print them
    month = "month"
    quarter = "quarter"
    year = "year"


@dataclass(frozen=True)
class Window:
    period: Period
    first: date  # local days, both included
    last: date
    start_ms: int  # [start_ms, end_ms): local midnight to local midnight, in UTC ms
    end_ms: int

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def window(period: Period, day: date) -> Window:
    """The period of this kind that contains the local day."""
    if period == Period.day:
        first = last = day
    elif period == Period.week:
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=6)
    elif period == Period.month:
        first = day.replace(day=1)
        last = _next_month(first) - timedelta(days=1)
    elif period == Period.quarter:
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        last = _next_month(_next_month(_next_month(first))) - timedelta(days=1)
    else:
        first, last = date(day.year, 1, 1), date(day.year, 12, 31)
    start_ms, end_ms = local_day_window(first, last)
    return Window(period, first, last, start_ms, end_ms)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)
