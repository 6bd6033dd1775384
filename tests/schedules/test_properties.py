"""Properties of resolution: no overlap on a node, and nothing leaves its window unless moved."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from itertools import pairwise

from dateutil import rrule as du
from hypothesis import given, settings
from hypothesis import strategies as st
from schedules_support import candidates

from schedules import Change, Policy, check_new_schedule, occurrences, parse_rrule, resolve
from schedules.candidates import Candidate
from schedules.localtime import DAY_MS, from_ms, to_ms

MOVED = {Change.shifted, Change.queued}


@settings(max_examples=300, deadline=None)
@given(st.lists(candidates(), max_size=25, unique_by=lambda c: c.item_id))
def test_resolved_timeline_never_overlaps(items: list[Candidate]) -> None:
    result = resolve(items)
    timed = sorted((p for p in result.items if p.duration_ms > 0), key=lambda p: p.start_ms)
    for before, after in pairwise(timed):
        assert before.end_ms <= after.start_ms


@settings(max_examples=300, deadline=None)
@given(st.lists(candidates(), max_size=25, unique_by=lambda c: c.item_id))
def test_only_moved_items_leave_their_window(items: list[Candidate]) -> None:
    result = resolve(items)
    changes = {a.item_id: a.change for a in result.adjustments}
    by_id = {c.item_id: c for c in items}
    assert {p.item_id for p in result.items} | {
        a.item_id for a in result.adjustments if a.duration_ms == 0
    } == set(by_id)
    for p in result.items:
        c = by_id[p.item_id]
        if changes.get(p.item_id) in MOVED:
            limit = c.latest_end_ms if c.latest_end_ms is not None else c.start_ms + 3600_000
            assert p.start_ms > c.start_ms and p.end_ms <= limit
        else:
            assert c.start_ms <= p.start_ms and p.end_ms <= c.end_ms
            assert (p.start_ms, p.duration_ms) == (c.start_ms, c.duration_ms) or changes[
                p.item_id
            ] is Change.cut_short


@settings(max_examples=200, deadline=None)
@given(
    st.lists(candidates(), max_size=20, unique_by=lambda c: c.item_id),
    st.lists(candidates(), max_size=8, unique_by=lambda c: c.item_id),
)
def test_clash_check_agrees_with_comparing_every_pair(
    existing: list[Candidate], new: list[Candidate]
) -> None:
    new = [replace(c, item_id="new-" + c.item_id, schedule_id="99") for c in new]
    found = {
        (c.new.item_id, c.existing.item_id) for c in check_new_schedule({"n": existing}, {"n": new})
    }
    expected = set()
    for c in new:
        if c.on_preempt is Policy.queue or c.duration_ms == 0:
            continue
        for o in existing + new:
            if o.rank != c.rank or o.item_id == c.item_id or o.duration_ms == 0:
                continue
            if o in new and (o.start_ms, o.item_id) >= (c.start_ms, c.item_id):
                continue
            if o.start_ms < c.end_ms and c.start_ms < o.end_ms:
                expected.add((c.item_id, o.item_id))
    assert found == expected


RULES = st.sampled_from(
    [
        "FREQ=DAILY;BYHOUR=6,17;BYMINUTE=0",
        "FREQ=DAILY;INTERVAL=3;BYDAY=MO,WE",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SA;BYHOUR=7",
        "FREQ=WEEKLY",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=-1,15",
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO,-1FR;BYHOUR=19;BYMINUTE=30",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    RULES,
    st.datetimes(datetime(2020, 1, 1), datetime(2026, 1, 1)),
    st.integers(0, 3 * 366),
    st.integers(1, 60),
)
def test_window_expansion_equals_expansion_from_the_start(
    rule: str, start: datetime, offset_days: int, days: int
) -> None:
    rec = parse_rrule(rule, start.replace(second=0, microsecond=0))
    lo = rec.start_ms + offset_days * DAY_MS - 7 * 3600_000
    hi = lo + days * DAY_MS
    full = du.rrule(dtstart=rec.dtstart, **rec.parts.kwargs())
    expected = [to_ms(m) for m in full.between(from_ms(lo), from_ms(hi), inc=True)]
    assert occurrences(rec, lo, hi) == [ms for ms in expected if lo <= ms < hi]
