"""A schedule changed after it was written (edit), and one day of a weekly schedule left out
(skip): checked as new schedules are, each right checked, timelines following the change."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from controller.core.models import AuditEntry
from tests.conftest import running_controller
from tests.controller.test_api_input import counts
from tests.controller.test_broadcast_e2e import announce, make_commune

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def next_monday() -> date:
    today = datetime.now(LOCAL).date()
    return today + timedelta(days=7 - today.weekday())


async def calendar_days(ctl, sid: int, first: date, days: int = 14) -> list[str]:
    r = await ctl.api(
        "GET",
        "/calendar",
        params={"area_id": "xa-a", "from": first.isoformat(), "to": str(first + timedelta(days))},
    )
    assert r.status_code == 200, r.text
    return [i["start"][:16] for i in r.json() if i["schedule_id"] == sid]


async def test_monday_and_thursday_in_one_schedule_skip_one_day(make_settings, database_url):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        await make_commune(ctl, 2)
        officer = await ctl.login_as_new("chu-tich", "officer", "xa-a")
        auditor = await ctl.login_as_new("kiem-tra", "auditor", None)
        ann = await announce(ctl)
        monday = next_monday()
        body = {
            "announcement_id": ann["id"],
            "starts_at": f"{monday.isoformat()}T07:30",
            "targets": {"areas": ["thon-1"]},
            "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
            "title": "Tin nông vụ",
        }
        r = await ctl.api("POST", "/schedules", json=body, token=officer)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        thursday = monday + timedelta(days=3)
        week_after = monday + timedelta(days=7)
        assert await calendar_days(ctl, sid, monday, 8) == [
            f"{monday.isoformat()}T07:30",
            f"{thursday.isoformat()}T07:30",
            f"{week_after.isoformat()}T07:30",
        ]

        # Skip the Thursday: that day only.
        r = await ctl.api(
            "POST", f"/schedules/{sid}/skip", json={"day": thursday.isoformat()}, token=officer
        )
        assert r.status_code == 200, r.text
        assert r.json()["exdates"] == [thursday.isoformat()]
        assert await calendar_days(ctl, sid, monday, 8) == [
            f"{monday.isoformat()}T07:30",
            f"{week_after.isoformat()}T07:30",
        ]
        # A day it does not play (or already skipped), a day long past: refused with a code.
        before = counts(ctl.service)
        for day, status, code in (
            (monday + timedelta(days=1), 422, "schedule_no_broadcast_that_day"),
            (thursday, 422, "schedule_no_broadcast_that_day"),
            (date(2001, 1, 4), 422, "schedule_no_broadcast_that_day"),
            (date(9999, 12, 31), 422, "time_out_of_range"),
        ):
            r = await ctl.api(
                "POST", f"/schedules/{sid}/skip", json={"day": day.isoformat()}, token=officer
            )
            assert r.status_code == status and r.json().get("code") == code, (day, r.text)
        r = await ctl.api("POST", f"/schedules/{sid}/skip", json={"day": "thursday"})
        assert r.status_code == 422
        # An auditor reads; skipping is a change, refused.
        r = await ctl.api(
            "POST", f"/schedules/{sid}/skip", json={"day": str(week_after)}, token=auditor
        )
        assert r.status_code == 403
        assert counts(ctl.service) == before
        got = (await ctl.api("GET", f"/schedules/{sid}")).json()
        assert got["exdates"] == [thursday.isoformat()]

        # A one-off has no day to skip.
        once = body | {"rrule": None, "starts_at": f"{monday.isoformat()}T10:00"}
        r = await ctl.api("POST", "/schedules", json=once, token=officer)
        one_off = r.json()["id"]
        r = await ctl.api("POST", f"/schedules/{one_off}/skip", json={"day": str(monday)})
        assert r.status_code == 422 and r.json()["code"] == "schedule_once"

        # Yesterday's broadcast of a daily schedule has played: nothing to skip.
        daily = body | {
            "starts_at": (datetime.now(LOCAL) - timedelta(days=3)).strftime("%Y-%m-%dT06:00"),
            "rrule": "FREQ=DAILY",
            "targets": {"areas": ["thon-2"]},
        }
        r = await ctl.api("POST", "/schedules", json=daily, token=officer)
        assert r.status_code == 201, r.text
        yesterday = datetime.now(LOCAL).date() - timedelta(days=1)
        r = await ctl.api("POST", f"/schedules/{r.json()['id']}/skip", json={"day": str(yesterday)})
        assert r.status_code == 409 and r.json()["code"] == "schedule_day_played", r.text

        with ctl.service.db.session() as s:
            skipped = s.exec(select(AuditEntry).where(AuditEntry.action == "schedule.skip")).all()
            denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
        assert [(e.actor, e.outcome) for e in skipped].count(("chu-tich", "ok")) == 1
        assert ("kiem-tra", "denied:schedule") in [(e.actor, e.action) for e in denied]


async def test_edit_checks_rights_and_clashes_and_moves_timelines(make_settings, database_url):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        await make_commune(ctl, 2)  # n0 in thon-1, n1 in thon-2
        r = await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "Xã B", "kind": "commune"})
        assert r.status_code == 201
        officer = await ctl.login_as_new("chu-tich", "officer", "xa-a")
        staff = await ctl.login_as_new("can-bo", "commune_staff", "xa-a")
        stranger = await ctl.login_as_new("xa-ben", "officer", "xa-b")
        ann = await announce(ctl)
        soon = (datetime.now(LOCAL) + timedelta(hours=2)).replace(second=0, microsecond=0)
        at = soon.replace(tzinfo=None).isoformat()
        r = await ctl.api(
            "POST",
            "/schedules",
            json={"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["thon-1"]}},
            token=officer,
        )
        sid = r.json()["id"]

        async def items(node: str) -> list[int]:
            timeline = (await ctl.api("GET", f"/nodes/{node}/timeline")).json()
            return [i["schedule_id"] for i in timeline["items"]]

        assert await items("n0") == [sid] and await items("n1") == []

        # Moved to the other village, an hour later: the timelines follow.
        later = (soon + timedelta(hours=1)).replace(tzinfo=None).isoformat()
        r = await ctl.api(
            "PATCH",
            f"/schedules/{sid}",
            json={"targets": {"areas": ["thon-2"]}, "starts_at": later, "title": "Họp dân (dời)"},
            token=officer,
        )
        assert r.status_code == 200, r.text
        assert r.json()["targets"]["areas"] == ["thon-2"] and r.json()["title"] == "Họp dân (dời)"
        assert r.json()["status"] == "scheduled"
        assert await items("n0") == [] and await items("n1") == [sid]
        timeline = (await ctl.api("GET", "/nodes/n1/timeline")).json()
        assert datetime.fromisoformat(timeline["items"][0]["start"]) == soon + timedelta(hours=1)

        # A clash with another broadcast of the same priority is refused; nothing changes.
        other = await ctl.api(
            "POST",
            "/schedules",
            json={"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["xa-a"]}},
            token=officer,
        )
        assert other.status_code == 201, other.text
        r = await ctl.api("PATCH", f"/schedules/{sid}", json={"starts_at": at}, token=officer)
        assert r.status_code == 409, r.text
        got = (await ctl.api("GET", f"/schedules/{sid}")).json()
        assert datetime.fromisoformat(got["starts_at"]) == soon + timedelta(hours=1)
        assert got["targets"]["areas"] == ["thon-2"]

        # Repeating from now on, on Mondays and Thursdays; then once again.
        r = await ctl.api(
            "PATCH", f"/schedules/{sid}", json={"rrule": "FREQ=WEEKLY;BYDAY=MO,TH"}, token=officer
        )
        assert r.status_code == 200 and r.json()["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TH", r.text
        assert datetime.fromisoformat(r.json()["starts_at"]).astimezone(LOCAL).weekday() in (0, 3)
        r = await ctl.api(
            "PATCH", f"/schedules/{sid}", json={"rrule": None, "starts_at": later}, token=officer
        )
        assert r.status_code == 200 and r.json()["rrule"] is None, r.text

        # Outside one's area, or to a place outside it: refused, and recorded.
        for token, change in (
            (stranger, {"title": "x"}),
            (officer, {"targets": {"areas": ["xa-b"]}}),
        ):
            r = await ctl.api("PATCH", f"/schedules/{sid}", json=change, token=token)
            assert r.status_code == 403, r.text
        r = await ctl.api("PATCH", "/schedules/99999", json={"title": "x"}, token=officer)
        assert r.status_code == 404
        r = await ctl.api("PATCH", f"/schedules/{sid}", json={"colour": "red"}, token=officer)
        assert r.status_code == 422

        # Commune staff's change goes back to an officer: off the air until approved.
        r = await ctl.api("PATCH", f"/schedules/{sid}", json={"title": "Sửa"}, token=staff)
        assert r.status_code == 200 and r.json()["status"] == "pending", r.text
        assert sid not in await items("n1")
        r = await ctl.api("POST", f"/schedules/{sid}/approve", token=officer)
        assert r.status_code == 200 and sid in await items("n1")

        # A cancelled schedule stays cancelled.
        r = await ctl.api("DELETE", f"/schedules/{sid}", token=officer)
        assert r.status_code == 200
        r = await ctl.api("PATCH", f"/schedules/{sid}", json={"title": "lại"}, token=officer)
        assert r.status_code == 409 and r.json()["code"] == "schedule_closed"
        assert sid not in await items("n1")

        with ctl.service.db.session() as s:
            edits = s.exec(select(AuditEntry).where(AuditEntry.action == "schedule.edit")).all()
            denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
        assert {e.actor for e in edits} == {"chu-tich", "can-bo"}
        assert {(e.actor, e.action) for e in denied} == {
            ("xa-ben", "denied:schedule"),
            ("chu-tich", "denied:schedule"),
        }
