"""A node page's chart: points placed by their time (a gap in the reports shows as one), values
on its axis in the reader's decimals, times at both ends and the middle."""

from __future__ import annotations

from api.console.monitoring import chart

POINTS = [
    {"ts": "2026-12-05T03:00:00+00:00", "temperature_c": 30.0},
    {"ts": "2026-12-05T03:30:00+00:00", "temperature_c": None},  # not measured: no point
    {"ts": "2026-12-05T03:30:00+00:00", "temperature_c": 31.5},
    {"ts": "2026-12-05T05:00:00+00:00", "temperature_c": 33.0},
]


def test_points_by_time_with_axes_in_the_readers_numbers():
    c = chart(POINTS, "temperature_c", "vi")
    xs = [float(p.split(",")[0]) for p in c["points"].split()]
    assert xs == [0.0, 150.0, 600.0]  # 30 min of 120 is a quarter of the width
    ys = [float(p.split(",")[1]) for p in c["points"].split()]
    assert ys[0] == 112.0 and ys[-1] == 8.0  # lowest on the bottom line, highest on the top
    assert (c["low"], c["mid"], c["high"], c["last"]) == ("30", "31,5", "33", "33")
    assert (c["first_ts"], c["last_ts"]) == (
        "2026-12-05T03:00:00+00:00",
        "2026-12-05T05:00:00+00:00",
    )
    assert c["mid_ts"] == "2026-12-05T04:00:00+00:00"
    assert chart(POINTS, "temperature_c", "en")["mid"] == "31.5"


def test_one_point_is_not_a_line():
    c = chart(POINTS[:1], "temperature_c")
    assert c["points"] == "" and c["count"] == 1
    assert chart([], "signal_dbm")["count"] == 0


def test_axis_values_are_rounded_as_people_read_them():
    hours = [
        {"ts": "2026-12-05T00:00:00+00:00", "hours": 0.0},
        {"ts": "2026-12-06T00:00:00+00:00", "hours": 0.012318},
    ]
    c = chart(hours, "hours", "vi")
    assert (c["low"], c["mid"], c["high"]) == ("0", "0,01", "0,01")
    big = [
        {"ts": "2026-12-05T00:00:00+00:00", "memory_free_mb": 1234.56},
        {"ts": "2026-12-05T01:00:00+00:00", "memory_free_mb": -0.001},
    ]
    c = chart(big, "memory_free_mb", "en")
    assert (c["low"], c["high"]) == ("0", "1235")
