"""Each node's part of a command: acks applied (progress, result, late, duplicate, forged),
timeouts, and the per-command view with counts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from controller.core.models import Command, CommandState, Node, NodeCommand
from protocol import CommandAck

OPEN = (CommandState.pending, CommandState.in_progress)
_CHUNK = 500


def apply_ack(row: NodeCommand, ack: CommandAck, received: datetime) -> str:
    """Move one node's part forward by one ack; returns what the ack was, for the counters."""
    if row.state == CommandState.skipped:
        return "not_sent"  # that id was never published: nobody can answer it
    if ack.firmware:
        row.firmware = ack.firmware[:100]
    if ack.stage is not None and not row.stages.endswith(ack.stage.value):
        row.stages = f"{row.stages},{ack.stage.value}".lstrip(",")[-200:]
    if not ack.final:
        if row.state not in OPEN:
            return "stale_progress"
        row.state = CommandState.in_progress
        row.stage = ack.stage.value if ack.stage else ""
        row.detail = ack.detail[:500]
        row.acked_at = row.acked_at or received
        return "progress"
    if row.state in (CommandState.ok, CommandState.failed):
        return "duplicate"
    late = row.state == CommandState.timed_out
    row.state = CommandState.ok if ack.ok else CommandState.failed
    row.stage = ack.stage.value if ack.stage else ""
    # An answer after the timeout is still the truth about the node; say it came late.
    row.detail = (f"(answered after the timeout) {ack.detail}" if late else ack.detail)[:500]
    row.acked_at = row.acked_at or received
    row.finished_at = received
    return "late" if late else "final"


def record_acks(
    session: Session, batch: list[tuple[str, CommandAck, datetime]], stats: Counter[str]
) -> set[str]:
    """Apply a batch of acks; returns the ids of the commands they touched."""
    ids = list({ack.cmd_id for _, ack, _ in batch})
    rows: dict[str, NodeCommand] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        rows.update(
            (r.cmd_id, r)
            for r in session.exec(select(NodeCommand).where(col(NodeCommand.cmd_id).in_(chunk)))
        )
    touched: set[str] = set()
    for node_id, ack, received in batch:
        row = rows.get(ack.cmd_id)
        if row is None:
            stats["ack:unknown_command"] += 1
            continue
        if row.node_id != node_id:
            # The broker lets a node write only its own ack topic: this node answers for another.
            stats["ack:wrong_node"] += 1
            continue
        stats[f"ack:{apply_ack(row, ack, received)}"] += 1
        session.add(row)
        touched.add(row.command_id)
    return touched


def expire_overdue(session: Session, now: datetime) -> tuple[int, datetime | None]:
    """Parts past their deadline become timed out; returns how many, and the next deadline."""
    due = session.exec(
        select(NodeCommand, Node.status)
        .join(Node, col(Node.id) == NodeCommand.node_id)
        .where(col(NodeCommand.state).in_(OPEN), col(NodeCommand.deadline) <= now)
    ).all()
    timeouts = {c.id: c.timeout_s for c in _commands(session, {r.command_id for r, _ in due})}
    touched: set[str] = set()
    for row, status in due:
        waited = f"no answer within {timeouts.get(row.command_id, 0):g} s"
        last = f"; last stage reported: {row.stage}" if row.stage else ""
        row.state = CommandState.timed_out
        row.detail = f"{waited} (node {status}{last})"[:500]
        row.finished_at = now
        session.add(row)
        touched.add(row.command_id)
    close_finished(session, touched, now)
    upcoming = session.exec(
        select(func.min(NodeCommand.deadline)).where(col(NodeCommand.state).in_(OPEN))
    ).one()
    return len(due), upcoming


def close_finished(session: Session, command_ids: Iterable[str], now: datetime) -> None:
    """A command is finished when none of its parts waits for an answer any more."""
    session.flush()
    for command in _commands(session, set(command_ids)):
        if command.finished_at is not None:
            continue
        waiting = session.exec(
            select(func.count())
            .select_from(NodeCommand)
            .where(NodeCommand.command_id == command.id, col(NodeCommand.state).in_(OPEN))
        ).one()
        if not waiting:
            command.finished_at = now
            session.add(command)


def abandon_for_node(session: Session, node_id: str, reason: str, now: datetime) -> int:
    """Parts still waiting on a node that is going away fail now, with the reason."""
    rows = session.exec(
        select(NodeCommand).where(NodeCommand.node_id == node_id, col(NodeCommand.state).in_(OPEN))
    ).all()
    for row in rows:
        row.state, row.detail, row.finished_at = CommandState.failed, reason[:500], now
        session.add(row)
    close_finished(session, {r.command_id for r in rows}, now)
    return len(rows)


def _commands(session: Session, ids: set[str]) -> list[Command]:
    if not ids:
        return []
    return list(session.exec(select(Command).where(col(Command.id).in_(ids))).all())


def counts_of(session: Session, command_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {c: {} for c in command_ids}
    for i in range(0, len(command_ids), _CHUNK):
        rows = session.exec(
            select(NodeCommand.command_id, NodeCommand.state, func.count())
            .where(col(NodeCommand.command_id).in_(command_ids[i : i + _CHUNK]))
            .group_by(NodeCommand.command_id, NodeCommand.state)
        ).all()
        for command_id, state, n in rows:
            out[command_id][state] = n
    return out


def node_rows(
    session: Session, command: Command, sees: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """Every node's part the viewer may see, with the node's area."""
    rows = session.exec(
        select(NodeCommand, Node.area_id)
        .join(Node, col(Node.id) == NodeCommand.node_id)
        .where(NodeCommand.command_id == command.id)
        .order_by(NodeCommand.node_id)
    ).all()
    return [
        {
            "node_id": r.node_id,
            "area_id": area_id,
            "state": r.state,
            "stage": r.stage,
            "stages": [s for s in r.stages.split(",") if s],
            "detail": r.detail,
            "firmware": r.firmware,
            "sent_at": r.sent_at,
            "acked_at": r.acked_at,
            "finished_at": r.finished_at,
        }
        for r, area_id in rows
        if sees(area_id)
    ]


def summary(command: Command, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": command.id,
        "command": command.name,
        "args": json.loads(command.args),
        "targets": json.loads(command.targets),
        "nodes": command.nodes,
        "timeout_s": command.timeout_s,
        "created_by": command.created_by,
        "created_at": command.created_at,
        "finished_at": command.finished_at,
        "done": command.finished_at is not None,
        "counts": counts,
    }


def deadline_after(now: datetime, timeout_s: float) -> datetime:
    return now + timedelta(seconds=timeout_s)
