"""Fleet views for technicians: nodes with their state and open alarms, counts per area, and a
node's timeline of events. The API and the metrics read the same numbers from here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from controller.core.models import Alarm, Area, Node, NodeEventRecord, NodeStateChange
from controller.health.presence import Presence
from schedules import AreaTree

STATES = ("online", "offline", "flapping", "unknown")


# What the fleet views read of each node: columns, not objects, so that a list of ten thousand
# nodes is one light query (the ORM objects took most of the time of GET /nodes).
NODE_COLUMNS = (
    Node.id,
    Node.name,
    Node.area_id,
    Node.lat,
    Node.lon,
    Node.hardware,
    Node.firmware,
    Node.status,
    Node.last_seen,
    Node.boot,
    Node.retired,
    Node.timeline_version,
    Node.installed_on,
)


@dataclass
class NodeHealthRow:
    node: Any  # a row of NODE_COLUMNS: node.id, node.area_id, node.status ...
    state: str
    alarms: list[str] = field(default_factory=list)


def open_alarm_kinds(session: Session) -> dict[str, list[str]]:
    """Kinds of the alarms not yet cleared, per node."""
    rows = session.exec(
        select(Alarm.node_id, Alarm.kind).where(col(Alarm.cleared_at).is_(None))
    ).all()
    kinds: dict[str, list[str]] = {}
    for node_id, kind in rows:
        kinds.setdefault(node_id, []).append(kind)
    return kinds


def fleet(
    session: Session, presence: Presence, include_retired: bool = False
) -> list[NodeHealthRow]:
    query = select(*NODE_COLUMNS).order_by(col(Node.id))  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
    if not include_retired:
        query = query.where(Node.retired == False)  # noqa: E712
    kinds = open_alarm_kinds(session)
    return [
        NodeHealthRow(n, presence.state_of(n), sorted(kinds.get(n.id, [])))
        for n in session.exec(query).all()
    ]


def counts(rows: list[NodeHealthRow]) -> dict[str, int]:
    c = Counter(r.state for r in rows)
    out = {state: c.get(state, 0) for state in STATES}
    out["nodes"] = len(rows)
    out["alarmed"] = sum(1 for r in rows if r.alarms)
    return out


def summary(
    session: Session, presence: Presence, tree: AreaTree, area_id: str | None, roots: list[str]
) -> dict[str, Any]:
    """Counts for `area_id` (or each of `roots`) and for every area directly below it."""
    rows = fleet(session, presence)
    names = dict(session.exec(select(Area.id, Area.name)).all())
    if area_id is not None:
        children = sorted(a for a, p in tree.parents.items() if p == area_id)
        scope = [area_id]
    else:
        children = sorted(roots)
        scope = roots

    def under(area: str) -> list[NodeHealthRow]:
        return [r for r in rows if tree.contains(area, r.node.area_id)]

    inside = [r for r in rows if any(tree.contains(a, r.node.area_id) for a in scope)]
    return {
        "area_id": area_id,
        "totals": counts(inside),
        "areas": [{"area_id": a, "name": names.get(a, a), **counts(under(a))} for a in children],
    }


def timeline(
    session: Session, node_id: str, start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """Newest first: state changes, alarms raised / acknowledged / cleared, reported events."""
    entries: list[dict[str, Any]] = []
    for s in session.exec(
        select(NodeStateChange)
        .where(
            NodeStateChange.node_id == node_id,
            col(NodeStateChange.ts) >= start,
            col(NodeStateChange.ts) < end,
        )
        .order_by(col(NodeStateChange.ts).desc())
        .limit(limit)
    ).all():
        entries.append(
            {
                "ts": s.ts,
                "source": "state",
                "type": s.state if not s.flapping else f"{s.state} (flapping)",
                "detail": f"{s.previous} → {s.state}: {s.reason}",
                "ref": None,
            }
        )
    for a in session.exec(
        select(Alarm)
        .where(
            Alarm.node_id == node_id,
            col(Alarm.raised_at) < end,
            (col(Alarm.cleared_at).is_(None)) | (col(Alarm.cleared_at) >= start),
        )
        .order_by(col(Alarm.raised_at).desc())
        .limit(limit)
    ).all():
        for when, what, detail in (
            (a.raised_at, "raised", a.detail),
            (a.acked_at, "acknowledged", f"{a.acked_by}: {a.ack_note}".rstrip(": ")),
            (a.cleared_at, "cleared", a.clear_detail),
        ):
            if when is not None and start <= when < end:
                entries.append(
                    {
                        "ts": when,
                        "source": "alarm",
                        "type": f"{a.kind} {what}",
                        "detail": detail,
                        "ref": str(a.id),
                    }
                )
    for e in session.exec(
        select(NodeEventRecord)
        .where(
            NodeEventRecord.node_id == node_id,
            col(NodeEventRecord.ts) >= start,
            col(NodeEventRecord.ts) < end,
        )
        .order_by(col(NodeEventRecord.ts).desc())
        .limit(limit)
    ).all():
        entries.append(
            {"ts": e.ts, "source": "node", "type": e.type, "detail": e.detail, "ref": e.item_id}
        )
    entries.sort(key=lambda x: x["ts"], reverse=True)
    return entries[:limit]
