"""The conditions behind each alarm kind, judged for the whole fleet in one pass."""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from controller.core.config import Settings
from controller.core.db import in_chunks
from controller.core.models import Alarm, Delivery, DeliveryState, Node, NodeEventRecord
from controller.health.alarms import AlarmBook, AlarmKind
from controller.health.presence import Presence
from controller.health.telemetry import Latest, Reading, TelemetryStore

log = logging.getLogger(__name__)

LatestFirmware = Callable[[Session], "str | None"]
# A decision per (node, kind): a detail to raise with, None to clear; absent: leave as it is
# (the condition cannot be judged now, e.g. no fresh heartbeat).
Decisions = dict[tuple[str, AlarmKind], "str | None"]

_PLAYED = {DeliveryState.started, DeliveryState.finished, DeliveryState.preempted}
_NOT_DUE = {DeliveryState.cancelled}


def firmware_source() -> LatestFirmware | None:
    """`controller.commands.firmware.latest_version(session)` when the firmware rollout is there."""
    try:
        module = importlib.import_module("controller.commands.firmware")
    except ImportError:
        return None
    return getattr(module, "latest_version", None)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def outdated(running: str, latest: str) -> bool:
    if not running or running == latest:
        return False
    a, b = _version_key(running), _version_key(latest)
    return a < b if a and b else True


# What the rules read of each node (the rows stand where a Node would: same attribute names).
NODE_FACTS = (Node.id, Node.retired, Node.status, Node.last_seen, Node.firmware, Node.hardware)


class NodeRow(NamedTuple):
    """NODE_FACTS of one node as a plain tuple: a pass reads some twenty attributes of each of
    ten thousand nodes, and a database row's attributes cost ten times a tuple's."""

    id: str
    retired: bool
    status: str
    last_seen: datetime | None
    firmware: str
    hardware: str


