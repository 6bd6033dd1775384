"""A report of one area for one period: its figures, and those of each child area (plus the
area's own nodes), so that the children's rows add up to the area's total.

Additive figures (plays, hours aired, alert targets and confirmations, time online and time
known, faults, repair time) of an area are the sums of its rows. Counts of distinct things
(broadcasts, alerts) and medians and maxima are not: a broadcast heard in two communes is one
broadcast of each commune, and one of the district."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from statistics import median
from typing import Any

from sqlmodel import Session, select

from controller.core.errors import NotFound
from controller.core.models import Area
from controller.reports.periods import Window
from controller.reports.sources import Category, Sources, collect
from schedules import AreaTree
from schedules.localtime import from_ms

OWN = "own"  # a row of the nodes registered on the area itself


@dataclass
class Figures:
    nodes: int = 0
    plays: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Category, 0))
    aired_ms: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Category, 0))
    # Plays whose end no node reported: counted as plays, their time is unknown, not guessed.
    plays_without_end: int = 0
    # Deliveries planned in the period that never started (missed, failed, pre-empted first).
    not_played: int = 0
    broadcasts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Category, 0))
    alerts: int = 0
    alert_targets: int = 0
    alert_confirmed: int = 0
    confirm_median_ms: float | None = None
    confirm_max_ms: int | None = None
    online_ms: int = 0
    known_ms: int = 0
    faults: int = 0
    faults_cleared: int = 0
    repair_ms: int = 0
    repair_median_ms: float | None = None
    repair_max_ms: int | None = None

    @property
    def confirmation_rate(self) -> float | None:
        return self.alert_confirmed / self.alert_targets if self.alert_targets else None

    @property
    def availability(self) -> float | None:
        return self.online_ms / self.known_ms if self.known_ms else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "plays": dict(self.plays),
            "aired_s": {k: v / 1000 for k, v in self.aired_ms.items()},
            "plays_total": sum(self.plays.values()),
            "aired_s_total": sum(self.aired_ms.values()) / 1000,
            "plays_without_end": self.plays_without_end,
            "not_played": self.not_played,
            "broadcasts": dict(self.broadcasts),
            "alerts": self.alerts,
            "alert_targets": self.alert_targets,
            "alert_confirmed": self.alert_confirmed,
            "confirmation_rate": self.confirmation_rate,
            "confirm_median_s": _s(self.confirm_median_ms),
            "confirm_max_s": _s(self.confirm_max_ms),
            "online_s": self.online_ms / 1000,
            "known_s": self.known_ms / 1000,
            "availability": self.availability,
            "faults": self.faults,
            "faults_cleared": self.faults_cleared,
            "repair_s": self.repair_ms / 1000,
            "repair_median_s": _s(self.repair_median_ms),
            "repair_max_s": _s(self.repair_max_ms),
        }


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def figures(src: Sources, node_ids: set[str]) -> Figures:
    f = Figures(nodes=len(node_ids))
    seen: dict[str, set[str]] = {c: set() for c in Category}
    for p in src.plays:
        if p.node_id not in node_ids:
            continue
        f.plays[p.category] += 1
        aired = p.aired_ms
        if aired is None:
            f.plays_without_end += 1
        else:
            f.aired_ms[p.category] += aired
        seen[p.category].add(p.broadcast)
    f.broadcasts = {c: len(s) for c, s in seen.items()}
    f.not_played = sum(1 for n in src.not_played if n.node_id in node_ids)
    targets = [t for t in src.alerts if t.node_id in node_ids]
    f.alerts = len({t.alert_id for t in targets})
    f.alert_targets = len(targets)
    delays = [d for t in targets if (d := t.delay_ms) is not None]
    f.alert_confirmed = len(delays)
    if delays:
        f.confirm_median_ms, f.confirm_max_ms = median(delays), max(delays)
    for u in src.uptime:
        if u.node_id in node_ids:
            f.online_ms += u.online_ms
            f.known_ms += u.known_ms
    faults = [x for x in src.faults if x.node_id in node_ids]
    f.faults = len(faults)
    repairs = [r for x in faults if (r := x.repair_ms) is not None]
    f.faults_cleared = len(repairs)
    f.repair_ms = sum(repairs)
    if repairs:
        f.repair_median_ms, f.repair_max_ms = median(repairs), max(repairs)
    return f


@dataclass
class Row:
    area_id: str
    name: str
    kind: str  # the child's kind, or "own" for the area's own nodes
    figures: Figures


@dataclass
class Report:
    area_id: str
    name: str
    kind: str
    window: Window
    total: Figures
    rows: list[Row]
    daily_aired_ms: list[tuple[date, int]]
    sources: Sources


def bucket_of(tree: AreaTree, area_id: str, node_area: str) -> str:
    """The child of `area_id` a node's area lies in, or OWN for a node on the area itself."""
    lineage = tree.lineage(node_area)
    if lineage[0] == area_id:
        return OWN
    for a in lineage:
        if tree.parents.get(a) == area_id:
            return a
    raise ValueError(f"{node_area} is not under {area_id}")


def build(session: Session, tree: AreaTree, area_id: str, win: Window, now_ms: int) -> Report:
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"area {area_id!r} does not exist")
    src = collect(session, tree, area_id, win, now_ms)
    children = session.exec(select(Area).where(Area.parent_id == area_id).order_by(Area.id)).all()
    members: dict[str, set[str]] = {c.id: set() for c in children}
    members[OWN] = set()
    for node_id, node_area in src.nodes.items():
        members[bucket_of(tree, area_id, node_area)].add(node_id)
    rows = [Row(c.id, c.name, str(c.kind), figures(src, members[c.id])) for c in children]
    if members[OWN]:
        rows.append(Row(area_id, area.name, OWN, figures(src, members[OWN])))
    daily = dict.fromkeys(win.days(), 0)
    for p in src.plays:
        aired = p.aired_ms
        day = from_ms(int(p.planned_start.timestamp() * 1000)).date()
        if aired is not None and day in daily:
            daily[day] += aired
    return Report(
        area_id,
        area.name,
        str(area.kind),
        win,
        figures(src, set(src.nodes)),
        rows,
        sorted(daily.items()),
        src,
    )
