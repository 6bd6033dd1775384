"""Commune staff draft; an officer over every target area puts the draft on air or rejects it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from controller.core.models import AuditEntry
from tests.conftest import running_controller
from tests.controller.test_broadcast_e2e import announce, make_commune


async def test_staff_drafts_wait_for_an_officer_of_their_commune(make_settings, database_url):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        await make_commune(ctl, 2)
        r = await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "Xã B", "kind": "commune"})
        assert r.status_code == 201
        staff = await ctl.login_as_new("can-bo", "commune_staff", "xa-a")
        officer = await ctl.login_as_new("chu-tich", "officer", "xa-a")
        stranger = await ctl.login_as_new("xa-ben", "officer", "xa-b")
        ann = await announce(ctl)
        at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        draft = {"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["xa-a"]}}
        r = await ctl.api("POST", "/schedules", json=draft, token=staff)
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        sid = r.json()["id"]
        assert (await ctl.api("GET", "/nodes/n0/timeline")).json()["items"] == []

        pending = (await ctl.api("GET", "/schedules?status=pending", token=officer)).json()
        assert [s["id"] for s in pending] == [sid]
        assert (await ctl.api("GET", "/schedules?status=pending", token=stranger)).json() == []

        r = await ctl.api("POST", f"/schedules/{sid}/approve", token=stranger)
        assert r.status_code == 403 and "outside your area" in r.text
        r = await ctl.api("POST", f"/schedules/{sid}/approve", token=staff)
        assert r.status_code == 403 and "approve" in r.text
        r = await ctl.api("POST", f"/schedules/{sid}/approve", token=officer)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "scheduled" and r.json()["approved_by"] == "chu-tich"
        assert r.json()["approved_at"]
        items = (await ctl.api("GET", "/nodes/n0/timeline")).json()["items"]
        assert [i["schedule_id"] for i in items] == [sid]
        r = await ctl.api("POST", f"/schedules/{sid}/approve", token=officer)
        assert r.status_code == 409 and "not pending" in r.text

        later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        r = await ctl.api("POST", "/schedules", json=draft | {"starts_at": later}, token=staff)
        second = r.json()["id"]
        r = await ctl.api(
            "POST", f"/schedules/{second}/reject", json={"reason": "trùng giờ"}, token=officer
        )
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        items = (await ctl.api("GET", "/nodes/n1/timeline")).json()["items"]
        assert [i["schedule_id"] for i in items] == [sid]

        # An officer's own schedule is on air at once.
        r = await ctl.api("POST", "/schedules", json=draft | {"starts_at": later}, token=officer)
        assert r.json()["status"] == "scheduled"
        with ctl.service.db.session() as s:
            actions = {
                (e.actor, e.action, e.target)
                for e in s.exec(select(AuditEntry).where(AuditEntry.outcome == "ok")).all()
            }
            denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
        assert ("chu-tich", "schedule.approve", str(sid)) in actions
        assert ("chu-tich", "schedule.reject", str(second)) in actions
        assert {e.actor for e in denied} == {"xa-ben", "can-bo"}


async def test_approval_checks_the_draft_again(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        staff = await ctl.login_as_new("can-bo", "commune_staff", "xa-a")
        ann = await announce(ctl)
        at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        draft = {"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["xa-a"]}}
        sid = (await ctl.api("POST", "/schedules", json=draft, token=staff)).json()["id"]
        # Meanwhile an officer takes the slot: approving the draft would make a clash.
        assert (await ctl.api("POST", "/schedules", json=draft)).status_code == 201
        r = await ctl.api("POST", f"/schedules/{sid}/approve")
        assert r.status_code == 409 and "overlaps" in r.text
        status = (await ctl.api("GET", f"/schedules/{sid}")).json()["status"]
        assert status == "pending"
