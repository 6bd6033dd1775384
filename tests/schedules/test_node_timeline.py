"""node_timeline keeps its old behaviour by default and resolves conflicts when asked."""

from __future__ import annotations

from schedules_support import MIN, at, occ

from protocol import Priority
from schedules import (
    KEPT_AFTER_END_MS,
    AreaTree,
    Change,
    Policy,
    QuietHours,
    node_timeline,
    plan_node_timeline,
)

TREE = AreaTree({"xa": None, "thon": "xa"})


def test_defaults_unchanged_overlaps_kept() -> None:
    items = [occ("a", at(1, 6), 10, {"xa"}), occ("b", at(1, 6, 5), 10, {"thon"}, Priority.priority)]
    got = node_timeline("n1", "thon", TREE, items, at(1, 0), at(2, 0))
    assert [(i.title, i.start, i.duration_ms) for i in got] == [
        ("a", at(1, 6), 10 * MIN),
        ("b", at(1, 6, 5), 10 * MIN),
    ]


def test_resolved_items_carry_final_start_and_duration() -> None:
    items = [
        occ("a", at(1, 6), 10, {"xa"}, schedule="1"),
        occ("b", at(1, 6, 5), 10, {"thon"}, Priority.priority, schedule="2"),
        occ("c", at(1, 6, 8), 4, {"xa"}, policy=Policy.shift, schedule="3"),
    ]
    got = node_timeline("n1", "thon", TREE, items, at(1, 0), at(2, 0), resolve_conflicts=True)
    assert [(i.title, i.start, i.duration_ms) for i in got] == [
        ("a", at(1, 6), 5 * MIN),
        ("b", at(1, 6, 5), 10 * MIN),
        ("c", at(1, 6, 15), 4 * MIN),
    ]
    plan = plan_node_timeline("n1", "thon", TREE, items, at(1, 0), at(2, 0))
    assert [a.change for a in plan.adjustments] == [Change.cut_short, Change.shifted]
    assert plan.items == got


def test_an_item_already_playing_is_cut_never_moved() -> None:
    playing = occ("a", at(1, 6), 10, {"xa"}, policy=Policy.shift)
    urgent = occ("b", at(1, 6, 5), 3, {"xa"}, Priority.emergency, schedule="2")
    plan = plan_node_timeline("n1", "thon", TREE, [playing, urgent], at(1, 6, 2), at(2, 0))
    assert [(i.title, i.start, i.duration_ms) for i in plan.items] == [
        ("a", at(1, 6), 5 * MIN),
        ("b", at(1, 6, 5), 3 * MIN),
    ]
    assert plan.adjustments[0].change is Change.cut_short


def test_a_shifted_item_whose_own_start_passed_keeps_its_place() -> None:
    """Pushed behind a bulletin, the news has not begun when its own start passes: told so,
    the planner keeps shifting it rather than treat it as playing and drop it."""
    news = occ("news", at(1, 6), 5, {"xa"}, policy=Policy.shift)
    bulletin = occ("bulletin", at(1, 6), 3, {"xa"}, Priority.priority, schedule="2")
    during = at(1, 6, 1)
    told = plan_node_timeline("n1", "thon", TREE, [news, bulletin], at(1, 0), at(2, 0))
    kept = plan_node_timeline(
        "n1", "thon", TREE, [news, bulletin], during, at(2, 0), deferred={news.item_id}
    )
    assert kept.items == told.items
    assert [(i.title, i.start) for i in kept.items] == [
        ("bulletin", at(1, 6)),
        ("news", at(1, 6, 3)),
    ]
    # Without what the node was told, an item past its start counts as begun: it can only be cut.
    blind = plan_node_timeline("n1", "thon", TREE, [news, bulletin], during, at(2, 0))
    assert [i.title for i in blind.items] == ["bulletin"]


def test_an_item_stays_a_while_after_its_end_for_a_node_playing_it_late() -> None:
    """A node may play an item up to 10 s late; absent from the timeline, it would stop it."""
    news = occ("news", at(1, 6), 5, {"xa"})
    end = at(1, 6, 5)

    def kept(now: int) -> list[tuple[str, int]]:
        planned = plan_node_timeline("n1", "thon", TREE, [news], now, at(2, 0)).items
        assert node_timeline("n1", "thon", TREE, [news], now, at(2, 0)) == planned
        return [(i.title, i.start) for i in planned]

    assert kept(end + KEPT_AFTER_END_MS - 1) == [("news", at(1, 6))]
    assert kept(end + KEPT_AFTER_END_MS) == []


def test_quiet_hours_and_horizon() -> None:
    night = occ("night", at(1, 23), 5, {"xa"})
    later = occ("later", at(3, 6), 5, {"xa"})
    got = node_timeline(
        "n1",
        "thon",
        TREE,
        [night, later],
        at(1, 0),
        at(2, 0),
        quiet_by_area={"xa": QuietHours("22:00", "05:00")},
    )
    assert got == []
