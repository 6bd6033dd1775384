"""Screening of node reports before they are queued: floods from one node, values no device
can report, and logs that stay readable when thousands of bad messages arrive."""

from __future__ import annotations

import logging
import time
from typing import Any

from protocol import NodeState, Telemetry

# Bounds beyond the wire schema's: what fits the database and any real device.
MAX_UPTIME_S = 20 * 365 * 86400
MAX_STORAGE_MB = 100_000_000
MAX_MEMORY_MB = 100_000_000
MAX_LOAD = 1_000_000.0
MAX_COUNTER = 2**31 - 1


class FloodGate:
    """A token bucket per node and kind, for heartbeats and state messages (a flood of one
    does not silence the other), on real time rather than the scaled
    clock: a flood is about load). Events are never dropped here: a node sends its stored
    events in a burst when it reconnects, and each is de-duplicated by id anyway."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True


def implausible(report: Any) -> str | None:
    """Why a well-formed report cannot be true, or None."""
    if isinstance(report, Telemetry):
        if report.uptime_s > MAX_UPTIME_S:
            return f"uptime_s {report.uptime_s} is more than 20 years"
        if report.storage_free_mb is not None and report.storage_free_mb > MAX_STORAGE_MB:
            return f"storage_free_mb {report.storage_free_mb} is beyond any device"
        if report.memory_free_mb is not None and report.memory_free_mb > MAX_MEMORY_MB:
            return f"memory_free_mb {report.memory_free_mb} is beyond any device"
        if report.load_1m is not None and not 0 <= report.load_1m <= MAX_LOAD:
            return f"load_1m {report.load_1m} is beyond any device"
        if report.timeline_version > MAX_COUNTER or report.rejected_messages > MAX_COUNTER:
            return "a counter is beyond 2^31"
        if report.power == "mains" and report.supply_v is not None and report.supply_v > 300:
            return f"supply_v {report.supply_v} on mains is beyond any grid"
    if isinstance(report, NodeState) and report.boot > MAX_COUNTER:
        return f"boot {report.boot} is beyond 2^31"
    return None


class QuietLog:
    """Logs a kind of problem at most once per `every_s`, saying how many were not logged."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self.logger = logger
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        if skipped:
            msg += f" (and {skipped} more like it not logged)"
        self.logger.warning(msg, *args)
