"""Fleet views for technicians: nodes with their state and open alarms, counts per area, and a
node's timeline of events. The API and the metrics read the same numbers from here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from controller.core.models import (
    Alarm,
    Area,
    Node,
    NodeEventRecord,
    NodeStateChange,
    search_folded,
    without_marks,
)
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


def _select_nodes(include_retired: bool) -> Any:
    query = select(*NODE_COLUMNS).order_by(col(Node.id))  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
    return query if include_retired else query.where(Node.retired == False)  # noqa: E712


def _rows(session: Session, presence: Presence, query: Any) -> list[NodeHealthRow]:
    kinds = open_alarm_kinds(session)
    return [
        NodeHealthRow(n, presence.state_of(n), sorted(kinds.get(n.id, [])))
        for n in session.exec(query).all()
    ]


def fleet(
    session: Session, presence: Presence, include_retired: bool = False
) -> list[NodeHealthRow]:
    return _rows(session, presence, _select_nodes(include_retired))


@dataclass(frozen=True)
class NodeFilter:
    """Which nodes a list shows. `areas` is the set of areas whose nodes may appear (the
    person's own and the one asked for, already combined); None: every area."""

    areas: frozenset[str] | None = None
    status: str | None = None  # raw status: online, offline, lost, unknown
    state: str | None = None  # device health's: online, offline, flapping, unknown
    alarm: str | None = None  # a kind not cleared, "any" or "none"
    firmware: str | None = None
    text: str | None = None  # in the id or the name, whatever the case and marks
    include_retired: bool = False
    ids: frozenset[str] | None = None  # only these nodes


@dataclass
class NodePage:
    rows: list[NodeHealthRow]  # the page, by id
    total: int  # every node matching the filters
    counts: dict[str, int]  # per state (and nodes, alarmed) of the nodes matching all but state
    more: bool = False  # matching nodes come after this page
    earlier: bool = False  # matching nodes come before this page


def _state(flapping: set[str]) -> Any:
    """Presence.state_of as SQL: what a technician sees of each node."""
    whens: list[Any] = [(col(Node.id).in_(flapping), "flapping")] if flapping else []
    whens += [
        (col(Node.status) == "online", "online"),
        (or_(col(Node.status) == "unknown", col(Node.last_seen).is_(None)), "unknown"),
    ]
    return case(*whens, else_="offline")


def find(
    session: Session,
    presence: Presence,
    query: NodeFilter,
    offset: int,
    limit: int,
    after: str | None = None,
    before: str | None = None,
    last: bool = False,
) -> NodePage:
    """One page of the fleet in a few statements whatever its size: the counts per state
    grouped in SQL (the flapping nodes, known in memory, passed in), then the page's rows
    and their alarms. `after` (the last id of the page before) starts the page there through
    the primary key's index, however deep; `before` (the first id of the page after) ends it
    there, and `last` takes the list's last page as pages counted from the start cut it, both
    read backwards through the same index;
    `offset` counts rows from the start or from `after` (the database walks them; past the
    middle it walks from the end instead)."""
    state = _state(set(presence.flapping))
    open_alarm = select(Alarm.node_id).where(col(Alarm.cleared_at).is_(None))
    where: list[Any] = []
    if not query.include_retired:
        where.append(Node.retired == False)  # noqa: E712
    if query.areas is not None:
        where.append(col(Node.area_id).in_(query.areas))
    if query.status is not None:
        where.append(Node.status == query.status)
    if query.firmware is not None:
        where.append(Node.firmware == query.firmware)
    if query.text:
        folded = search_folded(query.text)
        # Typed with some marks and not others ("đong xuan"): matched without any.
        where.append(
            or_(
                col(Node.search_text).contains(folded, autoescape=True),
                col(Node.search_text).contains(without_marks(folded), autoescape=True),
            )
        )
    if query.ids is not None:
        where.append(col(Node.id).in_(query.ids))
    if query.alarm == "any":
        where.append(col(Node.id).in_(open_alarm))
    elif query.alarm == "none":
        where.append(col(Node.id).not_in(open_alarm))
    elif query.alarm is not None:
        where.append(col(Node.id).in_(open_alarm.where(Alarm.kind == query.alarm)))
    counts = _count(session, state, where)
    if query.state is not None:
        where.append(state == query.state)
    total = counts.get(query.state, 0) if query.state is not None else counts["nodes"]
    backwards = before is not None or last
    cursor: list[Any] = []
    if after is not None:
        cursor.append(col(Node.id) > after)
    if before is not None:
        cursor.append(col(Node.id) < before)
    if last and total % limit:
        # The last page as pages counted from the start cut it, so that walking back from it
        # meets the same pages as walking forward.
        limit = total % limit
    page_query = select(*NODE_COLUMNS).where(*where, *cursor)  # type: ignore[call-overload]  # sqlmodel types select() to 4 columns
    from_end = not backwards and after is None and offset > total // 2
    if from_end:
        # Deep in the list by `offset`: the database walks the rows it skips, so it reads from
        # the end (the count above says where that is) and walks the shorter side.
        skip = total - offset - limit
        page_query = page_query.order_by(col(Node.id).desc())
        page_query = page_query.offset(max(skip, 0)).limit(max(limit + min(skip, 0), 0))
        rows: Sequence[Any] = list(reversed(session.exec(page_query).all()))
        # The count and the page are two statements: a list that shrank between them may
        # leave no rows here, and then nothing is said to come after.
        more, earlier = skip > 0 and bool(rows), bool(rows)
    else:
        page_query = page_query.limit(limit + 1)
        if backwards:
            page_query = page_query.order_by(col(Node.id).desc())
        else:
            page_query = page_query.order_by(col(Node.id)).offset(offset)
        rows = session.exec(page_query).all()
        beyond = len(rows) > limit  # a row past the page, in the direction read
        rows = list(reversed(rows[:limit])) if backwards else rows[:limit]
        more, earlier = (False, beyond) if backwards else (beyond, offset > 0 and bool(rows))
    if rows and after is not None and not earlier:
        # The side the page was not read from: one row of it through the index answers.
        earlier = _any(session, where, col(Node.id) < rows[0].id)
    if rows and before is not None:
        more = _any(session, where, col(Node.id) > rows[-1].id)
    kinds: dict[str, list[str]] = {}
    if rows:
        for node_id, kind in session.exec(
            select(Alarm.node_id, Alarm.kind).where(
                col(Alarm.cleared_at).is_(None), col(Alarm.node_id).in_([n.id for n in rows])
            )
        ).all():
            kinds.setdefault(node_id, []).append(kind)
    page = [NodeHealthRow(n, presence.state_of(n), sorted(kinds.get(n.id, []))) for n in rows]
    return NodePage(page, total, counts, more, earlier)


def _count(session: Session, state: Any, where: list[Any]) -> dict[str, int]:
    """The nodes per state, all of them (`nodes`) and those alarmed, in one statement: each
    statement is a round trip, and a worker thread waits for the interpreter after each while
    the event loop is busy with a province's reports."""
    open_alarm = select(Alarm.node_id).where(col(Alarm.cleared_at).is_(None))
    alarmed = func.sum(case((col(Node.id).in_(open_alarm), 1), else_=0))
    per_state: dict[str, tuple[int, int]] = {
        s: (int(n), int(a or 0))
        for s, n, a in session.exec(
            select(state, func.count(), alarmed).where(*where).group_by(state)
        ).all()
    }
    counts = {s: per_state.get(s, (0, 0))[0] for s in STATES}
    counts["nodes"] = sum(counts[s] for s in STATES)
    counts["alarmed"] = sum(a for _, a in per_state.values())
    return counts


def fleet_counts(session: Session, presence: Presence) -> dict[str, int]:
    """The nodes not retired per state, all of them and those alarmed, counted in SQL."""
    return _count(session, _state(set(presence.flapping)), [Node.retired == False])  # noqa: E712


def _any(session: Session, where: list[Any], side: Any) -> bool:
    return session.exec(select(Node.id).where(*where, side).limit(1)).first() is not None


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
