"""A report's period is made of Viet Nam local days: weeks from Monday, quarters of three months,
and the UTC instants of their local midnights."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from controller.reports.periods import Period, window
from controller.reports.report import OWN, bucket_of
from schedules import AreaTree


@pytest.mark.parametrize(
    ("period", "day", "first", "last"),
    [
        (Period.day, date(2026, 2, 28), date(2026, 2, 28), date(2026, 2, 28)),
        # A week over the new year: Monday 29/12/2025 to Sunday 4/1/2026.
        (Period.week, date(2026, 1, 1), date(2025, 12, 29), date(2026, 1, 4)),
        (Period.month, date(2028, 2, 10), date(2028, 2, 1), date(2028, 2, 29)),
        (Period.month, date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31)),
        (Period.quarter, date(2026, 11, 17), date(2026, 10, 1), date(2026, 12, 31)),
        (Period.quarter, date(2026, 3, 31), date(2026, 1, 1), date(2026, 3, 31)),
        (Period.year, date(2026, 7, 4), date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_periods(period: Period, day: date, first: date, last: date) -> None:
    w = window(period, day)
    assert (w.first, w.last) == (first, last)
    assert len(w.days()) == (last - first).days + 1
    # Local midnight is 17:00 UTC the day before (Viet Nam is UTC+7 all year).
    midnight = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(hours=7)
    assert datetime.fromtimestamp(w.start_ms / 1000, UTC) == midnight
    assert w.end_ms - w.start_ms == len(w.days()) * 24 * 3600 * 1000


def test_a_node_counts_in_the_child_its_area_lies_in_or_as_the_areas_own() -> None:
    tree = AreaTree({"tinh": None, "huyen": "tinh", "xa": "huyen", "thon": "xa", "xa-2": "huyen"})
    assert bucket_of(tree, "huyen", "thon") == "xa"
    assert bucket_of(tree, "huyen", "xa-2") == "xa-2"
    assert bucket_of(tree, "huyen", "huyen") == OWN
    assert bucket_of(tree, "tinh", "thon") == "huyen"
    with pytest.raises(ValueError, match="not under"):
        bucket_of(tree, "xa-2", "thon")
