"""Overlaps on one node's timeline, resolved by priority (Circular 39/2020) and each policy."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from schedules.candidates import Candidate, Policy, duration_text
from schedules.clashes import Clash, check_new_schedule, ensure_no_clash
from schedules.localtime import clock, label

DEFAULT_MAX_SHIFT_MS = 3600 * 1000
# A cut leaving less than this is noise to listeners, not an announcement.
DEFAULT_MIN_PLAY_MS = 1000


class Change(StrEnum):
    cut_short = "cut_short"
    shifted = "shifted"
    queued = "queued"
    skipped = "skipped"
    quiet_hours = "quiet_hours"


@dataclass(frozen=True)
class Planned:
    """A candidate at its final place on the node's timeline."""

    candidate: Candidate
    start_ms: int
    duration_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    @property
    def item_id(self) -> str:
        return self.candidate.item_id


@dataclass(frozen=True)
class Adjustment:
    """What happened to one occurrence and why, for the node's timeline view and playback log.

    For a skipped or silenced item the final duration is 0 and the start is the original one.
    """

    item_id: str
    schedule_id: str
    change: Change
    reason: str
    original_start_ms: int
    original_duration_ms: int
    start_ms: int
    duration_ms: int
    by_item_id: str | None = None


@dataclass
class Resolution:
    items: list[Planned] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)


class _Busy:
    """The node's placed items: sorted by start, never overlapping each other.

    Zero-length items occupy nothing and are kept apart: among the others, ends rise with
    starts, which is what lets every search stop early.
    """

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.items: list[Planned] = []
        self.instants: list[Planned] = []

    def add(self, item: Planned) -> None:
        if item.duration_ms == 0:
            self.instants.append(item)
            return
        i = bisect_right(self.starts, item.start_ms)
        self.starts.insert(i, item.start_ms)
        self.items.insert(i, item)

    def overlapping(self, start: int, end: int) -> list[Planned]:
        j = bisect_left(self.starts, end) - 1
        hits: list[Planned] = []
        while j >= 0 and self.items[j].end_ms > start:
            hits.append(self.items[j])
            j -= 1
        return hits[::-1]

    def first_gap(self, start: int, duration: int) -> int:
        """The earliest time at or after start where the duration fits between placed items."""
        t = start
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and self.items[i].end_ms > t:
            t = self.items[i].end_ms
        i += 1
        while i < len(self.items) and self.starts[i] < t + duration:
            t = max(t, self.items[i].end_ms)
            i += 1
        return t


def resolve(
    candidates: Iterable[Candidate],
    *,
    max_shift_ms: int = DEFAULT_MAX_SHIFT_MS,
    min_play_ms: int = DEFAULT_MIN_PLAY_MS,
) -> Resolution:
    """Place one node's candidates so none overlap: higher priority first, then by start.

    Never raises: a same-priority overlap that reached a timeline (say, after a node moved to
    another commune) goes to the earlier item and the later one yields by its own policy.
    """
    busy = _Busy()
    out = Resolution()
    for c in sorted(
        candidates, key=lambda c: (-c.rank, not c.first, c.start_ms, c.order, c.item_id)
    ):
        hits = busy.overlapping(c.start_ms, c.end_ms)
        if not hits:
            busy.add(Planned(c, c.start_ms, c.duration_ms))
            continue
        planned, adjustment = _yield(c, hits[0], busy, max_shift_ms, min_play_ms)
        if planned is not None:
            busy.add(planned)
        out.adjustments.append(adjustment)
    out.items = sorted(
        busy.items + busy.instants, key=lambda p: (p.start_ms, -p.candidate.rank, p.item_id)
    )
    return out


def _yield(
    c: Candidate, blocker: Planned, busy: _Busy, max_shift_ms: int, min_play_ms: int
) -> tuple[Planned | None, Adjustment]:
    by = blocker.candidate.describe()

    def adjust(change: Change, reason: str, start: int, duration: int) -> Adjustment:
        return Adjustment(
            c.item_id,
            c.schedule_id,
            change,
            reason,
            c.start_ms,
            c.duration_ms,
            start,
            duration,
            blocker.item_id,
        )

    def skipped(reason: str) -> tuple[None, Adjustment]:
        return None, adjust(Change.skipped, f"{c.describe()} skipped: {reason}", c.start_ms, 0)

    if c.on_preempt in (Policy.shift, Policy.queue):
        limit = c.latest_end_ms if c.latest_end_ms is not None else c.start_ms + max_shift_ms
        start = busy.first_gap(c.start_ms, c.duration_ms)
        if start + c.duration_ms > limit:
            return skipped(
                f"it overlaps {by} and no free {duration_text(c.duration_ms)} ends by "
                f"{label(limit)}"
            )
        change = Change.queued if c.on_preempt is Policy.queue else Change.shifted
        moved = clock(start)
        reason = f"{c.describe()} {change.value} to {moved} after {by}"
        return Planned(c, start, c.duration_ms), adjust(change, reason, start, c.duration_ms)
    if c.on_preempt is Policy.preempt:
        if blocker.start_ms <= c.start_ms:
            return skipped(f"it would start while {by} plays")
        kept = blocker.start_ms - c.start_ms
        if kept < min_play_ms:
            return skipped(f"{by} starts {duration_text(kept)} after it")
        lost = duration_text(c.duration_ms - kept)
        reason = f"{c.describe()} cut short at {label(blocker.start_ms)} by {by}; {lost} lost"
        return Planned(c, c.start_ms, kept), adjust(Change.cut_short, reason, c.start_ms, kept)
    return skipped(f"it overlaps {by}")


__all__ = [
    "DEFAULT_MAX_SHIFT_MS",
    "DEFAULT_MIN_PLAY_MS",
    "Adjustment",
    "Candidate",
    "Change",
    "Clash",
    "Planned",
    "Policy",
    "Resolution",
    "check_new_schedule",
    "ensure_no_clash",
    "resolve",
]
