"""The scheduling-time check: does a new schedule overlap an equal-priority item on any node?"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from schedules.candidates import Candidate, Policy
from schedules.errors import ScheduleConflict


@dataclass(frozen=True)
class Clash:
    """Two equal-priority items that would overlap on one node."""

    node_id: str
    new: Candidate
    existing: Candidate


class _RankIndex:
    """One node's items of one priority, sorted by start, with the running maximum end.

    The running maximum lets a query walk back from the first item starting after the new one
    ends and stop as soon as nothing earlier can still be playing.
    """

    def __init__(self, items: Sequence[Candidate]) -> None:
        self.items = sorted(items, key=lambda c: (c.start_ms, c.item_id))
        self.starts = [c.start_ms for c in self.items]
        self.max_end = list(accumulate((c.end_ms for c in self.items), max))

    def overlapping(self, c: Candidate) -> list[Candidate]:
        j = bisect_left(self.starts, c.end_ms) - 1
        hits: list[Candidate] = []
        while j >= 0 and self.max_end[j] > c.start_ms:
            other = self.items[j]
            if other.end_ms > c.start_ms and other.item_id != c.item_id and other.duration_ms > 0:
                hits.append(other)
            j -= 1
        return hits[::-1]


def _by_rank(items: Sequence[Candidate]) -> dict[int, _RankIndex]:
    groups: dict[int, list[Candidate]] = {}
    for c in items:
        groups.setdefault(c.rank, []).append(c)
    return {rank: _RankIndex(group) for rank, group in groups.items()}


def check_new_schedule(
    existing_items_by_node: Mapping[str, Sequence[Candidate]],
    new_candidates_by_node: Mapping[str, Sequence[Candidate]],
) -> list[Clash]:
    """Every equal-priority overlap the new candidates would make, node by node.

    A new candidate whose policy is `queue` never clashes: it will wait behind the earlier
    item. Existing items of the same schedule are skipped, so an edited schedule is not held
    against its own earlier version; overlaps among the new candidates themselves are clashes.
    Different priorities never clash here: the timeline resolves them by policy.
    """
    clashes: list[Clash] = []
    for node_id, news in new_candidates_by_node.items():
        contenders = [c for c in news if c.on_preempt is not Policy.queue and c.duration_ms > 0]
        if not contenders:
            continue
        existing = _by_rank(existing_items_by_node.get(node_id, ()))
        own = _by_rank(news)
        for c in contenders:
            index = existing.get(c.rank)
            if index is not None:
                clashes.extend(
                    Clash(node_id, c, other)
                    for other in index.overlapping(c)
                    if other.schedule_id != c.schedule_id
                )
            # Each pair among the new ones is reported once, by its later member.
            clashes.extend(
                Clash(node_id, c, other)
                for other in own[c.rank].overlapping(c)
                if (other.start_ms, other.item_id) < (c.start_ms, c.item_id)
            )
    return clashes


def ensure_no_clash(
    existing_items_by_node: Mapping[str, Sequence[Candidate]],
    new_candidates_by_node: Mapping[str, Sequence[Candidate]],
) -> None:
    """Raise ScheduleConflict, naming the clashing items and their local times, if any clash."""
    clashes = check_new_schedule(existing_items_by_node, new_candidates_by_node)
    if clashes:
        raise ScheduleConflict(clashes)
