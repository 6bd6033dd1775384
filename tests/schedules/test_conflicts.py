"""Overlap resolution on one node by priority and policy, and the scheduling-time clash check."""

from __future__ import annotations

import pytest
from schedules_support import MIN, at, cand

from protocol import Priority
from schedules import Change, Policy, ScheduleConflict, check_new_schedule, ensure_no_clash, resolve

P, E = Priority.priority, Priority.emergency


def placed(result) -> dict[str, tuple[int, int]]:
    return {p.candidate.title: (p.start_ms, p.duration_ms) for p in result.items}


def test_higher_preempts_lower_which_is_cut_short() -> None:
    low = cand("tin xã", at(1, 6), 10)
    high = cand("bão số 9", at(1, 6, 4), 5, P)
    result = resolve([low, high])
    assert placed(result) == {"tin xã": (at(1, 6), 4 * MIN), "bão số 9": (at(1, 6, 4), 5 * MIN)}
    [adj] = result.adjustments
    assert adj.change is Change.cut_short and adj.by_item_id == high.item_id
    assert "cut short at 06:04 01/12/2025" in adj.reason and "6 min 0 s lost" in adj.reason


def test_preempt_of_an_item_starting_inside_the_higher_skips_it() -> None:
    result = resolve([cand("bão", at(1, 6), 10, P), cand("tin xã", at(1, 6, 5), 3)])
    assert list(placed(result)) == ["bão"]
    assert result.adjustments[0].change is Change.skipped
    assert "would start while 'bão' (priority) at 06:00 01/12/2025" in result.adjustments[0].reason


def test_shift_moves_after_the_higher_within_its_limit() -> None:
    result = resolve(
        [cand("tin xã", at(1, 6), 10, policy=Policy.shift), cand("bão", at(1, 6, 5), 10, P)]
    )
    assert placed(result)["tin xã"] == (at(1, 6, 15), 10 * MIN)
    assert result.adjustments[0].change is Change.shifted
    assert "shifted to 06:15" in result.adjustments[0].reason


def test_shift_that_no_longer_fits_is_skipped() -> None:
    low = cand("tin xã", at(1, 6), 10, policy=Policy.shift, latest_end=at(1, 6, 20))
    result = resolve([low, cand("bão", at(1, 6, 5), 15, P)])
    assert "tin xã" not in placed(result)
    assert "no free 10 min 0 s ends by 06:20 01/12/2025" in result.adjustments[0].reason
    default_limit = resolve(
        [cand("a", at(1, 6), 10, policy=Policy.shift), cand("b", at(1, 6), 90, P)]
    )
    assert list(placed(default_limit)) == ["b"]


def test_skip_policy_drops_the_whole_item() -> None:
    result = resolve(
        [cand("tin xã", at(1, 6), 10, policy=Policy.skip), cand("bão", at(1, 6, 9), 1, P)]
    )
    assert list(placed(result)) == ["bão"]
    assert result.adjustments[0].change is Change.skipped


def test_emergency_over_everything() -> None:
    items = [
        cand("thường", at(1, 6), 20, policy=Policy.shift),
        cand("ưu tiên", at(1, 6, 10), 10, P, policy=Policy.shift),
        cand("khẩn cấp", at(1, 6, 5), 20, E),
    ]
    got = placed(resolve(items))
    assert got["khẩn cấp"] == (at(1, 6, 5), 20 * MIN)
    assert got["ưu tiên"] == (at(1, 6, 25), 10 * MIN)
    assert got["thường"] == (at(1, 6, 35), 20 * MIN)


def test_adjacent_items_do_not_conflict() -> None:
    a, b = cand("a", at(1, 6), 10), cand("b", at(1, 6, 10), 10)
    assert not resolve([a, b]).adjustments
    assert check_new_schedule({"n1": [a]}, {"n1": [b]}) == []
    assert not resolve([a, cand("c", at(1, 6, 10), 5, E)]).adjustments


def test_equal_priority_overlap_is_refused_naming_both_with_local_times() -> None:
    old = cand("Họp dân", at(1, 6), 10, schedule="7")
    new = cand("Tiêm chủng", at(1, 6, 5), 10, schedule="9")
    clashes = check_new_schedule({"n1": [old], "n2": [old]}, {"n1": [new], "n2": [new]})
    assert [(c.node_id, c.existing, c.new) for c in clashes] == [("n1", old, new), ("n2", old, new)]
    with pytest.raises(ScheduleConflict) as err:
        ensure_no_clash({"n1": [old], "n2": [old]}, {"n1": [new], "n2": [new]})
    message = str(err.value)
    assert "'Tiêm chủng' (normal) at 06:05 01/12/2025 until 06:15" in message
    assert "'Họp dân' (normal) at 06:00 01/12/2025 until 06:10" in message
    assert "on 2 loudspeakers" in message and "queue" in message
    assert len(err.value.clashes) == 2


def test_different_priorities_and_other_nodes_do_not_clash() -> None:
    old = cand("a", at(1, 6), 10)
    assert check_new_schedule({"n1": [old]}, {"n1": [cand("b", at(1, 6), 10, P)]}) == []
    assert check_new_schedule({"n1": [old]}, {"n2": [cand("b", at(1, 6), 10)]}) == []


def test_new_candidates_clashing_among_themselves_and_edits_of_the_same_schedule() -> None:
    first, second = cand("x", at(1, 6), 10, schedule="5"), cand("x2", at(1, 6, 5), 10, schedule="5")
    [clash] = check_new_schedule({}, {"n1": [first, second]})
    assert clash.new is second and clash.existing is first
    earlier_version = cand("x-old", at(1, 6), 10, schedule="5")
    assert check_new_schedule({"n1": [earlier_version]}, {"n1": [first]}) == []


def test_queue_policy_is_placed_right_after_the_earlier_one() -> None:
    old = cand("Họp dân", at(1, 6), 10)
    new = cand("Tiêm chủng", at(1, 6, 5), 10, policy=Policy.queue)
    assert check_new_schedule({"n1": [old]}, {"n1": [new]}) == []
    result = resolve([old, new])
    assert placed(result)["Tiêm chủng"] == (at(1, 6, 10), 10 * MIN)
    assert result.adjustments[0].change is Change.queued


def test_resolution_of_a_same_priority_overlap_keeps_the_earlier_one() -> None:
    result = resolve([cand("b", at(1, 6, 5), 10), cand("a", at(1, 6), 10)])
    assert list(placed(result)) == ["a"]


def test_too_short_remainder_is_skipped_not_cut() -> None:
    result = resolve([cand("a", at(1, 6), 10), cand("b", at(1, 6) + 500, 1, E)])
    assert list(placed(result)) == ["b"]
