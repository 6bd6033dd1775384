"""Recurrence rules: expansion over windows, exclusions, ends, export and refusals."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from schedules_support import at

from schedules import InvalidRecurrence, Recurrence, occurrences, parse_rrule
from schedules.localtime import from_ms, label, local_day_window

DEC = local_day_window(date(2025, 12, 1), date(2025, 12, 31))
WEEKDAYS_TWICE = "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR,SA;BYHOUR=6,17;BYMINUTE=0"


def test_twice_a_day_in_december_except_sundays() -> None:
    rec = parse_rrule(WEEKDAYS_TWICE, datetime(2025, 12, 1, 6, 0), end_date=date(2025, 12, 31))
    wide = local_day_window(date(2025, 11, 1), date(2026, 1, 31))
    found = occurrences(rec, *wide)
    sundays = sum(1 for d in range(1, 32) if date(2025, 12, d).weekday() == 6)
    assert len(found) == (31 - sundays) * 2 == 54
    assert label(found[0]) == "06:00 01/12/2025"
    assert label(found[-1]) == "17:00 31/12/2025"
    assert all(from_ms(ms).weekday() != 6 for ms in found)
    assert {from_ms(ms).strftime("%H:%M") for ms in found} == {"06:00", "17:00"}


def test_window_is_half_open_and_in_order() -> None:
    rec = parse_rrule(WEEKDAYS_TWICE, datetime(2025, 12, 1, 6, 0))
    found = occurrences(rec, at(2, 6), at(3, 6))
    assert found == [at(2, 6), at(2, 17)]
    assert occurrences(rec, at(3, 6), at(2, 6)) == []


def test_exdate_days_and_single_times() -> None:
    rec = parse_rrule(
        WEEKDAYS_TWICE,
        datetime(2025, 12, 1, 6, 0),
        end_date=date(2025, 12, 31),
        exdates=[date(2025, 12, 24), datetime(2025, 12, 25, 17, 0)],
    )
    found = occurrences(rec, *DEC)
    assert len(found) == 54 - 3
    assert at(24, 6) not in found and at(24, 17) not in found and at(25, 17) not in found
    assert at(25, 6) in found


def test_count_and_until() -> None:
    counted = parse_rrule("FREQ=DAILY;COUNT=5", datetime(2025, 12, 1, 7, 30))
    assert occurrences(counted, *DEC) == [at(d, 7, 30) for d in range(1, 6)]
    until = parse_rrule("FREQ=WEEKLY;BYDAY=MO;UNTIL=20251215", datetime(2025, 12, 1, 8, 0))
    assert occurrences(until, *DEC) == [at(1, 8), at(8, 8), at(15, 8)]
    utc = parse_rrule("FREQ=DAILY;UNTIL=20251203T010000Z", datetime(2025, 12, 1, 8, 0))
    assert occurrences(utc, *DEC) == [at(1, 8), at(2, 8), at(3, 8)]


def test_monthly_on_day_one_far_from_its_start() -> None:
    rec = parse_rrule("FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=7;BYMINUTE=0", datetime(2023, 1, 1))
    window = local_day_window(date(2025, 11, 15), date(2026, 2, 15))
    assert occurrences(rec, *window) == [
        at(1, 7),
        at(1, 7, month=1, year=2026),
        at(1, 7, month=2, year=2026),
    ]


def test_fast_forward_keeps_interval_phase() -> None:
    # Every other Monday from 1/12/2025; a year later the phase must not drift.
    rec = parse_rrule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2025, 12, 1, 9, 0))
    window = local_day_window(date(2026, 11, 30), date(2026, 12, 31))
    found = [from_ms(ms).date() for ms in occurrences(rec, *window)]
    assert found == [date(2026, 11, 30), date(2026, 12, 14), date(2026, 12, 28)]
    every_third = parse_rrule("FREQ=DAILY;INTERVAL=3", datetime(2025, 1, 1, 5, 0))
    days = [from_ms(ms).date() for ms in occurrences(every_third, *DEC)]
    assert all((d - date(2025, 1, 1)).days % 3 == 0 for d in days) and len(days) == 10


def test_monthly_nth_weekday() -> None:
    rec = parse_rrule("FREQ=MONTHLY;BYDAY=1MO,-1FR;BYHOUR=19;BYMINUTE=30", datetime(2025, 12, 1))
    assert occurrences(rec, *DEC) == [at(1, 19, 30), at(26, 19, 30)]


def test_dtstart_is_moved_to_the_first_occurrence() -> None:
    rec = parse_rrule("FREQ=DAILY;BYHOUR=17;BYMINUTE=0", datetime(2025, 12, 1, 8, 0))
    assert label(rec.start_ms) == "17:00 01/12/2025"


def test_once_and_export() -> None:
    one = Recurrence.once(at(5, 9))
    assert occurrences(one, *DEC) == [at(5, 9)]
    assert occurrences(one, at(5, 9) + 1, DEC[1]) == []
    assert one.to_ics_rrule() is None
    rec = parse_rrule(
        "rrule:freq=daily;byhour=6,17;byminute=0",
        datetime(2025, 12, 1),
        end_date=date(2025, 12, 31),
    )
    assert rec.to_ics_rrule() == "FREQ=DAILY;BYHOUR=6,17;BYMINUTE=0;UNTIL=20251231T165959Z"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "is empty"),
        ("BYHOUR=6", "has no FREQ"),
        ("FREQ=MINUTELY", "FREQ=MINUTELY is not supported"),
        ("FREQ=SECONDLY", "FREQ=SECONDLY is not supported"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1", "BYSETPOS is not supported"),
        ("FREQ=DAILY;COLOR=RED", "COLOR is not a repetition rule part"),
        ("FREQ=DAILY;BYHOUR", "'BYHOUR' in the repetition rule is not NAME=VALUE"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
        ("FREQ=DAILY;BYHOUR=25", "BYHOUR value '25' must be a whole number from 0 to 23"),
        ("FREQ=DAILY;BYMINUTE=6O", "BYMINUTE value '6O'"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL=0 must be a whole number from 1"),
        ("FREQ=DAILY;COUNT=0", "COUNT=0 must be a whole number from 1"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY value 'XX' is not a day"),
        ("FREQ=WEEKLY;BYDAY=1MO", "only FREQ=MONTHLY allows"),
        ("FREQ=MONTHLY;BYDAY=6MO", "at most five"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20260101", "both COUNT and UNTIL"),
        ("FREQ=DAILY;UNTIL=2025-12-31", "UNTIL=2025-12-31 is not a date"),
        ("FREQ=DAILY;UNTIL=20251130", "ends 23:59 30/11/2025, before it starts 06:00 01/12/2025"),
        ("FREQ=MONTHLY;BYMONTHDAY=31;UNTIL=20251230", "never gives a broadcast"),
        ("FREQ=DAILY;BYHOUR=6,7,8,9,10,11,12,13,14,15,16;BYMINUTE=0,15,30,45", "more than 5000"),
    ],
)
def test_invalid_rules_are_refused_with_what_to_fix(rule: str, message: str) -> None:
    with pytest.raises(InvalidRecurrence, match=message.replace("(", r"\(")):
        parse_rrule(rule, datetime(2025, 12, 1, 6, 0))


def test_end_date_before_start_and_count_with_end_date() -> None:
    with pytest.raises(InvalidRecurrence, match="ends 23:59 30/11/2025, before it starts"):
        parse_rrule("FREQ=DAILY", datetime(2025, 12, 1, 6, 0), end_date=date(2025, 11, 30))
    with pytest.raises(InvalidRecurrence, match="COUNT=3 and an end date 31/12/2025"):
        parse_rrule("FREQ=DAILY;COUNT=3", datetime(2025, 12, 1, 6, 0), end_date=date(2025, 12, 31))


def test_every_occurrence_excluded_is_refused() -> None:
    with pytest.raises(InvalidRecurrence, match=r"every broadcast .* is excluded"):
        parse_rrule(
            "FREQ=DAILY;COUNT=2",
            datetime(2025, 12, 1, 6, 0),
            exdates=[date(2025, 12, 1), date(2025, 12, 2)],
        )


def test_never_matching_endless_rule_is_refused_quickly() -> None:
    # Every 12 months from February never reaches a 30th: the search must stop by itself.
    with pytest.raises(InvalidRecurrence, match="never gives a broadcast"):
        parse_rrule("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30", datetime(2026, 2, 1, 6, 0))