class AlarmRules:
    def __init__(
        self,
        settings: Settings,
        book: AlarmBook,
        presence: Presence,
        telemetry: TelemetryStore,
        latest_firmware: LatestFirmware | None = None,
    ) -> None:
        self.s = settings
        self.book = book
        self.presence = presence
        self.telemetry = telemetry
        self.latest_firmware = latest_firmware
        self._fresh_for = timedelta(seconds=settings.offline_after_s)
        self._lock = threading.Lock()
        self._alarmed: set[str] = set()  # nodes with an open alarm, as a pass began
        # Per node, its newest heartbeat when that was judged and found to raise nothing.
        self._all_clear: dict[str, Latest] = {}

    def evaluate(self, session: Session) -> tuple[int, int]:
        """Raise what is newly true, clear what ended; returns (raised, cleared). One pass at a
        time: a pass left running by a controller that lost the lead finishes first."""
        with self._lock:
            return self._evaluate(session)

    def _evaluate(self, session: Session) -> tuple[int, int]:
        now = self.book.now()
        self.presence.settle()
        # Columns, not objects: a pass over ten thousand nodes runs every few seconds in a burst.
        rows: Sequence[Any] = session.exec(select(*NODE_FACTS)).all()  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
        nodes = [NodeRow(*row) for row in rows]
        active = [n for n in nodes if not n.retired]
        open_now = {
            (a.node_id, AlarmKind(a.kind)): a
            for a in session.exec(select(Alarm).where(col(Alarm.cleared_at).is_(None))).all()
        }
        # A condition found not to hold is worth deciding only where an alarm is open: most
        # nodes have none, and most of a pass's decisions would be clears that change nothing.
        self._alarmed = {node_id for node_id, _kind in open_now}
        decisions: Decisions = {}
        for node in active:
            self._presence(node, now, decisions)
            self._heartbeat(node, now, decisions)
        if len(self._all_clear) > len(active):  # nodes retired or removed
            ids = {n.id for n in active}
            for node_id in [k for k in self._all_clear if k not in ids]:
                del self._all_clear[node_id]
        self._dead_air(session, active, now, decisions)
        self._media(session, active, now, decisions)
        self._firmware(session, active, decisions)
        raised = cleared = 0
        for (node_id, kind), detail in decisions.items():
            if detail is not None and (node_id, kind) not in open_now:
                raised += self.book.raise_alarm(session, node_id, kind, detail) is not None
            elif detail is not None:
                open_now[(node_id, kind)].detail = detail[:500]
                session.add(open_now[(node_id, kind)])
            elif (node_id, kind) in open_now:
                cleared += self.book.clear_alarm(session, node_id, kind) is not None
        retired = {n.id for n in nodes if n.retired}
        for (node_id, kind), _alarm in open_now.items():
            if node_id in retired:
                cleared += self.book.clear_alarm(session, node_id, kind, "node retired") is not None
        session.commit()
        return raised, cleared

    def _presence(self, node: NodeRow, now: datetime, out: Decisions) -> None:
        state = self.presence.state_of(node)
        if state == "online" and node.id not in self._alarmed:
            return  # neither flapping nor offline, and no alarm to clear
        out[(node.id, AlarmKind.flapping)] = (
            f"{self.s.flap_changes}+ state changes within {self.s.flap_window_s:.0f} s"
            if state == "flapping"
            else None
        )
        if state == "flapping":
            return  # damped: the offline alarm is neither raised nor cleared meanwhile
        if state == "online":
            out[(node.id, AlarmKind.offline)] = None
        elif state == "offline":
            since = self.presence.since.get(node.id) or node.last_seen
            if since is not None and now - since >= timedelta(seconds=self.s.alarm_offline_after_s):
                out[(node.id, AlarmKind.offline)] = (
                    f"offline since {since:%Y-%m-%d %H:%M:%S} UTC ({node.status})"
                )

    def _heartbeat(self, node: NodeRow, now: datetime, out: Decisions) -> None:
        node_id = node.id
        latest = self.telemetry.latest.get(node_id)
        if latest is None or now - latest.received > self._fresh_for:
            return  # nothing fresh to judge by: leave these alarms as they are
        if self._all_clear.get(node_id) is latest and node_id not in self._alarmed:
            # What a heartbeat says depends on it alone (and on the uplink samples kept with
            # it, which change only with the newest heartbeat): this one raised nothing when
            # it was judged, and there is nothing to clear.
            return
        found: Decisions = {}
        self._judge(node, latest.report, found)
        out.update(found)
        if any(detail is not None for detail in found.values()):
            self._all_clear.pop(node_id, None)
        else:
            self._all_clear[node_id] = latest

    def _judge(self, node: NodeRow, t: Reading, out: Decisions) -> None:
        """The alarms a heartbeat decides."""
        # None is unknown (not measured, not checked): such an alarm is left as it is.
        if t.speaker_ok is not None:
            out[(node.id, AlarmKind.speaker_fault)] = (
                None if t.speaker_ok else "speaker check failed"
            )
        if t.amplifier_ok is not None:
            out[(node.id, AlarmKind.amplifier_fault)] = (
                None if t.amplifier_ok else "amplifier check failed"
            )
        if t.power is not None:
            on_battery = t.power == "battery"
            out[(node.id, AlarmKind.mains_lost)] = (
                f"on battery ({t.battery_pct if t.battery_pct is not None else '?'} %)"
                if on_battery
                else None
            )
            if not on_battery or t.battery_pct is not None:
                low = on_battery and (t.battery_pct or 0) < self.s.alarm_low_battery_pct
                out[(node.id, AlarmKind.low_battery)] = (
                    f"battery at {t.battery_pct} %" if low else None
                )
        self._clock(node, t, out)
        limit = self.s.alarm_over_temperature_c
        key = (node.id, AlarmKind.over_temperature)
        if t.temperature_c is not None and t.temperature_c >= limit:
            out[key] = f"{t.temperature_c:.1f} °C (limit {limit:.0f} °C)"
        elif t.temperature_c is not None and t.temperature_c < limit - 5:
            out[key] = None  # 5 °C of hysteresis: a node at the limit does not flap the alarm
        storage = t.storage_free_mb
        out[(node.id, AlarmKind.storage_low)] = (
            f"{storage} MB free"
            if storage is not None and storage < self.s.alarm_storage_low_mb
            else None
        )

    def _clock(self, node: NodeRow, t: Reading, out: Decisions) -> None:
        """Off by more than the limit, measured through the protocol or by the node's time
        daemon: raise; within it by both (as far as they are known): clear; else leave."""
        limit = self.s.alarm_clock_offset_ms
        measured = self.telemetry.clock_offset(node.id)
        verdict = measured.beyond(limit) if measured is not None else None
        daemon = None if t.clock_offset_ms is None else abs(t.clock_offset_ms) > limit
        key = (node.id, AlarmKind.clock_offset)
        if verdict:
            assert measured is not None
            out[key] = (
                f"{measured.offset_ms:+.0f} ms from the controller's clock "
                f"({measured.method.replace('_', ' ')}; limit {limit:.0f} ms)"
            )
        elif daemon:
            out[key] = (
                f"{t.clock_offset_ms:+.1f} ms from true time by {t.clock_source or 'its daemon'} "
                f"(limit {limit:.0f} ms)"
            )
        elif verdict is False:  # and the daemon, if it says, agrees
            out[key] = None

    def _dead_air(
        self, session: Session, nodes: list[NodeRow], now: datetime, out: Decisions
    ) -> None:
        """Online, yet the newest item that should have ended by now was not played.

        A day of a province's deliveries is hundreds of thousands of rows, and this runs every
        RADIO_ALARM_CHECK_S (10 s): the database finds each node's newest item begun by now
        (one row per node, as columns); only a node whose newest item is still playing has its
        day read, for the item before it."""
        grace = timedelta(seconds=self.s.alarm_dead_air_grace_s)
        online = {
            n.id
            for n in nodes
            if self.presence.state_of(n) == "online"
            and now - (self.presence.since.get(n.id) or now) >= grace
        }
        if not online:
            return
        within = (
            col(Delivery.planned_start) >= now - timedelta(hours=self.s.alarm_dead_air_lookback_h),
            col(Delivery.planned_start) <= now - grace,
            col(Delivery.state).not_in(_NOT_DUE),
        )
        columns = (
            Delivery.id,
            Delivery.node_id,
            Delivery.item_id,
            Delivery.planned_start,
            Delivery.planned_duration_ms,
            Delivery.state,
            Delivery.detail,
        )
        begun = (
            select(Delivery.node_id, func.max(Delivery.planned_start).label("start"))
            .where(*within)
            .group_by(col(Delivery.node_id))
            .subquery()
        )
        newest: dict[str, Any] = {}
        playing: list[str] = []
        latest: Sequence[Any] = session.exec(
            select(*columns)  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
            .join(
                begun,
                and_(
                    col(Delivery.node_id) == begun.c.node_id,
                    col(Delivery.planned_start) == begun.c.start,
                ),
            )
            .where(*within)
            .order_by(col(Delivery.id))  # of items begun at the same moment, the last planned
        ).all()
        for row in latest:
            if self._ended(row, grace, now):
                newest[row.node_id] = row
            elif row.node_id in online:
                playing.append(row.node_id)
        for chunk in in_chunks(sorted(set(playing) - set(newest))):
            day: Sequence[Any] = session.exec(
                select(*columns)  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
                .where(*within, col(Delivery.node_id).in_(chunk))
                .order_by(col(Delivery.planned_start), col(Delivery.id))
            ).all()
            for row in day:
                if self._ended(row, grace, now):
                    newest[row.node_id] = row
        for node in nodes:
            if node.id not in online:
                continue  # offline: its reports may still be on the way; the offline alarm speaks
            d = newest.get(node.id)
            key = (node.id, AlarmKind.dead_air)
            if d is None or d.state in _PLAYED:
                if node.id in self._alarmed:
                    out[key] = None
            else:
                out[key] = (
                    f"item {d.item_id} due {d.planned_start:%Y-%m-%d %H:%M:%S} UTC "
                    f"not played ({d.state}{': ' + d.detail if d.detail else ''})"
                )[:500]

    @staticmethod
    def _ended(row: Any, grace: timedelta, now: datetime) -> bool:
        end = row.planned_start + timedelta(milliseconds=row.planned_duration_ms)
        return bool(end + grace <= now)

    def _media(self, session: Session, nodes: list[NodeRow], now: datetime, out: Decisions) -> None:
        """Several failed downloads lately and none completed since the last failure. Only the
        nodes with that many failures in the window have their downloads read (a province's
        pre-fetch is tens of thousands of completed ones)."""
        since = now - timedelta(seconds=self.s.alarm_media_window_s)
        failing = (
            select(NodeEventRecord.node_id)
            .where(col(NodeEventRecord.ts) >= since, NodeEventRecord.type == "media_failed")
            .group_by(col(NodeEventRecord.node_id))
            .having(func.count() >= self.s.alarm_media_failures)
        )
        rows = session.exec(
            select(NodeEventRecord.node_id, NodeEventRecord.type, NodeEventRecord.ts)
            .where(
                col(NodeEventRecord.ts) >= since,
                col(NodeEventRecord.type).in_(("media_failed", "media_ready")),
                col(NodeEventRecord.node_id).in_(failing),
            )
            # Reports of the same moment in the order they arrived.
            .order_by(
                col(NodeEventRecord.ts), col(NodeEventRecord.received_at), col(NodeEventRecord.id)
            )
        ).all()
        failures: dict[str, int] = {}
        for node_id, kind, _ts in rows:
            # A completed download resets the count: what failed before has recovered.
            failures[node_id] = failures.get(node_id, 0) + 1 if kind == "media_failed" else 0
        for node in nodes:
            n = failures.get(node.id, 0)
            if n >= self.s.alarm_media_failures:
                out[(node.id, AlarmKind.media_failing)] = (
                    f"{n} failed downloads in {self.s.alarm_media_window_s:.0f} s"
                )
            elif node.id in self._alarmed:
                out[(node.id, AlarmKind.media_failing)] = None

    def _firmware(self, session: Session, nodes: list[NodeRow], out: Decisions) -> None:
        if self.latest_firmware is None:
            return
        latest_for: dict[str, str | None] = {}
        behind: dict[tuple[str, str], bool] = {}  # a fleet runs a handful of versions
        for node in nodes:
            if node.hardware not in latest_for:
                latest_for[node.hardware] = self._latest(session, node.hardware)
            latest = latest_for[node.hardware]
            if not node.firmware or not latest:
                continue
            versions = (node.firmware, latest)
            if versions not in behind:
                behind[versions] = outdated(*versions)
            if behind[versions]:
                out[(node.id, AlarmKind.firmware_outdated)] = (
                    f"runs {node.firmware}, latest is {latest}"
                )
            elif node.id in self._alarmed:
                out[(node.id, AlarmKind.firmware_outdated)] = None

    def _latest(self, session: Session, hardware: str) -> str | None:
        """The newest released version for this hardware (or for all, if the source does
        not tell hardware apart); None when unknown: the alarm is then left as it is."""
        assert self.latest_firmware is not None
        try:
            try:
                return self.latest_firmware(session, hardware or None)  # type: ignore[call-arg]  # an older source: TypeError below
            except TypeError:
                return self.latest_firmware(session)
        except Exception:
            log.exception("latest firmware version unavailable")
            return None
