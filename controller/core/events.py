"""What happens in the controller, as typed events: ingestion's reports once stored, alarms and
alerts as they change. Subscribers name the kinds they want and get a handle that unsubscribes
(`close()`, or leaving its `with` block). Listeners are isolated from one another and from the
publisher: one that raises is logged and counted, and a live view that falls behind loses the
events that come while its queue is full (counted), for itself alone, instead of holding anyone
up.

Publish on the event loop's thread (callbacks run inline; a live view's queue is an asyncio
queue); code on another thread hands its event over with `loop.call_soon_threadsafe`."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar, overload

from protocol import CommandAck

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened; `kind` names it on the wire (the server-sent event's name)."""

    kind: ClassVar[str] = ""

    def wire(self) -> dict[str, Any]:
        """The event as the API's server-sent events carry it."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class NodeStatusChanged(Event):
    """A node went online, offline or lost (with device health: its state, maybe flapping)."""

    kind: ClassVar[str] = "node"
    node_id: str
    status: str
    area_id: str | None = None
    state: str | None = None  # online, offline or flapping (device health's judgement)
    reason: str | None = None

    @classmethod
    def from_presence(cls, change: Mapping[str, Any]) -> NodeStatusChanged:
        """From device health's record of a change (`Presence.observe`)."""
        return cls(
            node_id=change["node_id"],
            status=change["status"],
            area_id=change.get("area_id"),
            state=change.get("state"),
            reason=change.get("reason"),
        )

    def wire(self) -> dict[str, Any]:
        if self.state is None:
            return {"type": self.kind, "node_id": self.node_id, "status": self.status}
        return {
            "type": self.kind,
            "node_id": self.node_id,
            "area_id": self.area_id,
            "status": self.status,
            "state": self.state,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class DeliveryChanged(Event):
    """A timeline item's delivery to a node moved on (downloaded, started, finished, ...)."""

    kind: ClassVar[str] = "delivery"
    node_id: str
    schedule_id: int
    item_id: str
    state: str
    latency_ms: int | None = None  # a start: reported start minus scheduled start

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.kind,
            "node_id": self.node_id,
            "schedule_id": self.schedule_id,
            "item_id": self.item_id,
            "state": self.state,
        }
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out


@dataclass(frozen=True, slots=True)
class _AlertReceipt(Event):
    kind: ClassVar[str] = "alert_receipt"
    alert_id: str
    node_id: str
    event: str  # alert_received, alert_started, alert_finished, alert_stopped, alert_failed

    def wire(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "alert_id": self.alert_id,
            "node_id": self.node_id,
            "event": self.event,
        }


@dataclass(frozen=True, slots=True)
class AlertReceiptHeard(_AlertReceipt):
    """A node's confirmation of an alert the moment ingestion hears it, before it is stored:
    what the alert's live views show."""


@dataclass(frozen=True, slots=True)
class AlertReceiptStored(_AlertReceipt):
    """A node's confirmation of an alert, stored (received, started, finished, stopped,
    failed)."""


@dataclass(frozen=True, slots=True)
class AlertChanged(Event):
    """An alert was published, withdrawn or closed."""

    kind: ClassVar[str] = "alert"
    alert_id: str
    status: str
    version: int | None = None  # given when it was (re)published

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "alert_id": self.alert_id, "status": self.status}
        if self.version is not None:
            out["version"] = self.version
        return out


@dataclass(frozen=True, slots=True)
class AlarmChanged(Event):
    """A device alarm was raised, acknowledged or cleared (committed)."""

    kind: ClassVar[str] = "alarm"
    alarm_id: int
    node_id: str
    alarm: str  # its kind: offline, speaker_fault, ...
    change: str  # raised, acknowledged, cleared, ...
    area_id: str | None
    record: Mapping[str, Any]  # the alarm's row as JSON, as the API shows it

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> AlarmChanged:
        """From the alarm book's snapshot (`health.alarms.snapshot`)."""
        record = {k: v for k, v in snapshot.items() if k not in ("type", "change", "area_id")}
        return cls(
            alarm_id=int(snapshot["id"]),
            node_id=str(snapshot["node_id"]),
            alarm=str(snapshot["kind"]),
            change=str(snapshot["change"]),
            area_id=snapshot.get("area_id"),
            record=record,
        )

    def wire(self) -> dict[str, Any]:
        return {**self.record, "type": self.kind, "change": self.change, "area_id": self.area_id}


