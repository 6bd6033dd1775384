"""Calendar entries for local dates, and the iCalendar export parsed back."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar
from schedules_support import at

from protocol import Priority
from schedules import Broadcast, Recurrence, calendar_entries, parse_rrule, to_ics
from schedules.localtime import LOCAL_TZ

TWICE = parse_rrule(
    "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR,SA;BYHOUR=6,17;BYMINUTE=0",
    datetime(2025, 12, 1, 6, 0),
    end_date=date(2025, 12, 31),
    exdates=[date(2025, 12, 24)],
)
LONG_TITLE = "Thông báo lịch tiêm chủng mở rộng; trẻ dưới 5 tuổi, tại trạm y tế xã Tân Lập\nđợt 2"
BROADCASTS = [
    Broadcast("12", LONG_TITLE, TWICE, 10 * 60_000, targets=frozenset({"xa-tan-lap"})),
    Broadcast("13", "Cảnh báo bão", Recurrence.once(at(2, 6)), 5 * 60_000, Priority.emergency),
]


def test_entries_sorted_with_the_urgent_first_at_the_same_time() -> None:
    entries = calendar_entries(BROADCASTS, date(2025, 12, 1), date(2025, 12, 2))
    assert [(e.schedule_id, e.start_ms) for e in entries] == [
        ("12", at(1, 6)),
        ("12", at(1, 17)),
        ("13", at(2, 6)),
        ("12", at(2, 6)),
        ("12", at(2, 17)),
    ]
    assert entries[0].local_date == date(2025, 12, 1)
    assert len(calendar_entries(BROADCASTS, date(2025, 12, 1), date(2025, 12, 31))) == 52 + 1


def test_ics_of_schedules_parses_back() -> None:
    text = to_ics(BROADCASTS, "Xã Tân Lập", now_ms=at(1, 0))
    raw = text.encode()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    cal = icalendar.Calendar.from_ical(text)
    zone = cal.walk("VTIMEZONE")[0]
    assert str(zone["TZID"]) == "Asia/Ho_Chi_Minh"
    assert zone.walk("STANDARD")[0]["TZOFFSETTO"].td == timedelta(hours=7)
    events = cal.walk("VEVENT")
    assert len(events) == 2
    first = events[0]
    assert str(first["SUMMARY"]) == LONG_TITLE
    assert first["UID"] == "schedule-12@commune-radio"
    assert first.decoded("DTSTART") == datetime(2025, 12, 1, 6, 0, tzinfo=LOCAL_TZ)
    assert first.decoded("DURATION") == timedelta(minutes=10)
    assert (
        first["RRULE"].to_ical()
        == b"FREQ=DAILY;UNTIL=20251231T165959Z;BYMINUTE=0;BYHOUR=6,17;BYDAY=MO,TU,WE,TH,FR,SA"
    )
    assert [d.dt for d in first["EXDATE"].dts] == [
        datetime(2025, 12, 24, 6, tzinfo=LOCAL_TZ),
        datetime(2025, 12, 24, 17, tzinfo=LOCAL_TZ),
    ]
    assert "RRULE" not in events[1] and int(events[1]["PRIORITY"]) == 1
    assert "DTSTART;TZID=Asia/Ho_Chi_Minh:20251201T060000" in text


def test_ics_of_entries_has_one_event_each() -> None:
    entries = calendar_entries(BROADCASTS, date(2025, 12, 1), date(2025, 12, 7))
    cal = icalendar.Calendar.from_ical(to_ics(entries, "Tuần 1", now_ms=at(1, 0)))
    events = cal.walk("VEVENT")
    assert len(events) == len(entries) == 13
    assert len({str(e["UID"]) for e in events}) == 13
    assert all("RRULE" not in e for e in events)
