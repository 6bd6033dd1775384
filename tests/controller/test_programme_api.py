"""The calendar view, its iCalendar export and the playback log agree with the schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar
from sqlmodel import select

from controller.core.models import Delivery
from tests.conftest import running_controller
from tests.controller.test_broadcast_e2e import announce, make_commune

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def ics_count(text: str, lo: datetime, hi: datetime) -> int:
    """Broadcasts in [lo, hi) as a calendar client would expand the export."""
    total = 0
    for event in Calendar.from_ical(text).walk("VEVENT"):
        start = event.decoded("dtstart")
        if "rrule" not in event:
            total += lo <= start < hi
            continue
        rule = rrulestr(event["rrule"].to_ical().decode(), dtstart=start)
        excluded = set()
        for ex in (
            event.get("exdate", [])
            if isinstance(event.get("exdate"), list)
            else [event.get("exdate")]
        ):
            if ex is not None:
                excluded |= {d.dt for d in ex.dts}
        total += sum(1 for t in rule.between(lo, hi, inc=True) if t not in excluded and t < hi)
    return total


async def test_calendar_and_ics_agree_and_bad_ranges_are_refused(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 2)
        await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "Xã B", "kind": "commune"})
        ann = await announce(ctl)
        tomorrow = (datetime.now(LOCAL) + timedelta(days=1)).date()
        midnight = datetime.combine(tomorrow, datetime.min.time())
        r = await ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": ann["id"],
                "starts_at": midnight.isoformat(),
                "targets": {"areas": ["xa-a"]},
                "rrule": "FREQ=DAILY;BYHOUR=6,17;BYMINUTE=0",
                "exdates": [(tomorrow + timedelta(days=2)).isoformat()],
            },
        )
        assert r.status_code == 201, r.text
        at = (midnight + timedelta(hours=9)).isoformat()
        r = await ctl.api(
            "POST",
            "/schedules",
            json={"announcement_id": ann["id"], "starts_at": at, "targets": {"nodes": ["n0"]}},
        )
        assert r.status_code == 201, r.text
        last = tomorrow + timedelta(days=6)
        span = f"from={tomorrow}&to={last}"
        entries = (await ctl.api("GET", f"/calendar?area_id=thon-1&{span}")).json()
        assert len(entries) == 7 * 2 - 2 + 1
        assert (
            entries[0]["start"].endswith("06:00:00+07:00") and entries[0]["status"] == "scheduled"
        )
        assert len((await ctl.api("GET", f"/calendar?area_id=thon-2&{span}")).json()) == 12
        assert (await ctl.api("GET", f"/calendar?area_id=xa-b&{span}")).json() == []

        r = await ctl.api("GET", "/areas/thon-1/programme.ics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
        lo = datetime.combine(tomorrow, datetime.min.time(), LOCAL)
        assert ics_count(r.text, lo, lo + timedelta(days=7)) == len(entries)

        for query, status, words in (
            (f"area_id=xa-a&from={last}&to={tomorrow}", 422, "before"),
            (f"area_id=xa-a&from={tomorrow}&to={tomorrow + timedelta(days=62)}", 422, "62"),
            (f"area_id=nowhere&{span}", 404, "nowhere"),
            (f"area_id=xa-a&from=mai&to={last}", 422, "from"),
            ("area_id=xa-a&from=9999-12-30&to=9999-12-31", 422, "out of range"),
        ):
            r = await ctl.api("GET", f"/calendar?{query}")
            assert r.status_code == status and words in r.text, (query, r.text)


async def test_unreported_past_broadcasts_are_missed_in_the_playback_log(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 2)
        ann = await announce(ctl)
        at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = {"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["xa-a"]}}
        sid = (await ctl.api("POST", "/schedules", json=body)).json()["id"]
        with ctl.service.db.session() as s:
            # As if the broadcast had been due ten minutes ago and no node had said a word.
            d = s.exec(select(Delivery).where(Delivery.node_id == "n0")).one()
            d.planned_start = due = datetime.now(UTC) - timedelta(minutes=10)
            s.add(d)
            s.commit()
        day = due.astimezone(LOCAL).date().isoformat()
        rows = (await ctl.api("GET", f"/playback-log?area_id=xa-a&date={day}")).json()
        first = rows[0]
        assert (first["node_id"], first["state"], first["schedule_id"]) == ("n0", "missed", sid)
        text = (await ctl.api("GET", f"/playback-log.csv?area_id=xa-a&date={day}")).text
        lines = text.splitlines()
        assert lines[0].startswith("\ufeffGiờ dự kiến,Bản tin,Cụm loa,Địa bàn,Kết quả")
        assert ",n0," in lines[1] and ",Không phát," in lines[1]
        r = await ctl.api("GET", "/playback-log?area_id=xa-a&date=hôm-nay")
        assert r.status_code == 422
        r = await ctl.api("GET", "/playback-log.csv?area_id=xa-a&date=0001-01-01")
        assert r.status_code == 422 and "out of range" in r.text
