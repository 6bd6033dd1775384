"""Telemetry history: every heartbeat at full resolution for a while, then hourly summaries."""

from __future__ import annotations

import array
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import ColumnElement, SQLColumnExpression, case, delete
from sqlalchemy import func as sa_func
from sqlmodel import Session, col, func, select

from controller.core.config import Settings
from controller.core.db import insert_rows
from controller.core.models import TelemetryHourly, TelemetrySample
from protocol import Telemetry

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# A range longer than this is answered from the hourly summaries even where samples exist.
RAW_RANGE_MAX = timedelta(hours=48)


class Reading(NamedTuple):
    """A heartbeat's values as the controller keeps one per node: the protocol's `Telemetry`
    field for field (a test holds the two lists equal), in a tuple of some 0.4 KB where the
    pydantic object took 3.7 KB; 37 MB at 10,000 nodes."""

    v: int
    node_id: str
    ts: int
    uptime_s: int
    volume: int
    signal_dbm: int | None
    temperature_c: float | None
    power: Literal["mains", "battery"] | None
    battery_pct: int | None
    supply_v: float | None
    speaker_ok: bool | None
    amplifier_ok: bool | None
    storage_free_mb: int | None
    now_playing: str | None
    timeline_version: int
    rejected_messages: int
    memory_free_mb: int | None
    load_1m: float | None
    network: str | None
    clock_synced: bool | None
    clock_source: str | None
    clock_offset_ms: float | None
    controller_delay_ms: int | None

    @classmethod
    def of(cls, report: Telemetry) -> Reading:
        return cls(**report.__dict__)


@dataclass(frozen=True, slots=True)
class Latest:
    """A node's newest heartbeat, as the alarm rules read it."""

    received: datetime
    report: Reading


# The uplink half of the clock measure: the minimum over this many recent heartbeats.
UPLINK_SAMPLES = 16


@dataclass(frozen=True)
class ClockOffset:
    """A node's clock minus the controller's, in ms (positive: the node is ahead).

    Two measures, each the minimum over recent messages, so the least delayed one counts:
    the node's `controller_delay_ms` (its receive time − the controller's issue time of live
    controller messages) is offset + downlink delay, an upper bound; the controller's
    (receive time − heartbeat `ts`) is −offset + uplink delay, so its negation is a lower
    bound. With both, the estimate is the midpoint (delays taken as equal, as NTP does) and
    the error at most half the round trip; with one, it is that bound.
    """

    offset_ms: float
    method: Literal["two_way", "node_only", "controller_only"]
    low_ms: float | None
    high_ms: float | None

    def beyond(self, limit_ms: float) -> bool | None:
        """True: proven further than the limit (a bound is beyond it: delays cannot be
        negative, so no network delay makes this a false alarm); False: the two-way estimate
        is within it; None: cannot be told (the bounds are wider than the limit)."""
        if self.low_ms is not None and self.low_ms > limit_ms:
            return True
        if self.high_ms is not None and self.high_ms < -limit_ms:
            return True
        if self.method == "two_way" and abs(self.offset_ms) <= limit_ms:
            return False
        return None


def clock_offset(uplink_ms: int | None, downlink_ms: int | None) -> ClockOffset | None:
    low = -uplink_ms if uplink_ms is not None else None
    high = downlink_ms
    if low is not None and high is not None:
        return ClockOffset((low + high) / 2, "two_way", low, high)
    if high is not None:
        return ClockOffset(high, "node_only", None, high)
    if low is not None:
        return ClockOffset(low, "controller_only", low, None)
    return None


def floor_hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


class TelemetryStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.latest: dict[str, Latest] = {}
        self._lock = threading.Lock()
        self.written = 0
        self._done_until: datetime | None = None  # hours before this are summarised
        # Per node: (controller receive time − heartbeat ts) of recent heartbeats, ms; machine
        # integers in an array (a deque of int objects took 0.8 KB a node).
        self._uplink: dict[str, array.array[int]] = {}

    def clock_offset(self, node_id: str) -> ClockOffset | None:
        """The node's clock against the controller's, from its latest heartbeat and the
        recent ones; None when nothing was heard since the controller started."""
        latest = self.latest.get(node_id)
        with self._lock:
            samples = self._uplink.get(node_id)
            uplink = min(samples) if samples else None
        downlink = latest.report.controller_delay_ms if latest is not None else None
        return clock_offset(uplink, downlink)

    def newest(self) -> list[tuple[str, Latest]]:
        """Each node's newest heartbeat, taken at once (ingestion adds to it meanwhile)."""
        with self._lock:
            return list(self.latest.items())

    def record(self, session: Session, rows: list[tuple[str, Telemetry, datetime]]) -> None:
        """Store a batch of heartbeats in one multi-row insert (part of the caller's commit)."""
        if not rows:
            return
        # The uplink samples with these heartbeats', kept (with the heartbeats as the newest)
        # only once they are stored: what the alarm rules judge by changes all at once, and a
        # heartbeat the database refused leaves no trace.
        offsets: list[ClockOffset | None] = []
        uplinks: dict[str, array.array[int]] = {}
        with self._lock:
            for node_id, t, received in rows:
                samples = uplinks.get(node_id)
                if samples is None:
                    samples = uplinks[node_id] = array.array("q", self._uplink.get(node_id, ()))
                samples.append(round(received.timestamp() * 1000) - t.ts)
                if len(samples) > UPLINK_SAMPLES:
                    del samples[0]
                offsets.append(clock_offset(min(samples), t.controller_delay_ms))
        values = [
            {
                "node_id": node_id,
                "ts": received,
                "uptime_s": t.uptime_s,
                "volume": t.volume,
                "signal_dbm": t.signal_dbm,
                "temperature_c": t.temperature_c,
                "power": t.power,
                "battery_pct": t.battery_pct,
                "supply_v": t.supply_v,
                "speaker_ok": t.speaker_ok,
                "amplifier_ok": t.amplifier_ok,
                "storage_free_mb": t.storage_free_mb,
                "now_playing": t.now_playing,
                "timeline_version": t.timeline_version,
                "memory_free_mb": t.memory_free_mb,
                "load_1m": t.load_1m,
                "offset_ms": None if offset is None else round(offset.offset_ms, 1),
                "clock_synced": t.clock_synced,
            }
            for (node_id, t, received), offset in zip(rows, offsets, strict=True)
        ]
        insert_rows(session, TelemetrySample, values)
        with self._lock:
            self._uplink.update(uplinks)
            for node_id, t, received in rows:
                self.latest[node_id] = Latest(received, Reading.of(t))
            self.written += len(rows)

    def load_latest(self, session: Session, since: datetime) -> None:
        """After a restart: the newest stored heartbeat of each node, so alarms can be judged
        before every node has spoken again."""
        newest = (
            select(TelemetrySample.node_id, func.max(TelemetrySample.id).label("id"))
            .where(col(TelemetrySample.ts) >= since)
            .group_by(col(TelemetrySample.node_id))
            .subquery()
        )
        rows = session.exec(
            select(TelemetrySample).join(newest, col(TelemetrySample.id) == newest.c.id)
        ).all()
        with self._lock:
            for r in rows:
                stored = r.model_dump(exclude={"id", "ts", "offset_ms"})
                report = Telemetry.model_construct(**stored, ts=0)
                self.latest.setdefault(r.node_id, Latest(r.ts, Reading.of(report)))

    # --- downsampling --------------------------------------------------------------------

    def rollup(self, session: Session, now: datetime) -> int:
        """Summarise every complete hour not yet summarised, then drop samples older than
        `telemetry_full_days` and summaries older than `telemetry_keep_days`."""
        current = floor_hour(now)
        if self._done_until is None:
            # MAX is NULL over no rows, whatever the column's type.
            done: datetime | None = session.exec(select(func.max(TelemetryHourly.hour))).one()
            self._done_until = done + HOUR if done is not None else None
        hours = 0
        hour = self._next_hour(session, self._done_until)
        # Hour by hour, jumping over hours without any sample.
        while hour is not None and hour < current:
            self._summarise(session, hour)
            session.commit()
            hours += 1
            hour = self._next_hour(session, hour + HOUR)
        self._done_until = max(self._done_until or current, current)
        full = now - timedelta(days=self.settings.telemetry_full_days)
        keep = now - timedelta(days=self.settings.telemetry_keep_days)
        session.exec(delete(TelemetrySample).where(col(TelemetrySample.ts) < full))
        session.exec(delete(TelemetryHourly).where(col(TelemetryHourly.hour) < keep))
        session.commit()
        return hours

    @staticmethod
    def _next_hour(session: Session, after: datetime | None) -> datetime | None:
        q = select(func.min(TelemetrySample.ts))
        if after is not None:
            q = q.where(col(TelemetrySample.ts) >= after)
        first: datetime | None = session.exec(q).one()  # NULL over no rows
        return floor_hour(first) if first is not None else None

    def _summarise(self, session: Session, hour: datetime) -> None:
        s = TelemetrySample

        def bad(c: SQLColumnExpression[bool | None]) -> ColumnElement[int]:
            return sa_func.sum(case((c == False, 1), else_=0))  # noqa: E712

        aggregates: list[Any] = [
            s.node_id,
            func.count(),
            func.avg(s.volume),
        ]
        for column in (s.signal_dbm, s.temperature_c, s.supply_v, s.battery_pct):
            aggregates += [func.min(column), func.avg(column), func.max(column)]
        aggregates += [
            func.min(s.storage_free_mb),
            func.max(s.uptime_s),
            sa_func.sum(case((col(s.power) == "battery", 1), else_=0)),
            bad(col(s.speaker_ok)),
            bad(col(s.amplifier_ok)),
        ]
        rows = session.exec(
            select(*aggregates)
            .where(col(s.ts) >= hour, col(s.ts) < hour + HOUR)
            .group_by(col(s.node_id))
        ).all()
        names = ["signal", "temperature", "supply_v", "battery"]
        for r in rows:
            values: dict[str, Any] = {"node_id": r[0], "hour": hour, "samples": r[1]}
            values["volume_avg"] = _f(r[2])
            for i, name in enumerate(names):
                lo, avg, hi = r[3 + 3 * i : 6 + 3 * i]
                values |= {f"{name}_min": _f(lo), f"{name}_avg": _f(avg), f"{name}_max": _f(hi)}
            values |= {
                "storage_free_mb_min": r[15],
                "uptime_max": r[16],
                "on_battery": int(r[17] or 0),
                "speaker_faults": int(r[18] or 0),
                "amplifier_faults": int(r[19] or 0),
            }
            session.add(TelemetryHourly(**values))

    # --- reading -------------------------------------------------------------------------

    def history(
        self, session: Session, node_id: str, start: datetime, end: datetime, now: datetime
    ) -> tuple[Literal["full", "hourly"], list[dict[str, Any]]]:
        """Samples when the range is short and still held at full resolution, else hours."""
        full_from = now - timedelta(days=self.settings.telemetry_full_days)
        if end - start <= RAW_RANGE_MAX and start >= full_from:
            samples = session.exec(
                select(TelemetrySample)
                .where(
                    TelemetrySample.node_id == node_id,
                    col(TelemetrySample.ts) >= start,
                    col(TelemetrySample.ts) < end,
                )
                .order_by(col(TelemetrySample.ts))
            ).all()
            return "full", [r.model_dump(exclude={"id", "node_id"}) for r in samples]
        hours = session.exec(
            select(TelemetryHourly)
            .where(
                TelemetryHourly.node_id == node_id,
                col(TelemetryHourly.hour) >= floor_hour(start),
                col(TelemetryHourly.hour) < end,
            )
            .order_by(col(TelemetryHourly.hour))
        ).all()
        return "hourly", [r.model_dump(exclude={"id", "node_id"}) for r in hours]


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)
