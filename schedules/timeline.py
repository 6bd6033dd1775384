"""Which occurrences each node plays: target resolution over the area tree, and the timeline."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from protocol import MediaRef, Priority, StreamRef, TimelineItem
from schedules.candidates import Candidate, Policy
from schedules.conflicts import DEFAULT_MAX_SHIFT_MS, Adjustment, resolve
from schedules.quiet import QuietMap, drop_quiet, quiet_hours_for

# An item stays in a node's timeline this long after its planned end. A node may play it up to
# 10 s late (it waits behind an item that overran, or starts up to 5 s late), and an item that
# leaves the timeline while it plays must stop: it leaves only once no node can still be
# playing it.
KEPT_AFTER_END_MS = 15_000


class AreaTree:
    """The administrative tree as parent links: province → (district) → commune → village."""

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self.parents = dict(parents)
        self._cache: dict[str, tuple[str, ...]] = {}

    def lineage(self, area_id: str) -> tuple[str, ...]:
        """The area and all its ancestors, nearest first. Cycles are cut, never looped."""
        if area_id in self._cache:
            return self._cache[area_id]
        chain: list[str] = []
        current: str | None = area_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parents.get(current)
        result = tuple(chain)
        self._cache[area_id] = result
        return result

    def contains(self, ancestor: str, area_id: str) -> bool:
        return ancestor in self.lineage(area_id)

    def descendants(self, area_id: str) -> set[str]:
        """The area and every area below it."""
        return {a for a in self.parents if self.contains(area_id, a)} | {area_id}


@dataclass(frozen=True)
class Part:
    """One audible entry of a playlist, `offset_ms` after the occurrence's start."""

    offset_ms: int
    duration_ms: int
    media: MediaRef
    title: str = ""
    stream: StreamRef | None = None  # a relay or a live broadcast: `media` is its fallback


@dataclass(frozen=True)
class Occurrence:
    """One playing of a broadcast at an absolute time, with where it plays.

    A playlist's occurrence is one block for conflicts and quiet hours, and `parts` become
    separate timeline items (`{item_id}#{n}`); silences between them are gaps.
    """

    item_id: str
    broadcast_id: str
    start_ms: int
    duration_ms: int
    media: MediaRef
    priority: Priority = Priority.normal
    title: str = ""
    areas: frozenset[str] = field(default_factory=frozenset)
    nodes: frozenset[str] = field(default_factory=frozenset)
    on_preempt: Policy = Policy.preempt
    latest_end_ms: int | None = None
    parts: tuple[Part, ...] = ()
    # A live broadcast takes the air when it starts: it is placed before the others of its
    # priority, so one already playing is cut rather than the live voice skipped.
    takes_air: bool = False

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    def targets(self, node_id: str, lineage: Iterable[str]) -> bool:
        return node_id in self.nodes or any(a in self.areas for a in lineage)

    def candidate(self) -> Candidate:
        # Schedule ids grow as schedules are created, so the older one keeps a shared slot.
        order = int(self.broadcast_id) if self.broadcast_id.isdigit() else 0
        return Candidate(
            item_id=self.item_id,
            schedule_id=self.broadcast_id,
            start_ms=self.start_ms,
            duration_ms=self.duration_ms,
            priority=self.priority,
            title=self.title,
            on_preempt=self.on_preempt,
            latest_end_ms=self.latest_end_ms,
            order=order,
            first=self.takes_air,
        )

    def item(self, start_ms: int | None = None, duration_ms: int | None = None) -> TimelineItem:
        """The timeline item, at its resolved place when one is given."""
        return TimelineItem(
            item_id=self.item_id,
            broadcast_id=self.broadcast_id,
            start=self.start_ms if start_ms is None else start_ms,
            duration_ms=self.duration_ms if duration_ms is None else duration_ms,
            priority=self.priority,
            title=self.title[:200],
            media=self.media,
        )

    def items(
        self, start_ms: int | None = None, duration_ms: int | None = None
    ) -> list[TimelineItem]:
        """The timeline items of this occurrence at its resolved place; a playlist cut short
        loses the parts after the cut, and the part it falls in ends there."""
        if not self.parts:
            return [self.item(start_ms, duration_ms)]
        start = self.start_ms if start_ms is None else start_ms
        length = self.duration_ms if duration_ms is None else duration_ms
        out = []
        for n, part in enumerate(self.parts):
            if part.offset_ms >= length:
                break
            out.append(
                TimelineItem(
                    item_id=f"{self.item_id}#{n}",
                    broadcast_id=self.broadcast_id,
                    start=start + part.offset_ms,
                    duration_ms=min(part.duration_ms, length - part.offset_ms),
                    priority=self.priority,
                    title=(part.title or self.title)[:200],
                    media=part.media,
                    stream=part.stream,
                )
            )
        return out


