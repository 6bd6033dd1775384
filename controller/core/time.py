"""Stored instants: what the controller keeps in the database (UTC) and sends on the wire (epoch
milliseconds). Local wall time — what people read and write, and what a schedule's rule means —
is `schedules.localtime`, where a naive time means Viet Nam time; here a naive time is one the
database returned, which is UTC, except in `as_utc`, which takes what a person or a client
gave."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from controller.core.config import TIMEZONE
from controller.core.errors import Invalid

LOCAL = ZoneInfo(TIMEZONE)


def utc_ms(dt: datetime) -> int:
    """Epoch milliseconds of a stored instant: aware, or naive UTC as a database returns it."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def utc_datetime(ms: int) -> datetime:
    """The instant `ms` as an aware UTC datetime, as it is stored."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def as_utc(when: datetime) -> datetime:
    """A time someone gave (a request's field or filter) as it is stored: aware UTC. Without an
    offset it is Viet Nam time. One that UTC cannot hold (year 0 or 10,000 once converted) is a
    422 with a code, not an error of ours."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL)
    try:
        return utc_datetime(utc_ms(when))
    except (OverflowError, ValueError, OSError):
        raise Invalid(
            f"{when.isoformat()} is out of range: give a date between the years 2000 and 2199",
            code="time_out_of_range",
        ) from None
