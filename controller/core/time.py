"""Stored instants: what the controller keeps in the database (UTC) and sends on the wire (epoch
milliseconds). Local wall time — what people read and write, and what a schedule's rule means —
is `schedules.localtime`, where a naive time means Viet Nam time; here a naive time is one the
database returned, which is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_ms(dt: datetime) -> int:
    """Epoch milliseconds of a stored instant: aware, or naive UTC as a database returns it."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def utc_datetime(ms: int) -> datetime:
    """The instant `ms` as an aware UTC datetime, as it is stored."""
    return datetime.fromtimestamp(ms / 1000, UTC)