@dataclass(frozen=True, slots=True)
class CommandAckHeard(Event):
    """A node answered a command (heard on arrival, before it is stored)."""

    kind: ClassVar[str] = "command_ack"
    node_id: str
    ack: CommandAck

    def wire(self) -> dict[str, Any]:
        return {"type": self.kind, "node_id": self.node_id, "ack": self.ack.model_dump(mode="json")}


E = TypeVar("E", bound=Event)
E2 = TypeVar("E2", bound=Event)


class Subscription:
    """A listener's hold on the events; `close()` (or the end of its `with`) lets go. Closing
    twice does nothing."""

    def __init__(self, changes: Changes, kinds: tuple[type[Event], ...], name: str) -> None:
        self._changes = changes
        self.kinds = kinds
        self.name = name

    @property
    def closed(self) -> bool:
        return self not in self._changes._subscriptions

    def close(self) -> None:
        self._changes._drop(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _deliver(self, event: Event) -> None:
        raise NotImplementedError


class Callback(Subscription, Generic[E]):
    """Calls a function with each event, inline (it must be quick and must not block)."""

    def __init__(
        self,
        changes: Changes,
        kinds: tuple[type[Event], ...],
        listener: Callable[[E], None],
        name: str,
    ) -> None:
        super().__init__(changes, kinds, name)
        self.listener = listener

    def _deliver(self, event: Event) -> None:
        self.listener(event)  # type: ignore[arg-type]  # kinds were checked by the publisher


class Listening(Subscription, Generic[E]):
    """Events kept in a bounded queue for an async reader (a live view). When the reader falls
    `maxsize` behind, newer events are dropped for this reader alone and counted."""

    def __init__(
        self, changes: Changes, kinds: tuple[type[Event], ...], maxsize: int, name: str
    ) -> None:
        super().__init__(changes, kinds, name)
        self.queue: asyncio.Queue[E] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _deliver(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)  # type: ignore[arg-type]  # kinds were checked
        except asyncio.QueueFull:
            self.dropped += 1
            self._changes.dropped[self.name] += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s falls behind: %d event(s) dropped", self.name, self.dropped)

    async def get(self, timeout: float | None = None) -> E | None:
        """The next event, or None after `timeout` seconds without one (0: only one waiting)."""
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout is not None and timeout <= 0:
                return None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def __enter__(self) -> Listening[E]:
        return self


def _name_of(listener: Callable[..., Any]) -> str:
    return str(getattr(listener, "__qualname__", None) or repr(listener))


def _kinds(kinds: type[Event] | tuple[type[Event], ...]) -> tuple[type[Event], ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


class Changes:
    """The subscribers of one controller's events."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self.failures: Counter[str] = Counter()  # per listener that raised, for /metrics
        self.dropped: Counter[str] = Counter()  # per live view that fell behind, for /metrics

    @overload
    def subscribe(
        self, kinds: type[E], listener: Callable[[E], None], name: str | None = None
    ) -> Callback[E]: ...

    @overload
    def subscribe(
        self,
        kinds: tuple[type[E], type[E2]],
        listener: Callable[[E | E2], None],
        name: str | None = None,
    ) -> Callback[E | E2]: ...

    def subscribe(
        self,
        kinds: type[Event] | tuple[type[Event], ...],
        listener: Callable[[Any], None],
        name: str | None = None,
    ) -> Callback[Any]:
        """Call `listener` with every event of these kinds from now on, until the handle is
        closed. It runs inline on the publisher's turn: quick, never blocking."""
        sub = Callback(self, _kinds(kinds), listener, name or _name_of(listener))
        self._subscriptions.append(sub)
        return sub

    @overload
    def listen(self, kinds: type[E], name: str, maxsize: int = 1000) -> Listening[E]: ...

    @overload
    def listen(
        self, kinds: tuple[type[E], type[E2]], name: str, maxsize: int = 1000
    ) -> Listening[E | E2]: ...

    def listen(
        self, kinds: type[Event] | tuple[type[Event], ...], name: str, maxsize: int = 1000
    ) -> Listening[Any]:
        """A queue of every event of these kinds from now on, for an async reader."""
        sub: Listening[Any] = Listening(self, _kinds(kinds), maxsize, name)
        self._subscriptions.append(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in list(self._subscriptions):
            if not isinstance(event, sub.kinds):
                continue
            try:
                sub._deliver(event)
            except Exception:
                self.failures[sub.name] += 1
                log.exception("a listener of %s events failed: %s", event.kind, sub.name)

    def _drop(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def __len__(self) -> int:
        return len(self._subscriptions)
