"""Bulletins pushed by an upper level's system with a service account: the key's rights, the
approval queue of the right communes, officers' relay rules, and play on the nodes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from controller.core.models import AuditEntry, Schedule, ServiceAccount
from firmware_sim.config import NodeConfig
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import all_finished, fleet_of, hold_media

TEXT = "Sở Nông nghiệp thông báo: lịch thời vụ gieo cấy lúa vụ đông xuân bắt đầu từ ngày 10/12."


async def province(ctl: RunningController, nodes: int = 1) -> list[NodeConfig]:
    """Tỉnh T over Xã A (Thôn 1, Thôn 2, with the nodes) and Xã B."""
    for body in (
        {"id": "tinh-t", "name": "Tỉnh T", "kind": "province"},
        {"id": "xa-a", "name": "Xã A", "kind": "commune", "parent_id": "tinh-t"},
        {"id": "xa-b", "name": "Xã B", "kind": "commune", "parent_id": "tinh-t"},
        {"id": "thon-1", "name": "Thôn 1", "kind": "village", "parent_id": "xa-a"},
        {"id": "thon-2", "name": "Thôn 2", "kind": "village", "parent_id": "xa-a"},
    ):
        r = await ctl.api("POST", "/areas", json=body)
        assert r.status_code == 201, r.text
    configs = []
    for i in range(nodes):
        village = "thon-1" if i % 2 == 0 else "thon-2"
        body = {"id": f"n{i}", "name": f"Loa {i}", "area_id": village}
        r = await ctl.api("POST", "/nodes", json=body)
        assert r.status_code == 201, r.text
        configs.append(NodeConfig.model_validate(r.json()["provisioning"]))
    return configs


async def new_key(
    ctl: RunningController, name: str, areas: list[str], scopes: list[str], **kw: Any
) -> str:
    body = {"name": name, "areas": areas, "scopes": scopes, **kw}
    r = await ctl.api("POST", "/service-accounts", json=body)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("rsk_")
    return str(key)


async def push(ctl: RunningController, key: str, token: str = "", **body: Any) -> Any:
    data = {"id": "b-1", "title": "Lịch thời vụ", "text": TEXT, "areas": ["xa-a"]} | body
    return await ctl.api("POST", "/bulletins", json=data, headers={"X-Api-Key": key}, token=token)


async def test_keys_are_shown_once_stored_hashed_scoped_expiring_and_revocable(make_settings):
    async with running_controller(make_settings()) as ctl:
        await province(ctl)
        key = await new_key(ctl, "so-nn", ["xa-a"], ["bulletins:push"])
        with ctl.service.db.session() as s:
            row = s.exec(select(ServiceAccount)).one()
        assert key.split("_", 2)[2] not in json.dumps(row.model_dump(mode="json"))
        listed = (await ctl.api("GET", "/service-accounts")).json()
        assert "key" not in listed[0] and listed[0]["last_used_at"] is None

        # No key, a wrong key, a person's token: refused before anything is made.
        r = await ctl.api("POST", "/bulletins", json={}, token="")
        assert r.status_code == 401 and r.json()["code"] == "api_key_needed"
        r = await push(ctl, key[:-3] + "xyz")
        assert r.status_code == 401 and r.json()["code"] == "api_key_bad"
        # Outside the key's areas, and a key without the scope.
        r = await push(ctl, key, areas=["xa-b"])
        assert r.status_code == 403 and r.json()["code"] == "api_key_area", r.text
        r = await push(ctl, key, areas=["tinh-t"])
        assert r.status_code == 403 and r.json()["code"] == "api_key_area"
        # An officer's token does not open the bulletin door, nor the key a person's route.
        r = await ctl.api("GET", "/schedules", headers={"X-Api-Key": key}, token="")
        assert r.status_code == 401

        r = await push(ctl, key, token="")
        assert r.status_code == 201, r.text
        listed = (await ctl.api("GET", "/service-accounts")).json()
        assert listed[0]["last_used_at"] and listed[0]["uses"] >= 1
        assert listed[0]["last_used_ip"] == "127.0.0.1"

        r = await ctl.api("POST", "/service-accounts/so-nn/revoke")
        assert r.status_code == 200 and r.json()["revoked_at"]
        r = await push(ctl, key, id="b-2")
        assert r.status_code == 401 and r.json()["code"] == "api_key_revoked"

        past = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        short = await new_key(ctl, "het-han", ["xa-a"], ["bulletins:push"], expires_at=past)
        with ctl.service.db.session() as s:
            acct = s.exec(select(ServiceAccount).where(ServiceAccount.name == "het-han")).one()
            acct.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            s.add(acct)
            s.commit()
        r = await push(ctl, short, id="b-3")
        assert r.status_code == 401 and r.json()["code"] == "api_key_expired"

        r = await ctl.api(
            "POST", "/service-accounts", json={"name": "x", "areas": ["xa-a"], "scopes": ["all"]}
        )
        assert r.status_code == 422 and "bulletins:push" in r.text
        staff = await ctl.login_as_new("can-bo", "officer", "xa-a")
        r = await ctl.api("GET", "/service-accounts", token=staff)
        assert r.status_code == 403

        with ctl.service.db.session() as s:
            entries = s.exec(select(AuditEntry)).all()
        actions = {(e.actor, e.action, e.outcome) for e in entries}
        assert ("svc:so-nn", "bulletin.push", "ok") in actions
        assert ("svc:so-nn", "denied:bulletins:push", "denied") in actions
        assert ("svc:?", "denied:api_key", "denied") in actions
        assert ("root", "service_account.revoke", "ok") in actions


async def test_a_pushed_bulletin_waits_in_each_communes_queue(make_settings, database_url):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        await province(ctl)
        key = await new_key(ctl, "tinh", ["tinh-t"], ["bulletins:push"])
        officer_a = await ctl.login_as_new("chu-tich-a", "officer", "xa-a")
        officer_b = await ctl.login_as_new("chu-tich-b", "officer", "xa-b")
        until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        r = await push(ctl, key, areas=["xa-a", "xa-b"], category="policy", valid_until=until)
        assert r.status_code == 201, r.text
        bulletin = r.json()
        assert [p["areas"] for p in bulletin["schedules"]] == [["xa-a"], ["xa-b"]]
        assert all(p["rule_id"] is None for p in bulletin["schedules"])
        # The same id again: the stored bulletin, nothing made twice.
        again = await push(ctl, key, areas=["xa-a", "xa-b"], category="policy")
        assert again.status_code == 200 and again.json()["id"] == bulletin["id"]

        pending_a = (await ctl.api("GET", "/schedules?status=pending", token=officer_a)).json()
        pending_b = (await ctl.api("GET", "/schedules?status=pending", token=officer_b)).json()
        sid_a, sid_b = (p["schedule_id"] for p in bulletin["schedules"])
        assert [s["id"] for s in pending_a] == [sid_a]
        assert [s["id"] for s in pending_b] == [sid_b]
        assert pending_a[0]["created_by"] == "svc:tinh"
        assert pending_a[0]["priority"] == "priority"
        seen = (await ctl.api("GET", "/bulletins", token=officer_a)).json()
        assert [b["id"] for b in seen] == [bulletin["id"]]
        r = await ctl.api("POST", f"/schedules/{sid_b}/approve", token=officer_a)
        assert r.status_code == 403

        # Bad input: a clear error, nothing stored.
        r = await push(ctl, key, id="b-9", areas=["khong-co"])
        assert r.status_code == 403 and "khong-co" in r.text  # not within the key's areas
        r = await push(ctl, key, id="b-9", priority="emergency")
        assert r.status_code == 422 and "alerts" in r.text
        r = await push(ctl, key, id="b-9", valid_until="2020-01-01T00:00:00+07:00")
        assert r.status_code == 422
        assert len((await ctl.api("GET", "/bulletins")).json()) == 1

        # Sent twice at once: one is received, the other answered with it; one set of drafts.
        both = await asyncio.gather(push(ctl, key, id="b-twice"), push(ctl, key, id="b-twice"))
        assert sorted(r.status_code for r in both) == [200, 201], [r.text for r in both]
        assert both[0].json()["id"] == both[1].json()["id"]
        # Refused while being made (a text over the limit): no row left, the same id may come
        # again once corrected.
        r = await push(ctl, key, id="b-long", text="x " * 6000)
        assert r.status_code == 422, r.text
        r = await push(ctl, key, id="b-long")
        assert r.status_code == 201, r.text
        with ctl.service.db.session() as s:
            drafts = s.exec(select(Schedule).where(Schedule.created_by == "svc:tinh")).all()
        assert len(drafts) == 2 + 1 + 1


async def test_an_officers_rule_schedules_the_bulletin_at_its_time(make_settings):
    async with running_controller(make_settings()) as ctl:
        await province(ctl)
        key = await new_key(ctl, "tinh", ["tinh-t"], ["bulletins:push"])
        officer = await ctl.login_as_new("chu-tich-a", "officer", "xa-a")
        rule = {
            "area_id": "xa-a",
            "source": "svc:tinh",
            "category": "policy",
            "at_time": "06:00",
            "weekdays": "MO,TU,WE,TH,FR",
            "targets": ["thon-1", "thon-2"],
        }
        r = await ctl.api(
            "POST", "/bulletin-rules", json=rule | {"targets": ["xa-b"]}, token=officer
        )
        assert r.status_code == 403
        r = await ctl.api("POST", "/bulletin-rules", json=rule | {"at_time": "6h"}, token=officer)
        assert r.status_code == 422 and "HH:MM" in r.text
        r = await ctl.api("POST", "/bulletin-rules", json=rule, token=officer)
        assert r.status_code == 201, r.text
        rule_id = r.json()["id"]

        r = await push(ctl, key, areas=["xa-a", "xa-b"], category="policy")
        placed = r.json()["schedules"]
        by_rule = [p for p in placed if p["rule_id"] == rule_id]
        waiting = [p for p in placed if p["rule_id"] is None]
        assert [p["areas"] for p in waiting] == [["xa-b"]]  # xa-a's officer decided already
        assert len(by_rule) == 1
        sched = (await ctl.api("GET", f"/schedules/{by_rule[0]['schedule_id']}")).json()
        assert sched["status"] == "scheduled"
        local = datetime.fromisoformat(sched["starts_at"]).astimezone(
            __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")
        )
        assert (local.hour, local.minute) == (6, 0) and local.weekday() < 5
        assert local > datetime.now(UTC)
        # Another category is not the rule's: it waits for approval everywhere.
        r = await push(ctl, key, id="b-2", areas=["xa-a"], category="news")
        assert [p["rule_id"] for p in r.json()["schedules"]] == [None]


@pytest.mark.slow
async def test_approved_bulletin_plays_on_the_communes_nodes(make_settings, database_url):
    clock = SteppedClock()
    async with running_controller(make_settings(database_url=database_url), clock) as ctl:
        configs = await province(ctl, 2)
        key = await new_key(ctl, "tinh", ["tinh-t"], ["bulletins:push"])
        officer = await ctl.login_as_new("chu-tich-a", "officer", "xa-a")
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            clock.pause()
            starts = datetime.fromtimestamp(clock.now_ms() / 1000 + 30, UTC).isoformat()
            r = await push(ctl, key, areas=["xa-a"], starts_at=starts)
            assert r.status_code == 201, r.text
            sid = r.json()["schedules"][0]["schedule_id"]
            assert (await ctl.api("GET", "/nodes/n0/timeline")).json()["items"] == []
            r = await ctl.api("POST", f"/schedules/{sid}/approve", token=officer)
            assert r.status_code == 200, r.text
            ann = (await ctl.api("GET", f"/announcements/{r.json()['announcement_id']}")).json()
            await hold_media(fleet.nodes, ann["media_sha256"])
            clock.advance(29_000)
            clock.resume()
            await wait_for(lambda: all_finished(ctl, sid, 2), 60, "both nodes to play")
            assert all(len(n.played) == 1 for n in fleet.nodes)

            # The sender asks what became of it, by its own id; no other account sees it.
            r = await ctl.api("GET", "/bulletins/sent/b-1", headers={"X-Api-Key": key}, token="")
            assert r.status_code == 200, r.text
            (state,) = r.json()["states"]
            assert state["status"] == "scheduled" and state["approved_by"] == "chu-tich-a"
            assert state["deliveries"] == {"finished": 2} and state["areas"] == ["xa-a"]
            other = await new_key(ctl, "khac", ["tinh-t"], ["bulletins:push"])
            r = await ctl.api("GET", "/bulletins/sent/b-1", headers={"X-Api-Key": other}, token="")
            assert r.status_code == 404


async def test_a_recorded_bulletin_is_checked_by_key_before_its_body(make_settings, tmp_path):
    from audio.ffmpeg import run_ffmpeg
    from tests.controller.test_http_hardening import Feed, spooled_files

    async with running_controller(make_settings(upload_max_mb=1)) as ctl:
        await province(ctl)
        key = await new_key(ctl, "tinh", ["tinh-t"], ["bulletins:push"])
        path = "/api/v1/bulletins/audio"
        boundary = "b0undary"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        # No key, a wrong key, a person's token: refused before the body is read.
        for who in ({}, {"x-api-key": "rsk_0_bad"}, {"authorization": f"Bearer {ctl.token}"}):
            feed = Feed(head=head)
            r = await feed.post(ctl, path, headers | who)
            assert r.status == 401, r
            assert r.json()["code"] in ("api_key_needed", "api_key_bad")
            assert feed.sent < 24 * 1024 * 1024, feed.sent
        assert spooled_files(ctl) == []
        # With the key, the upload's limit counts the bytes as they arrive.
        feed = Feed(head=head)
        r = await feed.post(ctl, path, headers | {"x-api-key": key})
        assert r.status == 413
        assert feed.sent < 24 * 1024 * 1024, feed.sent

        recording = tmp_path / "b.mp3"
        run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=f=440:d=2", "-ac", "1", str(recording)])
        form = {"id": "ghi-am-1", "title": "Bản tin ghi âm", "areas": "xa-a, xa-b"}
        files = {"file": ("b.mp3", recording.read_bytes(), "audio/mpeg")}
        r = await ctl.api(
            "POST", "/bulletins/audio", data=form, files=files, headers={"X-Api-Key": key}, token=""
        )
        assert r.status_code == 201, r.text
        assert [p["areas"] for p in r.json()["schedules"]] == [["xa-a"], ["xa-b"]]
        # Not a recording: refused with the reason, nothing kept.
        files = {"file": ("c.mp3", b"not audio at all" * 100, "audio/mpeg")}
        r = await ctl.api(
            "POST",
            "/bulletins/audio",
            data=form | {"id": "ghi-am-2"},
            files=files,
            headers={"X-Api-Key": key},
            token="",
        )
        assert r.status_code == 422, r.text
        assert len((await ctl.api("GET", "/bulletins")).json()) == 1


def test_service_accounts_from_the_command_line(tmp_path):
    from tests.controller.test_node_cli import Radio

    radio = Radio(tmp_path)
    radio.commune()
    out = radio(
        "service-accounts", "create", "so-nn", "--area", "xa-a", "--scope", "bulletins:push",
        "--expires", "2099-01-01",
    )  # fmt: skip
    key = out.strip().splitlines()[-1]
    assert key.startswith("rsk_")
    radio("service-accounts", "create", "so-nn", "--area", "xa-a", "--scope", "x", code=2)
    radio(
        "service-accounts",
        "create",
        "khac",
        "--area",
        "khong-co",
        "--scope",
        "bulletins:push",
        code=2,
    )
    listed = radio("service-accounts", "list")
    assert "so-nn\tactive\tareas=xa-a\tscopes=bulletins:push" in listed
    assert "last_used=never" in listed and key not in listed
    radio("service-accounts", "revoke", "so-nn")
    assert "so-nn\trevoked" in radio("service-accounts", "list")
    radio("service-accounts", "revoke", "khong-co", code=2)


@pytest.mark.slow
async def test_a_rule_relays_the_bulletin_to_the_nodes_without_a_person(make_settings):
    from zoneinfo import ZoneInfo

    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        configs = await province(ctl, 2)
        key = await new_key(ctl, "tinh", ["tinh-t"], ["bulletins:push"])
        officer = await ctl.login_as_new("chu-tich-a", "officer", "xa-a")
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            clock.pause()
            # The rule's time: a whole minute two to three minutes from the held now.
            at = datetime.fromtimestamp(clock.now_ms() / 1000 + 180, ZoneInfo("Asia/Ho_Chi_Minh"))
            rule = {"area_id": "xa-a", "at_time": f"{at:%H:%M}", "targets": ["xa-a"]}
            r = await ctl.api("POST", "/bulletin-rules", json=rule, token=officer)
            assert r.status_code == 201, r.text
            r = await push(ctl, key, areas=["xa-a"])
            assert r.status_code == 201, r.text
            (placed,) = r.json()["schedules"]
            assert placed["rule_id"] == r.json()["schedules"][0]["rule_id"] is not None
            sched = (await ctl.api("GET", f"/schedules/{placed['schedule_id']}")).json()
            assert sched["status"] == "scheduled" and sched["created_by"].startswith("rule:")
            ann = (await ctl.api("GET", f"/announcements/{sched['announcement_id']}")).json()
            await hold_media(fleet.nodes, ann["media_sha256"])
            clock.skip_to(datetime.fromisoformat(sched["starts_at"]).timestamp() * 1000 - 2000)
            clock.resume()
            await wait_for(
                lambda: all_finished(ctl, placed["schedule_id"], 2), 60, "both nodes to play"
            )
            assert all(len(n.played) == 1 for n in fleet.nodes)
