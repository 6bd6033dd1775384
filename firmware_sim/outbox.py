"""Events waiting to reach the controller: kept in order across disconnects, bounded in size."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from protocol import Clock, EventType, NodeEvent

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000
# Events waiting together go in one message (docs/protocol.md, "Sending reports"): an alert's
# receipt and start are one publish and one acknowledgement, not two of each.
EVENTS_PER_MESSAGE = 50
MESSAGE_BYTES = 16 * 1024  # well within the protocol's 64 KiB


@dataclass(frozen=True)
class Waiting:
    """One message of events: its payload and the ids it carries, forgotten at its PUBACK."""

    payload: bytes
    ids: list[str]


class Emit(Protocol):
    """How node components report something that happened (the node fills in id, ts, node_id)."""

    def __call__(
        self,
        type: EventType,
        *,
        item_id: str | None = None,
        broadcast_id: str | None = None,
        timeline_version: int | None = None,
        sha256: str | None = None,
        detail: str = "",
    ) -> None: ...


class Reporter:
    """The node's `Emit`: fills in the event's id, time and node, and queues it in the outbox.

    An event's id is 32 hex digits, as a random UUID's: 16 drawn at random when the node
    starts, then the count of its events since. Unique as long as no two starts draw the same
    16, and one system call per start instead of one per event (an alert makes two events on
    each node, and a process emulates thousands of nodes)."""

    def __init__(self, node_id: str, clock: Clock, outbox: Outbox) -> None:
        self.node_id = node_id
        self.clock = clock
        self.outbox = outbox
        self._id_prefix = os.urandom(8).hex()
        self._count = 0

    def __call__(
        self,
        type: EventType,
        *,
        item_id: str | None = None,
        broadcast_id: str | None = None,
        timeline_version: int | None = None,
        sha256: str | None = None,
        detail: str = "",
    ) -> None:
        self._count += 1
        try:
            event = NodeEvent(
                id=f"{self._id_prefix}{self._count:016x}",
                node_id=self.node_id,
                ts=self.clock.now_ms(),
                type=type,
                item_id=item_id,
                broadcast_id=broadcast_id,
                timeline_version=timeline_version,
                sha256=sha256,
                detail=detail[:500],
            )
        except ValueError as exc:  # a bug of ours must not stop playback
            log.error("%s: cannot build %s event: %s", self.node_id, type, exc)
            return
        self.outbox.push(event)


class Outbox:
    """FIFO of NodeEvents. An event leaves only after the broker acknowledged it (`ack`).

    With a `path`, events are also appended to a JSON-lines file and reloaded on start, so a
    real node keeps them across reboots. Sent events are dropped from the file only when it is
    compacted; a crash in between re-sends some, which the controller de-duplicates by id.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, path: Path | None = None) -> None:
        self.capacity = capacity
        self.path = path
        self.dropped = 0
        self.pushed = 0  # events put in since start (a soak compares them with what is stored)
        self._events: deque[NodeEvent] = deque()
        self._ready = asyncio.Event()
        self._acks_since_compact = 0
        if path is not None:
            self._load(path)

    def __len__(self) -> int:
        return len(self._events)

    def push(self, event: NodeEvent) -> None:
        self.pushed += 1
        if len(self._events) >= self.capacity:
            # Oldest first: recent events describe the current state better.
            self._events.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "outbox full (%d): dropped %d events so far", self.capacity, self.dropped
                )
        self._events.append(event)
        self._ready.set()
        if self.path is not None:
            self._append(event)

    async def next(self) -> NodeEvent:
        """The oldest unsent event; waits while the outbox is empty."""
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events[0]

    def message(self, most: int = EVENTS_PER_MESSAGE, size: int = MESSAGE_BYTES) -> Waiting:
        """The oldest unsent events as one message: up to `most` of them within `size` bytes,
        a JSON array when there are several, the event alone when there is one; no ids when
        the outbox is empty (`next` waits for an event)."""
        dumped: list[bytes] = []
        ids: list[str] = []
        length = 2  # the brackets
        for event in self._events:
            if len(dumped) >= most:
                break
            one = event.model_dump_json().encode()
            length += len(one) + 1
            if dumped and length > size:
                break
            dumped.append(one)
            ids.append(event.id)
        if len(dumped) <= 1:
            return Waiting(b"".join(dumped), ids)
        return Waiting(b"[" + b",".join(dumped) + b"]", ids)

    def ack(self, *event_ids: str) -> None:
        """Forget events the broker has acknowledged."""
        for event_id in event_ids:
            if self._events and self._events[0].id == event_id:
                self._events.popleft()
            else:
                # The head moved while publishing (overflow dropped it): find it, if still here.
                for i, event in enumerate(self._events):
                    if event.id == event_id:
                        del self._events[i]
                        break
        self._acks_since_compact += len(event_ids)
        if self.path is not None and (not self._events or self._acks_since_compact >= 200):
            self._compact()

    def pending(self) -> list[NodeEvent]:
        return list(self._events)

    def _append(self, event: NodeEvent) -> None:
        assert self.path is not None
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(event.model_dump_json() + "\n")
        except OSError as exc:
            log.warning("cannot persist event to %s: %s", self.path, exc)

    def _compact(self) -> None:
        assert self.path is not None
        self._acks_since_compact = 0
        tmp = self.path.with_suffix(".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.writelines(e.model_dump_json() + "\n" for e in self._events)
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("cannot compact outbox %s: %s", self.path, exc)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read outbox %s: %s", path, exc)
            return
        seen: set[str] = set()
        for line in lines:
            try:
                event = NodeEvent.model_validate_json(line)
            except ValidationError:
                continue  # a torn last line after power loss
            if event.id not in seen:
                seen.add(event.id)
                self._events.append(event)
        while len(self._events) > self.capacity:
            self._events.popleft()
            self.dropped += 1
        if self._events:
            self._ready.set()
        self._compact()
