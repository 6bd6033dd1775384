"""Local time in Vietnam (Asia/Ho_Chi_Minh) and its conversion to and from epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TZID = "Asia/Ho_Chi_Minh"
DAY_MS = 24 * 3600 * 1000


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime; a naive one is taken as local wall time."""
    return round(as_local(dt).timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """The local wall time of an instant, as an aware datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(LOCAL_TZ)


def as_local(dt: datetime) -> datetime:
    """An aware datetime in the local zone; naive input is local wall time, not UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=LOCAL_TZ)
    return dt.astimezone(LOCAL_TZ)


def local_midnight_ms(day: date) -> int:
    return to_ms(datetime.combine(day, time(0), LOCAL_TZ))


def local_day_window(first: date, last: date) -> tuple[int, int]:
    """[start, end) in ms of the local days first..last, both included."""
    return local_midnight_ms(first), local_midnight_ms(last + timedelta(days=1))


def label(ms: int) -> str:
    """How officers read a time: "HH:MM dd/mm/yyyy", local."""
    return from_ms(ms).strftime("%H:%M %d/%m/%Y")


def clock(ms: int) -> str:
    """Local "HH:MM", when the date is already plain from context."""
    return from_ms(ms).strftime("%H:%M")


def label_dt(dt: datetime) -> str:
    return as_local(dt).strftime("%H:%M %d/%m/%Y")


def label_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")
