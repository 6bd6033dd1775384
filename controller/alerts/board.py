"""The alerts people are watching, held in memory: every node's confirmation is put on the board
the moment ingestion hears it, and the alert views (JSON and server-sent events) read the board,
not the database. The database keeps the record; writing it happens in ingestion's batches,
after the board already shows the change.

An alert comes onto the board when it is issued or first looked at (read from the database
once). While it is active, the board merges the database into itself every few seconds: what
another controller instance heard (shared subscriptions split the nodes' reports between
instances), nodes added to its areas, and the nodes' online states. Memory is bounded: an
alert leaves the board once it has been closed for as long as the merging goes on (nobody
watching it live), and beyond MAX_ALERTS the alerts looked at least recently leave first."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.core.time import utc_datetime

__all__ = [
    "ALL",
    "STAMPS",
    "STATES",
    "AlertBoard",
    "BoardNode",
    "Page",
    "receipt_state",
    "report_version",
]

# A node's state in an alert's view, in the order of progress: what `receipt_state` says, and
# "silent" for a pending node past the view's wait.
STATES = ("pending", "received", "playing", "done", "stopped", "silent", "failed")

# What each confirmation sets on a node's receipt.
STAMPS = {
    "alert_received": "received_at",
    "alert_started": "started_at",
    "alert_finished": "finished_at",
    "alert_stopped": "stopped_at",
    "alert_failed": "failed_at",
}
_FIELDS = tuple(STAMPS.values())
# Nodes name the version first in the detail ("v2; ..."): a report about a version that an
# update replaced (its "stopped") must not count for the new one.
_VERSION = re.compile(r"v(\d+)(?:;|$)")
MAX_ALERTS = 16


def report_version(detail: str, current: int) -> int:
    """The alert version a node's report is about: named in its detail, else the current one."""
    return int(m.group(1)) if (m := _VERSION.match(detail)) else current


def receipt_state(r: Any) -> str:
    """State of a receipt (a Receipt, an AlertReceipt or a row of its columns), or None's."""
    if r is None or r.received_at is None:
        return "pending"
    if r.failed_at is not None:
        return "failed"
    if r.finished_at is not None:
        return "done"
    if r.stopped_at is not None:  # cancelled, ended by an all-clear, or replaced while sounding
        return "stopped"
    if r.started_at is not None:
        return "playing"
    return "received"


@dataclass(slots=True)
class Receipt:
    """One node's confirmations of one version of an alert."""

    version: int
    received_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    failed_at: datetime | None = None
    detail: str = ""

    def hear(self, kind: str, version: int, when: datetime, detail: str) -> bool:
        """Apply one confirmation; False when it changes nothing (older version, a repeat)."""
        if version < self.version:
            return False
        if version > self.version:
            # A newer version starts over: what a node did with the old one is not this one.
            self.version = version
            for name in _FIELDS:
                setattr(self, name, None)
            self.detail = ""
        stamp = STAMPS[kind]
        before = (getattr(self, stamp), self.received_at, self.detail)
        setattr(self, stamp, when)
        if self.received_at is None:
            self.received_at = when
        if detail:
            self.detail = detail[:500]
        return before != (getattr(self, stamp), self.received_at, self.detail)

    def merge(self, stored: Any) -> None:
        """Fill in from the database's receipt what this instance did not hear itself."""
        if stored.version < self.version:
            return
        if stored.version > self.version:
            self.version = stored.version
            for name in _FIELDS:
                setattr(self, name, None)
            self.detail = ""
        for name in _FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, getattr(stored, name))
        if not self.detail and stored.detail:
            self.detail = stored.detail


@dataclass(frozen=True, slots=True)
class BoardNode:
    """A node the alert is for, as the view lists it."""

    id: str
    name: str
    area_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Page:
    """Which of an alert's nodes a view lists: of those the viewer sees (`sees`, by area; None:
    all), the ones in `state` (None: any), from `offset`, at most `limit` (None: all); or,
    with `ids`, those nodes whatever their state (the rows a live view already shows). The
    counts and the silent nodes are over every node the viewer sees, whatever the page, and
    `matched` over those in `state`."""

    sees: Callable[[str], bool] | None = None
    state: str | None = None
    offset: int = 0
    limit: int | None = None
    ids: frozenset[str] | None = None


ALL = Page()


@dataclass(slots=True)
class _Watched:
    version: int
    created_at: datetime
    status: str
    nodes: list[BoardNode] | None = None  # None until read from the database
    closed_at: float | None = None  # monotonic time the board learned it was closed
    pins: int = 0  # open live views: never evicted while one is open
    receipts: dict[str, Receipt] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)  # node id -> place in `nodes`