class OccurrenceIndex:
    """Occurrences by what they target, so each node's share is found without scanning all:
    a province's programme is tens of thousands of occurrences for thousands of nodes."""

    def __init__(self, occurrences: Iterable[Occurrence]) -> None:
        self.by_area: dict[str, list[Occurrence]] = {}
        self.by_node: dict[str, list[Occurrence]] = {}
        for o in occurrences:
            for area in o.areas:
                self.by_area.setdefault(area, []).append(o)
            for node in o.nodes:
                self.by_node.setdefault(node, []).append(o)

    def for_node(self, node_id: str, lineage: Iterable[str]) -> list[Occurrence]:
        found = {o.item_id: o for o in self.by_node.get(node_id, ())}
        for area in lineage:
            for o in self.by_area.get(area, ()):
                found[o.item_id] = o
        return list(found.values())


def occurrence_of(item_id: str) -> str:
    """The occurrence a timeline item belongs to (a playlist's parts share one)."""
    return item_id.split("#", 1)[0]


@dataclass
class NodeTimeline:
    """A node's resolved items and what resolution changed, for its timeline view and log."""

    items: list[TimelineItem]
    adjustments: list[Adjustment]


def node_timeline(
    node_id: str,
    area_id: str,
    tree: AreaTree,
    occurrences: Iterable[Occurrence],
    now_ms: int,
    horizon_end_ms: int,
    *,
    resolve_conflicts: bool = False,
    quiet_by_area: QuietMap | None = None,
    max_shift_ms: int = DEFAULT_MAX_SHIFT_MS,
) -> list[TimelineItem]:
    """The node's items that start before the horizon and have not ended (or only just: see
    below), in start order.

    An item stays until `KEPT_AFTER_END_MS` after its end, so a node that is playing it, even
    late, is never told to stop.
    With `resolve_conflicts` or `quiet_by_area` the items are those of `plan_node_timeline`.
    """
    if resolve_conflicts or quiet_by_area is not None:
        return plan_node_timeline(
            node_id,
            area_id,
            tree,
            occurrences,
            now_ms,
            horizon_end_ms,
            resolve_conflicts=resolve_conflicts,
            quiet_by_area=quiet_by_area,
            max_shift_ms=max_shift_ms,
        ).items
    lineage = tree.lineage(area_id)
    chosen = [
        o
        for o in occurrences
        if o.end_ms + KEPT_AFTER_END_MS > now_ms
        and o.start_ms < horizon_end_ms
        and o.targets(node_id, lineage)
    ]
    chosen.sort(key=lambda o: (o.start_ms, -o.priority.rank, o.item_id))
    return [item for o in chosen for item in o.items()]


def plan_node_timeline(
    node_id: str,
    area_id: str,
    tree: AreaTree,
    occurrences: Iterable[Occurrence],
    now_ms: int,
    horizon_end_ms: int,
    *,
    resolve_conflicts: bool = True,
    quiet_by_area: QuietMap | None = None,
    max_shift_ms: int = DEFAULT_MAX_SHIFT_MS,
    deferred: Collection[str] = (),
) -> NodeTimeline:
    """The node's timeline with quiet hours applied, then overlaps resolved by priority.

    Every targeted occurrence given takes part, so one that has ended still pushes a shifted
    item the same way in each recomputation; only the output is cut to [now, horizon), items
    kept `KEPT_AFTER_END_MS` past their end.

    `deferred` names occurrences whose own start has passed but that the node was told to
    play later (shifted or queued): it has not begun them, so they keep their policy.
    """
    lineage = tree.lineage(area_id)
    mine = {o.item_id: o for o in occurrences if o.targets(node_id, lineage)}
    # A node already playing an item can only cut it: moving or removing it would replay it.
    candidates = [
        replace(c, on_preempt=Policy.preempt)
        if c.start_ms <= now_ms and c.item_id not in deferred
        else c
        for c in (o.candidate() for o in mine.values())
    ]
    adjustments: list[Adjustment] = []
    if quiet_by_area is not None:
        candidates, adjustments = drop_quiet(
            candidates, quiet_hours_for(area_id, tree, quiet_by_area)
        )
    if resolve_conflicts:
        resolution = resolve(candidates, max_shift_ms=max_shift_ms)
        placed = [(p.item_id, p.start_ms, p.duration_ms) for p in resolution.items]
        adjustments += resolution.adjustments
    else:
        placed = [(c.item_id, c.start_ms, c.duration_ms) for c in candidates]
    placed = [
        p for p in placed if p[1] + p[2] + KEPT_AFTER_END_MS > now_ms and p[1] < horizon_end_ms
    ]
    placed.sort(key=lambda p: (p[1], -mine[p[0]].priority.rank, p[0]))
    relevant = [
        a
        for a in adjustments
        if max(a.original_start_ms + a.original_duration_ms, a.start_ms + a.duration_ms)
        + KEPT_AFTER_END_MS
        > now_ms
        and min(a.original_start_ms, a.start_ms) < horizon_end_ms
    ]
    relevant.sort(key=lambda a: (a.original_start_ms, a.item_id))
    items = [item for i, start, dur in placed for item in mine[i].items(start, dur)]
    return NodeTimeline(items, relevant)


def timeline_digest(items: list[TimelineItem], prefetch: Sequence[MediaRef] = ()) -> str:
    """A stable fingerprint of the items (and media to hold in advance), so a node gets a new
    version only when they change."""
    data: list[Any] = [i.model_dump(mode="json") for i in items]
    if prefetch:
        data.append(sorted(m.sha256 for m in prefetch))
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()
