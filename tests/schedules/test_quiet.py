"""Quiet hours across midnight, inherited down the area tree, overridden by higher priority."""

from __future__ import annotations

import pytest
from schedules_support import MIN, at, cand, occ

from protocol import Priority
from schedules import (
    AreaTree,
    Change,
    InvalidQuietHours,
    QuietHours,
    QuietHoursViolation,
    ensure_quiet,
    plan_node_timeline,
    quiet_hours_for,
    quiet_violations,
)

TREE = AreaTree({"tinh": None, "huyen": "tinh", "xa": "huyen", "thon-1": "xa", "thon-2": "xa"})
NIGHT = QuietHours("22:00", "05:30")
QUIET = {"huyen": NIGHT, "thon-2": QuietHours("21:00", "06:00")}


def test_across_midnight() -> None:
    assert NIGHT.contains(at(1, 23)) and NIGHT.contains(at(2, 3)) and NIGHT.contains(at(2, 5, 29))
    assert not NIGHT.contains(at(2, 5, 30)) and not NIGHT.contains(at(1, 21, 59))
    assert NIGHT.overlaps(at(1, 21, 55), 10 * MIN)
    assert not NIGHT.overlaps(at(1, 21, 50), 10 * MIN)  # ends exactly at 22:00
    day = QuietHours("12:00", "13:30")
    assert day.contains(at(1, 12, 30)) and not day.contains(at(1, 14))


def test_inheritance_from_the_nearest_ancestor() -> None:
    assert quiet_hours_for("thon-1", TREE, QUIET) == NIGHT
    assert quiet_hours_for("thon-2", TREE, QUIET) == QuietHours("21:00", "06:00")
    assert quiet_hours_for("tinh", TREE, QUIET) is None
    assert quiet_hours_for("thon-1", TREE, {**QUIET, "xa": None}) is None


def test_normal_in_quiet_hours_is_refused_at_scheduling() -> None:
    late = cand("Loa tối", at(1, 22, 30), 5)
    with pytest.raises(QuietHoursViolation) as err:
        ensure_quiet([late], ["thon-1"], TREE, QUIET)
    assert (
        "'Loa tối' at 22:30 01/12/2025 falls in the quiet hours 22:00–05:30 of area thon-1"
        in str(err.value)
    )
    ensure_quiet([cand("Loa sáng", at(2, 5, 30), 5)], ["thon-1"], TREE, QUIET)


def test_priority_and_emergency_override() -> None:
    items = [
        cand("ưu tiên", at(1, 23), 5, Priority.priority),
        cand("khẩn", at(2, 2), 5, Priority.emergency),
    ]
    assert quiet_violations(items, ["xa"], TREE, QUIET) == []


def test_stricter_village_drops_from_its_timeline_but_does_not_refuse() -> None:
    commune_wide = occ("Tin 21h", at(1, 21, 15), 5, {"xa"})
    assert quiet_violations([commune_wide.candidate()], ["xa"], TREE, QUIET) == []
    quiet_village = plan_node_timeline(
        "n2", "thon-2", TREE, [commune_wide], at(1, 0), at(2, 0), quiet_by_area=QUIET
    )
    assert quiet_village.items == []
    assert quiet_village.adjustments[0].change is Change.quiet_hours
    other = plan_node_timeline(
        "n1", "thon-1", TREE, [commune_wide], at(1, 0), at(2, 0), quiet_by_area=QUIET
    )
    assert [i.item_id for i in other.items] == [commune_wide.item_id]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("22h", "05:30", "start '22h'"),
        ("22:00", "24:00", "end '24:00'"),
        ("06:00", "06:00", "both 06:00"),
    ],
)
def test_invalid_quiet_hours(start: str, end: str, message: str) -> None:
    with pytest.raises(InvalidQuietHours, match=message):
        QuietHours(start, end)
