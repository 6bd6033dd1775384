"""Times that clients give without an offset, or that UTC cannot hold once converted, and
errors of ours: each a clear answer with a code, never a 500 of plain text that also costs the
client its connection. Against a real controller over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import RunningController, running_controller

EXTREMES = ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00"]


async def commune(ctl: RunningController) -> int:
    for body in (
        {"id": "xa-a", "name": "Xã A", "kind": "commune"},
        {"id": "thon-a", "name": "Thôn A", "kind": "village", "parent_id": "xa-a"},
    ):
        assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
    r = await ctl.api("POST", "/announcements", json={"title": "t", "text": "Xin chào."})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_the_audit_reads_a_time_without_an_offset_as_viet_nam_time(make_settings):
    async with running_controller(make_settings()) as ctl:
        await commune(ctl)  # audited
        newest = (await ctl.api("GET", "/audit", params={"limit": 1})).json()[0]
        ts = datetime.fromisoformat(newest["ts"])
        ts = ts.replace(tzinfo=ts.tzinfo or UTC)  # stored times are UTC
        # Its time in Viet Nam, written without an offset, and the same with one.
        naive = (ts.astimezone(UTC) + timedelta(hours=7)).replace(tzinfo=None).isoformat()
        for since in (naive, f"{naive}+07:00"):
            r = await ctl.api("GET", "/audit", params={"since": since})
            assert r.status_code == 200, r.text
            ids = [e["id"] for e in r.json()]
            assert newest["id"] in ids and min(ids) == newest["id"], (since, ids)
        r = await ctl.api("GET", "/audit", params={"until": naive})
        assert r.status_code == 200 and r.json()
        assert newest["id"] not in [e["id"] for e in r.json()]
        for path in ("/audit/export.csv", "/audit/export.xlsx"):
            r = await ctl.api("GET", path, params={"since": naive})
            assert r.status_code == 200, (path, r.text[:200])
        r = await ctl.api("GET", "/audit", params={"since": EXTREMES[0]})
        assert r.status_code == 422 and r.json()["code"] == "time_out_of_range"


@pytest.mark.parametrize("when", EXTREMES)
async def test_a_schedule_at_a_time_utc_cannot_hold_is_a_422_with_a_code(make_settings, when):
    async with running_controller(make_settings()) as ctl:
        ann = await commune(ctl)
        body = {"announcement_id": ann, "starts_at": when, "targets": {"areas": ["xa-a"]}}
        r = await ctl.api("POST", "/schedules", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "time_out_of_range", r.text
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        r = await ctl.api("POST", "/schedules", json=body | {"starts_at": later})
        assert r.status_code == 201, r.text
        r = await ctl.api("PATCH", f"/schedules/{r.json()['id']}", json={"starts_at": when})
        assert r.status_code == 422 and r.json()["code"] == "time_out_of_range", r.text


async def test_a_schedule_in_the_past_is_refused_with_a_code_of_its_own(make_settings):
    async with running_controller(make_settings()) as ctl:
        ann = await commune(ctl)
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        body = {"announcement_id": ann, "starts_at": past, "targets": {"areas": ["xa-a"]}}
        r = await ctl.api("POST", "/schedules", json=body)
        assert r.status_code == 422 and r.json()["code"] == "time_in_past", r.text


async def test_a_service_account_expiry_without_an_offset_is_viet_nam_time(make_settings):
    async with running_controller(make_settings()) as ctl:
        await commune(ctl)
        expiry = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
        local = (expiry + timedelta(hours=7)).replace(tzinfo=None).isoformat()
        body = {"name": "so-nn", "areas": ["xa-a"], "scopes": ["bulletins:push"]}
        r = await ctl.api("POST", "/service-accounts", json=body | {"expires_at": local})
        assert r.status_code == 201, r.text
        stored = datetime.fromisoformat(r.json()["expires_at"])
        assert stored.replace(tzinfo=stored.tzinfo or UTC) == expiry
        past = (datetime.now(UTC) - timedelta(hours=8)).replace(tzinfo=None).isoformat()
        r = await ctl.api(
            "POST", "/service-accounts", json=body | {"name": "b", "expires_at": past}
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text
        for i, when in enumerate(EXTREMES):
            r = await ctl.api(
                "POST", "/service-accounts", json=body | {"name": f"c{i}", "expires_at": when}
            )
            assert r.status_code == 422 and r.json()["code"] == "time_out_of_range", r.text


async def test_a_bulletin_valid_until_a_time_utc_cannot_hold_is_a_422(make_settings):
    async with running_controller(make_settings()) as ctl:
        await commune(ctl)
        body = {"name": "so-nn", "areas": ["xa-a"], "scopes": ["bulletins:push"]}
        key = (await ctl.api("POST", "/service-accounts", json=body)).json()["key"]
        for when in EXTREMES:
            data = {"id": "b-1", "title": "t", "text": "Xin chào.", "areas": ["xa-a"]}
            r = await ctl.api(
                "POST",
                "/bulletins",
                json=data | {"valid_until": when},
                headers={"X-Api-Key": key},
                token="",
            )
            assert r.status_code == 422 and r.json()["code"] == "time_out_of_range", r.text


async def test_every_refusal_of_the_domain_carries_a_code(make_settings):
    async with running_controller(make_settings()) as ctl:
        r = await ctl.api("GET", "/announcements/999999")
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
        # And the framework's own refusals.
        for method, path, token, status, code in (
            ("GET", "/nodes", "", 401, "login_needed"),
            ("GET", "/no-such-thing", None, 404, "not_found"),
            ("DELETE", "/health", None, 405, "method_not_allowed"),
        ):
            r = await ctl.api(method, path, token=token)
            assert r.status_code == status and r.json()["code"] == code, (path, r.text)
        assert (await ctl.api("GET", "/nodes", token="")).headers["www-authenticate"] == "Bearer"


async def test_an_error_of_ours_is_json_with_a_code_and_the_connection_is_closed(
    make_settings, monkeypatch: pytest.MonkeyPatch
):
    async with running_controller(make_settings()) as ctl:
        await commune(ctl)

        def broken(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("a defect")

        # A defect in the route's own code (as a wrong comparison of times was).
        monkeypatch.setattr(ctl.service.broadcasts, "create_schedule", broken)
        async with httpx.AsyncClient(base_url=ctl.base_url) as client:
            headers = {"authorization": f"Bearer {ctl.token}"}
            body = {"announcement_id": 1, "starts_at": "2030-01-01T08:00:00"}
            body["targets"] = {"areas": ["xa-a"]}  # type: ignore[assignment]
            r = await client.post("/api/v1/schedules", json=body, headers=headers)
            assert r.status_code == 500
            assert r.json()["code"] == "internal_error" and "defect" not in r.text
            assert r.headers["connection"] == "close"
            # The client's next request goes on a new connection and is answered.
            r = await client.get("/api/v1/health")
            assert r.status_code == 200
