"""What ingestion tells the rest of the controller, as it happens: typed change events, a
subscription that returns its own unsubscribe handle, and listeners isolated from one another
(one that raises is logged and counted; the others still hear the event)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class ChangeKind(StrEnum):
    """The kinds of change ingestion reports; a change is a dict whose "type" is its kind."""

    node = "node"  # a node's status changed (online, lost, offline)
    delivery = "delivery"  # a timeline item's delivery moved on (downloaded, started, ...)
    alert_receipt = "alert_receipt"  # a node confirmed (or failed) an alert
    command_ack = "command_ack"  # a node answered a command (heard on arrival, not per batch)
    presence = "presence"  # presence bookkeeping of device health
    telemetry = "telemetry"  # a heartbeat's readings were stored


Listener = Callable[[str, dict[str, Any]], None]


class Changes:
    """The subscribers of one controller's change events."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.failures: Counter[str] = Counter()  # per listener, for /metrics and tests

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear every change from now on; call the returned function to stop."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, kind: str, change: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, change)
            except Exception:
                name = getattr(listener, "__qualname__", repr(listener))
                self.failures[name] += 1
                log.exception("a listener of %s changes failed: %s", kind, name)

    def __len__(self) -> int:
        return len(self._listeners)
