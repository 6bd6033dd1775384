"""The alarm book: device faults raised once per open condition, acknowledged by a person,
cleared when the condition ends; listeners hear of every change after it is committed.

Public interface for other modules (e.g. the firmware rollout):
`service.alarms.raise_alarm(session, node_id, "firmware_outdated", detail)` and
`service.alarms.clear_alarm(session, node_id, "firmware_outdated")`, then commit the session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import Alarm, AlarmState, Node
from controller.core.time import utc_datetime
from protocol.clock import Clock

log = logging.getLogger(__name__)


class AlarmKind(StrEnum):
    offline = "offline"
    flapping = "flapping"
    dead_air = "dead_air"
    speaker_fault = "speaker_fault"
    amplifier_fault = "amplifier_fault"
    mains_lost = "mains_lost"
    low_battery = "low_battery"
    over_temperature = "over_temperature"
    storage_low = "storage_low"
    media_failing = "media_failing"
    firmware_outdated = "firmware_outdated"
    stream_dead = "stream_dead"  # a relayed station or live stream stopped reaching the node
    clock_offset = "clock_offset"  # the node's clock is off: its items start out of step


SEVERITY = {
    AlarmKind.offline: "critical",
    AlarmKind.dead_air: "critical",
    AlarmKind.speaker_fault: "major",
    AlarmKind.amplifier_fault: "major",
    AlarmKind.low_battery: "major",
    AlarmKind.over_temperature: "major",
    AlarmKind.media_failing: "major",
    AlarmKind.mains_lost: "minor",
    AlarmKind.flapping: "minor",
    AlarmKind.storage_low: "minor",
    AlarmKind.firmware_outdated: "minor",
    AlarmKind.stream_dead: "major",
    AlarmKind.clock_offset: "major",
}

# For people (the webhook's text, the console): Vietnamese first.
LABELS_VI = {
    AlarmKind.offline: "mất kết nối",
    AlarmKind.flapping: "kết nối chập chờn",
    AlarmKind.dead_air: "không phát chương trình đã lên lịch",
    AlarmKind.speaker_fault: "lỗi loa",
    AlarmKind.amplifier_fault: "lỗi âm ly (bộ khuếch đại)",
    AlarmKind.mains_lost: "mất điện lưới, đang chạy pin",
    AlarmKind.low_battery: "pin yếu",
    AlarmKind.over_temperature: "quá nhiệt",
    AlarmKind.storage_low: "bộ nhớ sắp đầy",
    AlarmKind.media_failing: "tải tệp âm thanh thất bại",
    AlarmKind.firmware_outdated: "phần mềm thiết bị đã cũ",
    AlarmKind.stream_dead: "mất nguồn tiếp sóng",
    AlarmKind.clock_offset: "đồng hồ thiết bị bị lệch",
}

Listener = Callable[[dict[str, Any]], None]


def snapshot(alarm: Alarm, area_id: str | None, change: str) -> dict[str, Any]:
    data = alarm.model_dump(mode="json")
    data.update(type="alarm", change=change, area_id=area_id)
    return data


class AlarmBook:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.listeners: list[Listener] = []

    def now(self) -> datetime:
        return utc_datetime(self.clock.now_ms())

    def open_alarm(self, session: Session, node_id: str, kind: str) -> Alarm | None:
        return session.exec(
            select(Alarm).where(
                Alarm.node_id == node_id, Alarm.kind == kind, col(Alarm.cleared_at).is_(None)
            )
        ).first()

    def raise_alarm(
        self, session: Session, node_id: str, kind: str, detail: str = ""
    ) -> Alarm | None:
        """Raise unless already open (then only its detail is refreshed). Returns the new
        alarm, or None when one was open. Part of the caller's transaction."""
        kind = _kind(kind)
        node = session.get(Node, node_id)
        if node is None:
            raise NotFound(f"node {node_id!r} does not exist")
        existing = self.open_alarm(session, node_id, kind)
        if existing is not None:
            if detail and existing.detail != detail[:500]:
                existing.detail = detail[:500]
                session.add(existing)
            return None
        alarm = Alarm(
            node_id=node_id,
            kind=kind,
            severity=SEVERITY[AlarmKind(kind)],
            detail=detail[:500],
            raised_at=self.now(),
        )
        if session.get_bind().dialect.name == "sqlite":
            # pysqlite's savepoints do not nest in the outer transaction; SQLite serialises
            # writers anyway, and a lost race fails the caller's commit (retried next round).
            session.add(alarm)
            session.flush()
        else:
            try:
                with session.begin_nested():
                    session.add(alarm)
            except IntegrityError:
                # Raised a moment ago by another writer: the unique index keeps it to one.
                return None
        log.warning("alarm raised: %s %s %s", node_id, kind, detail[:200])
        self._after_commit(session, snapshot(alarm, node.area_id, "raised"))
        return alarm

    def clear_alarm(
        self, session: Session, node_id: str, kind: str, detail: str = ""
    ) -> Alarm | None:
        """Clear the open alarm of this node and kind, if any (the condition ended)."""
        alarm = self.open_alarm(session, node_id, _kind(kind))
        if alarm is None:
            return None
        alarm.state = AlarmState.cleared
        alarm.cleared_at = self.now()
        alarm.clear_detail = detail[:500]
        session.add(alarm)
        log.info("alarm cleared: %s %s %s", node_id, kind, detail[:200])
        node = session.get(Node, node_id)
        self._after_commit(session, snapshot(alarm, node.area_id if node else None, "cleared"))
        return alarm

    def acknowledge(self, session: Session, alarm_id: int, by: str, note: str = "") -> Alarm:
        """A person takes charge of the fault; the alarm stays until its condition ends."""
        alarm = session.get(Alarm, alarm_id)
        if alarm is None:
            raise NotFound(f"alarm {alarm_id} does not exist")
        if alarm.state == AlarmState.cleared:
            raise Conflict(f"alarm {alarm_id} is already cleared: nothing to acknowledge")
        if alarm.state == AlarmState.acknowledged:
            raise Conflict(
                f"alarm {alarm_id} was already acknowledged by {alarm.acked_by} "
                f"at {alarm.acked_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        alarm.state = AlarmState.acknowledged
        alarm.acked_at = self.now()
        alarm.acked_by = by[:64]
        alarm.ack_note = note[:500]
        session.add(alarm)
        node = session.get(Node, alarm.node_id)
        self._after_commit(session, snapshot(alarm, node.area_id if node else None, "acknowledged"))
        return alarm

    # Listeners hear only of what was committed: a rolled-back raise never notifies anyone.

    def _after_commit(self, session: Session, change: dict[str, Any]) -> None:
        if not session.info.get("alarm_hooks"):
            event.listen(session, "after_commit", self._deliver)
            event.listen(session, "after_soft_rollback", self._forget)
            session.info["alarm_hooks"] = True
        session.info.setdefault("alarm_changes", []).append(change)

    def _deliver(self, session: Session) -> None:
        for change in session.info.pop("alarm_changes", []):
            for listener in list(self.listeners):
                try:
                    listener(change)
                except Exception:  # a listener's bug must not undo a committed alarm
                    log.exception("alarm listener failed")

    @staticmethod
    def _forget(session: Session, previous: Any) -> None:
        # A savepoint rolled back (a raise that lost a race) leaves the others standing.
        if not getattr(previous, "nested", False):
            session.info.pop("alarm_changes", None)


def _kind(kind: str) -> str:
    try:
        return AlarmKind(kind).value
    except ValueError:
        raise Invalid(
            f"unknown alarm kind {kind!r}: use one of {', '.join(k.value for k in AlarmKind)}"
        ) from None
