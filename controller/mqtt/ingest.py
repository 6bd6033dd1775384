"""Ingestion of node reports: state, heartbeats, playback events and command acks.

Messages are parsed on arrival (bad ones counted by reason and dropped), queued, and written
in batches in one transaction each, so a burst from thousands of nodes costs few commits.
Events are de-duplicated by their id; deliveries only move forward.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from controller.core.db import (
    UNSTORABLE,
    Database,
    database_failed,
    in_chunks,
    insert_rows,
    is_transient,
    lock_order,
    rows_by_pair,
    update_rows,
)
from controller.core.events import (
    Changes,
    CommandAckHeard,
    DeliveryChanged,
    Event,
    NodeStatusChanged,
)
from controller.core.models import Delivery, DeliveryState, Node, NodeEventRecord
from controller.core.time import utc_datetime, utc_ms
from controller.mqtt.ingest_guard import QuietLog
from protocol import (
    CommandAck,
    EventType,
    NodeEvent,
    NodeState,
    ProtocolError,
    Telemetry,
    Topics,
    parse_node_reports,
)
from protocol.clock import Clock

log = logging.getLogger(__name__)

# A batch is what the queue holds when the writer is free, up to BATCH reports; a first report
# waits up to BATCH_WAIT_S for company (one transaction for a burst's first moments, not one
# for each of its first reports).
BATCH = 2000
RETRY_S = 1.0  # after a failed write, before it goes again
# A report as queued: node id, kind, the parsed report, when it arrived.
Item = tuple[str, str, Any, datetime]
BATCH_WAIT_S = 0.02
_RANK = {
    DeliveryState.planned: 0,
    DeliveryState.delivered: 1,
    DeliveryState.downloaded: 2,
    DeliveryState.started: 3,
    DeliveryState.finished: 4,
    DeliveryState.failed: 4,
    DeliveryState.preempted: 4,
    DeliveryState.missed: 4,
    # What a node reports it did outranks a cancellation it may not have heard of in time.
    DeliveryState.cancelled: 0,
}
_EVENT_STATE = {
    EventType.media_ready: DeliveryState.downloaded,
    EventType.playback_started: DeliveryState.started,
    EventType.playback_finished: DeliveryState.finished,
    EventType.playback_failed: DeliveryState.failed,
    EventType.playback_preempted: DeliveryState.preempted,
    EventType.playback_missed: DeliveryState.missed,
}
_EVENT_STAMP = {
    DeliveryState.downloaded: "downloaded_at",
    DeliveryState.started: "started_at",
    DeliveryState.finished: "finished_at",
    DeliveryState.failed: "failed_at",
    DeliveryState.preempted: "finished_at",
    DeliveryState.missed: "failed_at",
}


@dataclass(slots=True)
class NodeRow:
    """What ingestion reads and changes of a node: plain values, not an ORM object (a batch of
    thousands is read, changed and written back in a few statements)."""

    id: str
    area_id: str
    status: str
    boot: int
    firmware: str
    last_seen: datetime | None
    read: tuple[Any, ...] = ()  # status, boot, firmware, last_seen as read

    def changed(self) -> bool:
        return (self.status, self.boot, self.firmware, self.last_seen) != self.read


def lock_nodes(session: Session, node_ids: set[str]) -> dict[str, NodeRow]:
    """The batch's node rows, locked up front in ascending id as every writer of node rows
    takes them (the timeline computation too): two instances or two tasks on PostgreSQL never
    wait on each other in a circle, whatever order the reports are in. The lock is FOR NO KEY
    UPDATE, what an UPDATE of these columns takes anyway: it leaves the rows free for the
    foreign-key checks of rows that name a node (alarms, events, deliveries), which another
    transaction makes in whatever order it likes (with FOR UPDATE, such an insert and this
    lock deadlocked)."""
    found: dict[str, NodeRow] = {}
    for chunk in in_chunks(sorted(node_ids)):
        for node_id, area_id, status, boot, firmware, last_seen in session.exec(
            select(Node.id, Node.area_id, Node.status, Node.boot, Node.firmware, Node.last_seen)  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
            .where(col(Node.id).in_(chunk))
            .order_by(lock_order(session, col(Node.id)))
            .with_for_update(key_share=True)
        ).all():
            read = (status, boot, firmware, last_seen)
            found[node_id] = NodeRow(node_id, area_id, status, boot, firmware, last_seen, read)
    return found


def store_nodes(session: Session, rows: Iterable[NodeRow]) -> None:
    """Write back what changed of the rows, in one statement (per thousand on PostgreSQL)."""
    update_rows(
        session,
        Node.__table__,  # type: ignore[attr-defined]
        "id",
        [
            {
                "id": r.id,
                "status": r.status,
                "boot": r.boot,
                "firmware": r.firmware,
                "last_seen": r.last_seen,
            }
            for r in rows
            if r.changed()
        ],
    )


class Presence(Protocol):
    """Device health's bookkeeping of states and heartbeats, written in ingestion's transaction."""

    def on_state(
        self, session: Session, node: NodeRow, report: NodeState, received: datetime, /
    ) -> dict[str, Any] | None: ...

    def on_heartbeat(
        self, session: Session, node: NodeRow, received: datetime, /
    ) -> dict[str, Any] | None: ...

    def store(self, session: Session, /) -> None: ...

    def mark(self, node_ids: set[str], /) -> Any:
        """What it holds in memory of these nodes, to `restore` if the transaction fails."""

    def restore(self, mark: Any, /) -> None: ...


class TelemetryStore(Protocol):
    def record(
        self, session: Session, heartbeats: list[tuple[str, Telemetry, datetime]]
    ) -> None: ...


class HealthWriter(Protocol):
    """What ingestion asks of device health (controller.health.DeviceHealth), without
    importing it: health sits above ingestion and subscribes to it."""

    @property
    def presence(self) -> Presence: ...

    @property
    def telemetry(self) -> TelemetryStore: ...

    def screen(self, node_id: str, kind: str, report: Any, /) -> str | None: ...


# Writes a batch's events of a kind (by the prefix of their type) in ingestion's transaction,
# each as (node, item, type, the node's ms, detail) in arrival order, returning the events to
# announce. Registered by the domain that owns the events (alerts).
EventWriter = Callable[[Session, list[tuple[str, str, str, int, str]]], Sequence[Event]]
# Hears one event of a kind the moment it arrives, before it is stored, returning the event to
# announce at once, if any: what live views show from memory (the alert board).
EventHearer = Callable[[str, str, str, int, str], Event | None]


def registry_stamp(session: Session) -> tuple[Any, ...]:
    """What changes when a node is registered, removed, retired or brought back: the count and
    the newest registration, counted in SQL, and the retired nodes' ids (few). Reading every
    node's row every few seconds held the interpreter some 20–40 ms at 10,000 nodes."""
    count, newest = session.exec(select(func.count(), func.max(Node.created_at))).one()
    retired = session.exec(
        select(Node.id).where(Node.retired == True).order_by(col(Node.id))  # noqa: E712
    ).all()
    return (count, newest, tuple(retired))


