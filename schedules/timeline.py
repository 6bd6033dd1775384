"""Which occurrences each node plays: target resolution over the area tree, and the timeline."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from protocol import MediaRef, Priority, TimelineItem


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
class Occurrence:
    """One playing of a broadcast at an absolute time, with where it plays."""

    item_id: str
    broadcast_id: str
    start_ms: int
    duration_ms: int
    media: MediaRef
    priority: Priority = Priority.normal
    title: str = ""
    areas: frozenset[str] = field(default_factory=frozenset)
    nodes: frozenset[str] = field(default_factory=frozenset)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    def targets(self, node_id: str, lineage: Iterable[str]) -> bool:
        return node_id in self.nodes or any(a in self.areas for a in lineage)

    def item(self) -> TimelineItem:
        return TimelineItem(
            item_id=self.item_id,
            broadcast_id=self.broadcast_id,
            start=self.start_ms,
            duration_ms=self.duration_ms,
            priority=self.priority,
            title=self.title[:200],
            media=self.media,
        )


def node_timeline(
    node_id: str,
    area_id: str,
    tree: AreaTree,
    occurrences: Iterable[Occurrence],
    now_ms: int,
    horizon_end_ms: int,
) -> list[TimelineItem]:
    """The node's items that have not yet ended and start before the horizon, in start order.

    An item stays until it has ended, so a node that is playing it is never told to stop.
    """
    lineage = tree.lineage(area_id)
    chosen = [
        o
        for o in occurrences
        if o.end_ms > now_ms and o.start_ms < horizon_end_ms and o.targets(node_id, lineage)
    ]
    chosen.sort(key=lambda o: (o.start_ms, -o.priority.rank, o.item_id))
    return [o.item() for o in chosen]


def timeline_digest(items: list[TimelineItem]) -> str:
    """A stable fingerprint of the items, so a node gets a new version only when they change."""
    data = [i.model_dump(mode="json") for i in items]
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()