class AlertBoard:
    """Alerts by id, each with its nodes and their receipts; safe to use from the event loop
    (ingestion) and from the API's worker threads at once."""

    def __init__(self, max_alerts: int = MAX_ALERTS) -> None:
        self.max_alerts = max_alerts
        self._alerts: OrderedDict[str, _Watched] = OrderedDict()
        self._lock = threading.Lock()
        self.heard_count = 0

    def has(self, alert_id: str) -> bool:
        with self._lock:
            return alert_id in self._alerts

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._alerts)

    def put(
        self,
        alert_id: str,
        version: int,
        created_at: datetime,
        status: str,
        nodes: list[BoardNode] | None = None,
        stored: Sequence[Any] = (),
    ) -> None:
        """Bring an alert onto the board (or refresh it) from the database's rows: its nodes and
        its stored receipts, merged into what the board already heard. Without `nodes` the
        alert is on the board, hearing confirmations, but not ready to be viewed."""
        with self._lock:
            watched = self._alerts.get(alert_id)
            if watched is None:
                watched = _Watched(version, created_at, status)
                self._alerts[alert_id] = watched
                self._evict()
            watched.version = max(watched.version, version)
            self._set_status(watched, status)
            if nodes is not None:
                watched.nodes = nodes
                watched.index = {node.id: place for place, node in enumerate(nodes)}
            for row in stored:
                receipt = watched.receipts.get(row.node_id)
                if receipt is None:
                    receipt = watched.receipts[row.node_id] = Receipt(row.version)
                receipt.merge(row)

    def heard(self, alert_id: str, node_id: str, kind: str, ts_ms: int, detail: str) -> bool:
        """A node's confirmation, as ingestion hears it: True when the board changed."""
        if kind not in STAMPS:
            return False
        with self._lock:
            watched = self._alerts.get(alert_id)
            if watched is None:
                return False
            version = report_version(detail, watched.version)
            if version < watched.version:
                return False
            receipt = watched.receipts.get(node_id)
            if receipt is None:
                receipt = watched.receipts[node_id] = Receipt(version)
            changed = receipt.hear(kind, version, utc_datetime(ts_ms), detail)
            self.heard_count += changed
            return changed

    def changed(self, alert_id: str, status: str, version: int | None = None) -> None:
        """The alert was closed, or replaced by a new version (the old version's receipts
        stop counting)."""
        with self._lock:
            watched = self._alerts.get(alert_id)
            if watched is None:
                return
            if version is not None and version > watched.version:
                watched.version = version
            self._set_status(watched, status)

    def state(self, alert_id: str) -> tuple[str, int] | None:
        """The alert's status and version as the board knows them."""
        with self._lock:
            watched = self._alerts.get(alert_id)
            return None if watched is None else (watched.status, watched.version)

    def to_refresh(self, closed_for_s: float) -> list[str]:
        """The alerts to merge the database into: active ones, and those closed less than
        `closed_for_s` ago (the last confirmations, and the stops after a cancel, come then).
        The others leave the board, unless a live view holds them: nothing changes them any
        more, the database has all they hold, and a look at one reads it back from there."""
        now = time.monotonic()
        with self._lock:
            for alert_id, watched in list(self._alerts.items()):
                over = watched.closed_at is not None and now - watched.closed_at >= closed_for_s
                if over and watched.pins == 0:
                    del self._alerts[alert_id]
            return [
                alert_id
                for alert_id, watched in self._alerts.items()
                if watched.closed_at is None or now - watched.closed_at < closed_for_s
            ]

    @contextmanager
    def pinned(self, alert_id: str) -> Iterator[None]:
        """Keep the alert on the board while a live view of it is open."""
        with self._lock:
            watched = self._alerts.get(alert_id)
            if watched is not None:
                watched.pins += 1
        try:
            yield
        finally:
            with self._lock:
                if watched is not None:
                    watched.pins -= 1
                self._evict()

    def _set_status(self, watched: _Watched, status: str) -> None:
        if status != watched.status or (status != "active" and watched.closed_at is None):
            watched.status = status
            watched.closed_at = None if status == "active" else time.monotonic()

    def _evict(self) -> None:
        """Down to `max_alerts`, the least recently looked at first, never one being watched."""
        for alert_id in list(self._alerts):
            if len(self._alerts) <= self.max_alerts:
                return
            if self._alerts[alert_id].pins == 0:
                del self._alerts[alert_id]

    def node_status(self, node_id: str, status: str) -> None:
        with self._lock:
            for watched in self._alerts.values():
                place = watched.index.get(node_id)
                if place is not None and watched.nodes is not None:
                    node = watched.nodes[place]
                    watched.nodes[place] = BoardNode(node.id, node.name, node.area_id, status)

    def view(
        self, alert_id: str, silent_after_s: float, now: datetime, page: Page = ALL
    ) -> dict[str, Any] | None:
        """The counts, the silent nodes, how many nodes the page's state matches (`matched`)
        and the page's nodes with their states; None when the alert is not on the board.
        Rows are made for the page alone: an alert for ten thousand nodes is watched on a
        phone a hundred rows at a time."""
        end = None if page.limit is None else page.offset + page.limit
        with self._lock:
            watched = self._alerts.get(alert_id)
            if watched is None or watched.nodes is None:
                return None
            self._alerts.move_to_end(alert_id)
            deadline = watched.created_at + timedelta(seconds=silent_after_s)
            rows = []
            counts: dict[str, int] = {}
            silent: list[str] = []
            matched = 0
            for node in watched.nodes:
                if page.sees is not None and not page.sees(node.area_id):
                    continue
                r = watched.receipts.get(node.id)
                if r is not None and r.version < watched.version:
                    r = None
                state = receipt_state(r)
                if state == "pending" and now > deadline:
                    state = "silent"
                    silent.append(node.id)
                counts[state] = counts.get(state, 0) + 1
                fits = page.state is None or state == page.state
                matched += fits
                if page.ids is not None:
                    listed = node.id in page.ids
                else:
                    listed = fits and page.offset < matched and (end is None or matched <= end)
                if listed:
                    rows.append(
                        {
                            "node_id": node.id,
                            "name": node.name,
                            "area_id": node.area_id,
                            "node_status": node.status,
                            "state": state,
                            "received_at": r.received_at if r else None,
                            "started_at": r.started_at if r else None,
                            "finished_at": r.finished_at if r else None,
                            "detail": r.detail if r else "",
                        }
                    )
        return {"nodes": rows, "counts": counts, "silent": silent, "matched": matched}
