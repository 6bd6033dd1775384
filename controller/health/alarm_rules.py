"""The conditions behind each alarm kind, judged for the whole fleet in one pass."""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, update
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


# Statuses of a node that is not away: the offline alarm is judged for every other.
_NOT_AWAY = ("online", "unknown")
# Above this many nodes to judge, a pass reads the whole fleet's rows in one statement.
WHOLE_FLEET_FROM = 2_000

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
        self.whole_fleet_from = WHOLE_FLEET_FROM

    def evaluate(self, session: Session) -> tuple[int, int]:
        """Raise what is newly true, clear what ended; returns (raised, cleared). One pass at a
        time: a pass left running by a controller that lost the lead finishes first."""
        with self._lock:
            return self._evaluate(session)

    def _evaluate(self, session: Session) -> tuple[int, int]:
        now = self.book.now()
        self.presence.settle()
        # The open alarms as columns: in a province a tenth of the nodes may be offline.
        open_now: dict[tuple[str, AlarmKind], tuple[int | None, str]] = {
            (node_id, AlarmKind(kind)): (alarm_id, detail)
            for alarm_id, node_id, kind, detail in session.exec(
                select(Alarm.id, Alarm.node_id, Alarm.kind, Alarm.detail).where(
                    col(Alarm.cleared_at).is_(None)
                )
            ).all()
        }
        # A condition found not to hold is worth deciding only where an alarm is open: most
        # nodes have none, and most of a pass's decisions would be clears that change nothing.
        self._alarmed = {node_id for node_id, _kind in open_now}
        # Only the nodes something may be decided for are read, not the fleet: those with an
        # open alarm, flapping, neither online nor unknown, with a heartbeat not yet judged,
        # failing downloads, outdated firmware or an item not played.
        to_judge = self._heartbeats_to_judge(now)
        failures = self._media_failures(session, now)
        latest_for: dict[str, str | None] = {}  # the newest firmware per hardware
        firmware = self._firmware_behind(session, latest_for)
        newest = self._dead_air_newest(session, now)
        wanted = self._alarmed | set(self.presence.flapping) | set(to_judge) | firmware
        wanted |= {node_id for node_id, n in failures.items() if n >= self.s.alarm_media_failures}
        wanted |= set(newest)
        nodes = self._rows(session, wanted)
        active = [n for n in nodes if not n.retired]
        decisions: Decisions = {}
        for node in active:
            self._presence(node, now, decisions)
            if node.id in to_judge:
                self._heartbeat(node, to_judge[node.id], decisions)
            self._media(node, failures.get(node.id, 0), decisions)
        self._dead_air(active, newest, now, decisions)
        self._firmware(session, active, latest_for, decisions)
        raised = cleared = 0
        for (node_id, kind), detail in decisions.items():
            if detail is not None and (node_id, kind) not in open_now:
                raised += self.book.raise_alarm(session, node_id, kind, detail) is not None
            elif detail is not None:
                alarm_id, before = open_now[(node_id, kind)]
                if detail[:500] != before:  # still true, told anew (a temperature, a battery)
                    session.exec(
                        update(Alarm).where(col(Alarm.id) == alarm_id).values(detail=detail[:500])
                    )
            elif (node_id, kind) in open_now:
                cleared += self.book.clear_alarm(session, node_id, kind) is not None
        retired = {n.id for n in nodes if n.retired}
        for (node_id, kind), _alarm in open_now.items():
            if node_id in retired:
                cleared += self.book.clear_alarm(session, node_id, kind, "node retired") is not None
        session.commit()
        return raised, cleared

    def _rows(self, session: Session, wanted: set[str]) -> list[NodeRow]:
        """The nodes a pass judges: those in `wanted` and every node whose status says it is
        neither online nor unknown (offline for long enough raises the offline alarm)."""
        # Columns, not objects: a pass runs every few seconds in a burst.
        query = select(*NODE_FACTS)  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
        rows: list[Any]
        if len(wanted) > self.whole_fleet_from:
            # A release behind on every node, every heartbeat new: one read of the fleet is
            # cheaper than a statement per 500 of its nodes.
            rows = [
                row
                for row in session.exec(query).all()
                if row.id in wanted or (row.status not in _NOT_AWAY and not row.retired)
            ]
        else:
            away = (col(Node.status).not_in(_NOT_AWAY), Node.retired == False)  # noqa: E712
            rows = list(session.exec(query.where(*away)).all())
            seen = {row.id for row in rows}
            for chunk in in_chunks(sorted(wanted - seen)):
                rows += session.exec(query.where(col(Node.id).in_(chunk))).all()
        return [NodeRow(*row) for row in rows]

    def _heartbeats_to_judge(self, now: datetime) -> dict[str, Latest]:
        """Per node, its newest heartbeat where it is fresh and was not judged yet to raise
        nothing. What a heartbeat says depends on it alone (and on the uplink samples kept
        with it, which change only with the newest heartbeat)."""
        # `_all_clear` holds only nodes found here, so it is bounded by the telemetry's newest.
        return {
            node_id: latest
            for node_id, latest in self.telemetry.newest()
            if now - latest.received <= self._fresh_for
            and (self._all_clear.get(node_id) is not latest or node_id in self._alarmed)
        }

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

    def _heartbeat(self, node: NodeRow, latest: Latest, out: Decisions) -> None:
        found: Decisions = {}
        self._judge(node, latest.report, found)
        out.update(found)
        if any(detail is not None for detail in found.values()):
            self._all_clear.pop(node.id, None)
        else:
            self._all_clear[node.id] = latest

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

    def _dead_air_newest(self, session: Session, now: datetime) -> dict[str, Any]:
        """Per node, the newest item that should have ended by now, where it was not played.

        A day of a province's deliveries is hundreds of thousands of rows, most of them played,
        and this runs every RADIO_ALARM_CHECK_S (10 s). A node whose newest ended item was not
        played has an item in the window not played that has ended: the database finds those
        (three columns each), and only those nodes have their day read, for their newest."""
        grace = timedelta(seconds=self.s.alarm_dead_air_grace_s)
        within = (
            col(Delivery.planned_start) >= now - timedelta(hours=self.s.alarm_dead_air_lookback_h),
            col(Delivery.planned_start) <= now - grace,
            col(Delivery.state).not_in(_NOT_DUE),
        )
        unplayed: Sequence[Any] = session.exec(
            select(Delivery.node_id, Delivery.planned_start, Delivery.planned_duration_ms).where(
                *within, col(Delivery.state).not_in(_PLAYED)
            )
        ).all()
        suspects = sorted({row.node_id for row in unplayed if self._ended(row, grace, now)})
        newest: dict[str, Any] = {}
        for chunk in in_chunks(suspects):
            day: Sequence[Any] = session.exec(
                select(  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
                    Delivery.node_id,
                    Delivery.item_id,
                    Delivery.planned_start,
                    Delivery.planned_duration_ms,
                    Delivery.state,
                    Delivery.detail,
                )
                .where(*within, col(Delivery.node_id).in_(chunk))
                # Of items begun at the same moment, the last planned.
                .order_by(col(Delivery.planned_start), col(Delivery.id))
            ).all()
            for row in day:
                if self._ended(row, grace, now):
                    newest[row.node_id] = row
        return {node_id: d for node_id, d in newest.items() if d.state not in _PLAYED}

    def _dead_air(
        self, nodes: list[NodeRow], newest: dict[str, Any], now: datetime, out: Decisions
    ) -> None:
        """Online, yet the newest item that should have ended by now was not played."""
        grace = timedelta(seconds=self.s.alarm_dead_air_grace_s)
        for node in nodes:
            if (
                self.presence.state_of(node) != "online"
                or now - (self.presence.since.get(node.id) or now) < grace
            ):
                continue  # offline: its reports may still be on the way; the offline alarm speaks
            d = newest.get(node.id)
            key = (node.id, AlarmKind.dead_air)
            if d is None:  # its newest item that should have ended was played, or none is due
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

    def _media_failures(self, session: Session, now: datetime) -> dict[str, int]:
        """Per node, its failed downloads lately since the last one completed. Only the nodes
        with enough failures in the window have their downloads read (a province's pre-fetch
        is tens of thousands of completed ones)."""
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
        return failures

    def _media(self, node: NodeRow, failures: int, out: Decisions) -> None:
        """Several failed downloads lately and none completed since the last failure."""
        if failures >= self.s.alarm_media_failures:
            out[(node.id, AlarmKind.media_failing)] = (
                f"{failures} failed downloads in {self.s.alarm_media_window_s:.0f} s"
            )
        elif node.id in self._alarmed:
            out[(node.id, AlarmKind.media_failing)] = None

    def _firmware_behind(self, session: Session, latest_for: dict[str, str | None]) -> set[str]:
        """The nodes running an older version than the newest for their hardware. A fleet runs
        a handful of versions: each (hardware, version) is judged once, and only the nodes of
        one found behind are read. `latest_for` keeps the newest version per hardware."""
        if self.latest_firmware is None:
            return set()
        runs = session.exec(
            select(Node.hardware, Node.firmware).where(Node.retired == False).distinct()  # noqa: E712
        ).all()
        behind: set[str] = set()
        for hardware, firmware in runs:
            if hardware not in latest_for:
                latest_for[hardware] = self._latest(session, hardware)
            latest = latest_for[hardware]
            if firmware and latest and outdated(firmware, latest):
                behind.update(
                    session.exec(
                        select(Node.id).where(
                            Node.hardware == hardware,
                            Node.firmware == firmware,
                            Node.retired == False,  # noqa: E712
                        )
                    ).all()
                )
        return behind

    def _firmware(
        self,
        session: Session,
        nodes: list[NodeRow],
        latest_for: dict[str, str | None],
        out: Decisions,
    ) -> None:
        if self.latest_firmware is None:
            return
        behind: dict[tuple[str, str], bool] = {}
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
