"""Whether each node is online: its state messages, its last will and the heartbeat timeout,
whichever tells first, with flapping damped; every change is kept as a node event."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, func, select

from controller.core.config import Settings
from controller.core.db import insert_rows
from controller.core.models import Node, NodeStateChange
from controller.core.time import utc_datetime, utc_ms
from protocol import NodeState, NodeStatus
from protocol.clock import Clock

log = logging.getLogger(__name__)

# A will is built when its session connects, just before that session's `online`; one older
# than the current session's `online` by more than a connect can take belongs to a session
# already replaced (a broker may deliver it late, after the node came back).
STALE_WILL_MS = 10_000
_PENDING = "node_state_changes"  # in Session.info: the changes noted, not yet written
# What the node said, as a reason a person can read in its timeline.
_REASONS = {
    NodeStatus.online: "connected",
    NodeStatus.offline: "clean_stop",
    NodeStatus.lost: "will",
}


class NodeFacts(Protocol):
    """What presence reads and sets of a node: a Node, or ingestion's plain row of one."""

    id: str
    area_id: str
    status: str
    boot: int
    firmware: str
    last_seen: datetime | None


class Seen(Protocol):
    """What a node's presence is judged by: a Node, or a row of its columns."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def last_seen(self) -> datetime | None: ...


class Presence:
    """Online / offline / flapping of every node.

    A node that changes state `flap_changes` times within `flap_window_s` is *flapping*: it is
    reported so, and the offline alarm is neither raised nor cleared for it until it has calmed
    down (fewer than half as many changes in the window), so a bad link does not page anyone
    on every reconnect. The recent changes are kept in memory and re-read at start.
    """

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._changes: dict[str, deque[int]] = {}  # ms of recent changes, per node
        self.flapping: set[str] = set()
        self.since: dict[str, datetime] = {}  # when the node entered its current state
        self._session_ts: dict[str, int] = {}  # node time of the current session's `online`
        self.stale = 0  # state messages ignored as out of date

    def now(self) -> datetime:
        return utc_datetime(self.clock.now_ms())

    def mark(self, node_ids: Iterable[str]) -> PresenceMark:
        """What is held in memory of these nodes, to put back (`restore`) when the transaction
        that changes it is rolled back: a batch written again must be judged as the first time
        (an `online` taken for stale, a change counted twice toward flapping, otherwise)."""
        with self._lock:
            return {
                node_id: (
                    self.since.get(node_id),
                    self._session_ts.get(node_id),
                    tuple(self._changes.get(node_id, ())),
                    node_id in self.flapping,
                )
                for node_id in node_ids
            }

    def restore(self, mark: PresenceMark) -> None:
        with self._lock:
            for node_id, (since, session_ts, changes, flapping) in mark.items():
                _put(self.since, node_id, since)
                _put(self._session_ts, node_id, session_ts)
                _put(self._changes, node_id, deque(changes) if changes else None)
                if flapping:
                    self.flapping.add(node_id)
                else:
                    self.flapping.discard(node_id)

    def load(self, session: Session) -> None:
        """Rebuild what is kept in memory from the recorded changes."""
        horizon = self.now() - timedelta(seconds=self.settings.flap_window_s)
        rows = session.exec(
            select(NodeStateChange.node_id, NodeStateChange.ts)
            .where(col(NodeStateChange.ts) >= horizon)
            .order_by(col(NodeStateChange.ts))
        ).all()
        latest = session.exec(
            select(NodeStateChange.node_id, func.max(NodeStateChange.ts)).group_by(
                col(NodeStateChange.node_id)
            )
        ).all()
        with self._lock:
            self._changes.clear()
            for node_id, ts in rows:
                self._changes.setdefault(node_id, deque()).append(utc_ms(ts))
            self.since = {node_id: ts for node_id, ts in latest}
            self.flapping = {
                n for n, d in self._changes.items() if len(d) >= self.settings.flap_changes
            }

    def state_of(self, node: Seen) -> str:
        """What a technician sees: online, offline, flapping or unknown (never seen)."""
        if node.id in self.flapping:
            return "flapping"
        if node.status == "online":
            return "online"
        if node.status == "unknown" or node.last_seen is None:
            return "unknown"
        return "offline"

    def on_state(
        self, session: Session, node: NodeFacts, report: NodeState, received: datetime
    ) -> dict[str, Any] | None:
        """A state message (or the broker's last will, status `lost`)."""
        since = self.since.get(node.id)
        if report.status == NodeStatus.online and since is not None and report.ts < utc_ms(since):
            # A retained `online` older than the last change we saw: re-delivered when the
            # controller reconnected, it says nothing about now.
            self.stale += 1
            return None
        session_ts = self._session_ts.get(node.id)
        if (
            report.status == NodeStatus.lost
            and session_ts is not None
            and report.ts < session_ts - STALE_WILL_MS
        ):
            self.stale += 1
            return None
        if report.status == NodeStatus.online:
            self._session_ts[node.id] = report.ts
        node.boot = report.boot
        node.firmware = report.firmware[:100]
        node.last_seen = received
        return self.observe(session, node, report.status.value, _REASONS[report.status], received)

    def on_heartbeat(
        self, session: Session, node: NodeFacts, received: datetime
    ) -> dict[str, Any] | None:
        node.last_seen = received
        if node.status == "online":
            return None
        return self.observe(session, node, "online", "heartbeat", received)

    def observe(
        self, session: Session, node: NodeFacts, status: str, reason: str, when: datetime
    ) -> dict[str, Any] | None:
        """Set the node's raw status; record a change when it went online or offline."""
        was_online = node.status == "online"
        previous = (
            "online" if was_online else ("unknown" if node.status == "unknown" else "offline")
        )
        node.status = status
        now_online = status == "online"
        if was_online == now_online and previous != "unknown":
            return None
        state = "online" if now_online else "offline"
        flapping = self._note(node.id, utc_ms(when))
        # Written with the others of the transaction by store(): a reconnect burst changes
        # thousands at once.
        session.info.setdefault(_PENDING, []).append(
            {
                "node_id": node.id,
                "ts": when,
                "state": state,
                "previous": previous,
                "reason": reason,
                "flapping": flapping,
            }
        )
        return {
            "type": "node",
            "node_id": node.id,
            "area_id": node.area_id,
            "status": status,
            "state": "flapping" if flapping else state,
            "reason": reason,
        }

    @staticmethod
    def store(session: Session) -> None:
        """Write the state changes observe() noted in this session, in one statement."""
        insert_rows(session, NodeStateChange, session.info.pop(_PENDING, []))

    def _note(self, node_id: str, when_ms: int) -> bool:
        with self._lock:
            changes = self._changes.setdefault(node_id, deque())
            changes.append(when_ms)
            self._prune(node_id, when_ms)
            if len(changes) >= self.settings.flap_changes and node_id not in self.flapping:
                self.flapping.add(node_id)
                log.warning("node %s is flapping (%d changes)", node_id, len(changes))
            self.since[node_id] = utc_datetime(when_ms)
            return node_id in self.flapping

    def _prune(self, node_id: str, now_ms: int) -> None:
        changes = self._changes.get(node_id)
        if changes is None:
            return
        horizon = now_ms - int(self.settings.flap_window_s * 1000)
        while changes and changes[0] < horizon:
            changes.popleft()
        # Hysteresis: calm only when well under the threshold, so it does not flap itself.
        if node_id in self.flapping and len(changes) < max(1, self.settings.flap_changes // 2):
            self.flapping.discard(node_id)
            log.info("node %s calmed down", node_id)
        if not changes:
            del self._changes[node_id]

    def settle(self) -> None:
        """Let old changes leave the window (nodes stop flapping without any new message)."""
        now_ms = self.clock.now_ms()
        with self._lock:
            for node_id in list(self._changes):
                self._prune(node_id, now_ms)

    def sweep(self, session: Session) -> list[dict[str, Any]]:
        """A node silent for longer than the heartbeat timeout is offline, will or not."""
        now = self.now()
        cutoff = now - timedelta(seconds=self.settings.offline_after_s)
        stale = session.exec(
            select(Node)
            .where(
                Node.status == "online",
                col(Node.last_seen) < cutoff,
                Node.retired == False,  # noqa: E712
            )
            .order_by(col(Node.id))
        ).all()
        changes = []
        for node in stale:
            change = self.observe(session, node, "offline", "heartbeat_timeout", now)
            session.add(node)
            if change:
                changes.append(change)
        self.store(session)
        session.commit()
        if stale:
            log.info(
                "%d node(s) silent past %.0f s: offline", len(stale), self.settings.offline_after_s
            )
        return changes


# Per node: when it entered its state, its session's node time, its recent changes, flapping.
PresenceMark = dict[str, tuple[datetime | None, int | None, tuple[int, ...], bool]]


def _put(table: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