class ReportIngest:
    def __init__(
        self,
        db: Database,
        topics: Topics,
        clock: Clock,
        health: HealthWriter | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.db = db
        self.topics = topics
        self.clock = clock
        self.health = health
        self.quiet = QuietLog(log)
        self.queue: asyncio.Queue[tuple[str, str, Any, datetime]] = asyncio.Queue(maxsize=200_000)
        self.in_hand = 0  # reports taken from the queue and not yet written (see `waiting`)
        self.stats: Counter[str] = Counter()
        self.known_nodes: set[str] = set()
        self.changes = changes if changes is not None else Changes()
        # Writers of events that belong to other domains, by the prefix of the event type.
        self.event_writers: dict[str, EventWriter] = {}
        self.event_hearers: dict[str, EventHearer] = {}
        self.parked: list[tuple[str, str, list[Any]]] = []  # (node, kind, reports)
        self.parked_reports = 0  # in `parked`, bounded
        self.registry_check = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Reports not yet written: queued, or in the batch being written (or waiting to go
        again while the database is away)."""
        return self.queue.qsize() + self.in_hand

    def reload_nodes(self) -> None:
        with self.db.session() as session:
            self.known_nodes = set(session.exec(select(Node.id).where(Node.retired == False)).all())  # noqa: E712

    def handle(self, topic: str, payload: bytes) -> None:
        """Called by the gateway for every message: parse now, write later. A message may
        carry several events (sent together): each is taken or refused on its own."""
        try:
            message = parse_node_reports(self.topics, topic, payload)
        except ProtocolError as exc:
            self._refuse(topic, exc)
            return
        for refused in message.refused:
            self._refuse(topic, refused)
        if not message.reports:
            return
        node_id, kind = message.node_id, message.kind
        if node_id not in self.known_nodes:
            # Perhaps registered a moment ago by another process: park it until the registry
            # is re-read; a node that stays unknown is dropped, never created.
            if self.parked_reports < 10_000:
                self.parked.append((node_id, kind, message.reports))
                self.parked_reports += len(message.reports)
                self.registry_check.set()
            else:
                self.stats["rejected:unknown_node"] += len(message.reports)
            return
        for report in message.reports:
            self._take(node_id, kind, report)

    def _refuse(self, topic: str, exc: ProtocolError) -> None:
        self.stats[f"rejected:{exc.reason}"] += 1
        self.quiet.warning(exc.reason, "dropped message on %s: %s", topic[:120], exc)

    def _take(self, node_id: str, kind: str, report: Any) -> None:
        if self.health is not None:
            refusal = self.health.screen(node_id, kind, report)
            if refusal is not None:
                self.stats[f"rejected:{refusal}"] += 1
                return
        self.stats[f"accepted:{kind}"] += 1
        if isinstance(report, CommandAck):
            # Commands follow their acks (progress too) as they arrive, not per batch written.
            self.changes.publish(CommandAckHeard(node_id, report))
        try:
            # The controller's clock (scaled in tests), so heartbeat timeouts and alarm
            # thresholds are measured on the same time as schedules.
            self.queue.put_nowait((node_id, kind, report, utc_datetime(self.clock.now_ms())))
        except asyncio.QueueFull:
            self.stats["dropped:queue_full"] += 1
            return
        if isinstance(report, NodeEvent) and report.item_id:
            # On its way to the database: live views may show it now.
            self._hear(report)

    def _hear(self, ev: NodeEvent) -> None:
        for prefix, hearer in self.event_hearers.items():
            if ev.type.value.startswith(prefix) and ev.item_id:
                try:
                    heard = hearer(ev.node_id, ev.item_id, ev.type.value, ev.ts, ev.detail)
                except Exception:
                    # The record is still written; only the live view waits for the refresh.
                    log.exception("hearing %s from %s failed", ev.type.value, ev.node_id)
                    return
                if heard is not None:
                    self.changes.publish(heard)

    async def watch_registry(self, on_change: Callable[[], Any], interval_s: float = 5.0) -> None:
        """Re-read the registry when it changes (or an unknown node speaks)."""
        last: tuple[Any, ...] | None = None
        while True:
            try:
                await asyncio.wait_for(self.registry_check.wait(), timeout=interval_s)
            except TimeoutError:
                pass
            self.registry_check.clear()
            try:
                stamp = await asyncio.to_thread(self._registry_stamp)
                if stamp != last:
                    if last is not None:
                        await on_change()
                    last = stamp
                parked, self.parked, self.parked_reports = self.parked, [], 0
                if parked:
                    # Registered by another instance (or before this watch took its first
                    # look): read the nodes again before judging them unknown.
                    await asyncio.to_thread(self.reload_nodes)
                for node_id, kind, reports in parked:
                    if node_id in self.known_nodes:
                        for report in reports:
                            self._take(node_id, kind, report)
                    else:
                        self.stats["rejected:unknown_node"] += len(reports)
                        self.quiet.warning(
                            "unknown_node",
                            "dropped message from unknown or retired node %s",
                            node_id,
                        )
            except Exception:
                log.exception("registry check failed")
            await asyncio.sleep(0.5)

    def _registry_stamp(self) -> tuple[Any, ...]:
        with self.db.session() as session:
            return registry_stamp(session)

    async def run(self) -> None:
        failed: list[Item] = []
        alone = False  # write the failed batch's reports one at a time
        while True:
            # A batch that could not be written goes again, first: put back in the queue it
            # would lose its place, and its reports if the queue filled meanwhile.
            batch = failed or await self._next_batch()
            self.in_hand = len(batch)
            try:
                if failed and alone:
                    changes = await asyncio.to_thread(self.write_each, batch)
                else:
                    try:
                        changes = await asyncio.to_thread(self.write, batch)
                    except UNSTORABLE:
                        # A report the database refuses (a NUL in a text, a number past a
                        # column's range) must not hold up everyone's: each is written alone,
                        # and the refused ones are dropped and counted.
                        changes = await asyncio.to_thread(self.write_each, batch)
            except PartlyWritten as part:
                self._publish(part.changes)
                failed, alone = part.rest, True
                self.in_hand = len(failed)
                log.warning(
                    "writing reports failed (%s); %d left, again in %d s",
                    _why(part.__cause__),
                    len(part.rest),
                    RETRY_S,
                )
                await asyncio.sleep(RETRY_S)
                continue
            except Exception as exc:
                # A database outage must not kill ingestion: the batch waits and goes again.
                if database_failed(exc):  # a deadlock victim, or the database is away
                    what = "rolled back" if is_transient(exc) else "failed"
                    log.warning("writing %d reports %s (%s); again", len(batch), what, _why(exc))
                    failed, alone = batch, False
                else:  # something else: again report by report, to find any at fault
                    log.exception("writing %d reports failed; retrying", len(batch))
                    failed, alone = batch, True
                await asyncio.sleep(RETRY_S)
                continue
            failed, self.in_hand = [], 0
            self._publish(changes)

    def _publish(self, changes: list[Event]) -> None:
        for change in changes:
            self.changes.publish(change)

    async def _next_batch(self) -> list[Item]:
        batch = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        until = loop.time() + BATCH_WAIT_S
        while len(batch) < BATCH:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = until - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return batch

    def write_each(self, batch: list[Item]) -> list[Event]:
        """Each report in a transaction of its own. One the database refuses, or that this
        code fails on, is dropped and counted; when the database itself fails, what was
        written and what is left are raised (`PartlyWritten`)."""
        changes: list[Event] = []
        for i, item in enumerate(batch):
            try:
                changes += self.write([item])
            except UNSTORABLE as exc:
                self.stats["dropped:unstorable"] += 1
                self.quiet.warning(
                    "unstorable",
                    "dropped a %s report of %s the database refused: %s",
                    item[1],
                    item[0],
                    _why(exc),
                )
            except Exception as exc:
                if database_failed(exc):  # the database, not the report
                    raise PartlyWritten(changes, batch[i:]) from exc
                # A defect with this report (or one the database cannot take in a way not
                # foreseen) must not cost the others theirs, nor hold ingestion up for ever.
                self.stats["dropped:error"] += 1
                log.exception("dropped a %s report of %s that could not be written", *item[:2])
        return changes

    def write(self, batch: list[tuple[str, str, Any, datetime]]) -> list[Event]:
        """Store a batch in one transaction; the events to announce once it is committed.
        What presence holds in memory of the batch's nodes is put back if it is not."""
        if self.health is None:
            return self._write(batch)
        presence = self.health.presence
        mark = presence.mark({b[0] for b in batch})
        try:
            return self._write(batch)
        except BaseException:
            presence.restore(mark)
            raise

    def _write(self, batch: list[tuple[str, str, Any, datetime]]) -> list[Event]:
        changes: list[Event] = []
        with self.db.session() as session:
            nodes = lock_nodes(session, {b[0] for b in batch})
            heartbeats: list[tuple[str, Telemetry, datetime]] = []
            events: list[tuple[NodeEvent, datetime]] = []
            for node_id, _kind, report, received in batch:
                node = nodes.get(node_id)
                if node is None:
                    continue
                if self.health is not None and isinstance(report, NodeState | Telemetry):
                    presence = self.health.presence
                    if isinstance(report, NodeState):
                        change = presence.on_state(session, node, report, received)
                    else:
                        heartbeats.append((node_id, report, received))
                        change = presence.on_heartbeat(session, node, received)
                    if change:
                        changes.append(NodeStatusChanged.from_presence(change))
                elif isinstance(report, NodeState):
                    before = node.status
                    node.status = report.status.value
                    node.boot = report.boot
                    node.firmware = report.firmware[:100]
                    node.last_seen = received
                    if before != node.status:
                        changes.append(NodeStatusChanged(node_id, node.status, node.area_id))
                elif isinstance(report, Telemetry):
                    node.last_seen = received
                    if node.status != "online":
                        node.status = "online"
                        changes.append(NodeStatusChanged(node_id, "online", node.area_id))
                elif isinstance(report, NodeEvent):
                    node.last_seen = received
                    events.append((report, received))
            store_nodes(session, nodes.values())
            if self.health is not None:
                self.health.presence.store(session)
            changes += self._events(session, events)
            if self.health is not None:
                self.health.telemetry.record(session, heartbeats)
            session.commit()
        return changes

    def _events(self, session: Session, events: list[tuple[NodeEvent, datetime]]) -> list[Event]:
        """Store a batch's events and move their deliveries on, in a few statements for the
        whole batch: the ids already stored read at once, the new events inserted in one
        statement, applied timelines by one update each (sent together), and the deliveries the
        playback events are about read at once."""
        if not events:
            return []
        stored: set[str] = set()
        for chunk in in_chunks(sorted({ev.id for ev, _ in events})):
            stored.update(
                session.exec(
                    select(NodeEventRecord.id).where(col(NodeEventRecord.id).in_(chunk))
                ).all()
            )
        fresh: list[tuple[NodeEvent, datetime]] = []
        for ev, received in events:
            if ev.id in stored:  # stored before, or a second copy in this batch
                self.stats["duplicate:event"] += 1
                continue
            stored.add(ev.id)
            fresh.append((ev, received))
        if not fresh:
            return []
        insert_rows(
            session,
            NodeEventRecord,
            [
                {
                    "id": ev.id,
                    "node_id": ev.node_id,
                    "type": ev.type.value,
                    "ts": utc_datetime(ev.ts),
                    "received_at": received,
                    "item_id": ev.item_id,
                    "detail": ev.detail,
                }
                for ev, received in fresh
            ],
        )
        applied = [
            {"node": ev.node_id, "version": ev.timeline_version, "at": utc_datetime(ev.ts)}
            for ev, _ in fresh
            if ev.type == EventType.timeline_applied and ev.timeline_version is not None
        ]
        if applied:
            table = Delivery.__table__  # type: ignore[attr-defined]
            session.connection().execute(
                update(table)
                .where(
                    table.c.node_id == bindparam("node"),
                    table.c.state == DeliveryState.planned.value,
                    table.c.timeline_version <= bindparam("version"),
                )
                .values(state=DeliveryState.delivered.value, delivered_at=bindparam("at")),
                applied,
            )
        changes: list[Event] = []
        # Other domains' events (alerts), a batch per writer, in arrival order.
        handed: dict[str, list[tuple[str, str, str, int, str]]] = {}
        playback: list[NodeEvent] = []
        for ev, _received in fresh:
            prefix = next((p for p in self.event_writers if ev.type.value.startswith(p)), None)
            if prefix is not None and ev.item_id:
                handed.setdefault(prefix, []).append(
                    (ev.node_id, ev.item_id, ev.type.value, ev.ts, ev.detail)
                )
            elif ev.type in _EVENT_STATE and ev.item_id:
                playback.append(ev)
        for prefix, items in handed.items():
            changes += self.event_writers[prefix](session, items)
        changes += self._playback(session, playback)
        return changes

    def _playback(self, session: Session, events: list[NodeEvent]) -> list[Event]:
        """Move the deliveries the playback events are about on: read at once, changed in
        memory in arrival order, written back in one statement."""
        if not events:
            return []
        table = Delivery.__table__  # type: ignore[attr-defined]
        found = rows_by_pair(
            session, table, "node_id", "item_id", ((ev.node_id, ev.item_id) for ev in events)
        )
        changes: list[Event] = []
        touched: set[tuple[str, str]] = set()
        for ev in events:
            d = found.get((ev.node_id, ev.item_id or ""))
            if d is None:
                continue
            changes.append(_advance(d, ev))
            touched.add((ev.node_id, ev.item_id or ""))
        update_rows(
            session,
            table,
            "id",
            [{c: found[key][c] for c in _DELIVERY_CHANGES} for key in sorted(touched)],
        )
        return changes


# What a node's playback events change of a delivery (with its id, the key).
_DELIVERY_CHANGES = (
    "id",
    "state",
    "delivered_at",
    "downloaded_at",
    "started_at",
    "finished_at",
    "failed_at",
    "detail",
)


def _advance(d: dict[str, Any], ev: NodeEvent) -> DeliveryChanged:
    """A delivery (a row, as a dict) after one playback event of its node; the change to
    announce."""
    state = _EVENT_STATE[ev.type]
    at = utc_datetime(ev.ts)
    d[_EVENT_STAMP[state]] = at
    if d["delivered_at"] is None:
        d["delivered_at"] = at
    if _RANK[state] > _RANK.get(DeliveryState(d["state"]), 0):
        d["state"] = state.value
    if ev.detail:
        d["detail"] = ev.detail[:500]
    return DeliveryChanged(
        node_id=ev.node_id,
        schedule_id=d["schedule_id"],
        item_id=d["item_id"],
        state=d["state"],
        latency_ms=ev.ts - utc_ms(d["planned_start"]) if state == DeliveryState.started else None,
    )


class PartlyWritten(Exception):
    """The database failed part-way through a batch written report by report."""

    def __init__(self, changes: list[Event], rest: list[Item]) -> None:
        super().__init__(f"{len(rest)} reports not written")
        self.changes = changes
        self.rest = rest


def _why(exc: BaseException | None) -> str:
    lines = str(getattr(exc, "orig", exc)).splitlines() if exc is not None else []
    return lines[0][:200] if lines else type(exc).__name__
