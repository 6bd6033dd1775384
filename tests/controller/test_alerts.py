"""Emergency alerts end to end: one publish per area, pre-emption on the nodes of that area only,
per-node confirmation (JSON and server-sent events), offline nodes catching up, cancel, update,
all-clear, and forged or replayed alerts never played."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controller.core.events import AlertReceiptHeard
from protocol import Signer, new_private_key
from tests.clocks import SteppedClock
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune

LONG_TEXT = " ".join(["Thông báo lịch tiêm chủng cho trẻ em dưới năm tuổi tại trạm y tế xã."] * 4)


def sounding(node) -> str | None:
    """What the node's loudspeaker plays now: `alert:<id>`, a timeline item id, or None."""
    playing = node.playback.now_playing
    return node.playback.held_by or (playing.item_id if playing else None)


async def node_state(ctl, alert_id: str, node_id: str, state: str) -> bool:
    nodes = (await view(ctl, alert_id))["nodes"]
    return any(n["node_id"] == node_id and n["state"] == state for n in nodes)


async def view(ctl, alert_id: str) -> dict:
    r = await ctl.api("GET", f"/alerts/{alert_id}", params={"silent_after_s": 20})
    assert r.status_code == 200, r.text
    return r.json()


async def test_issuing_and_refusing_alerts(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 0)
        staff = await ctl.login_as_new("staff-b", "commune_staff", "thon-2")
        r = await ctl.api(
            "POST", "/alerts", json={"areas": ["thon-1"], "template": "flood"}, token=staff
        )
        assert r.status_code == 403
        r = await ctl.api("POST", "/alerts", json={"areas": ["nowhere"], "template": "flood"})
        assert r.status_code == 422 and "nowhere" in r.text
        r = await ctl.api("POST", "/alerts", json={"areas": ["thon-1"]})
        assert r.status_code == 422 and "template" in r.text
        r = await ctl.api("POST", "/alerts", json={"areas": ["thon-1"], "text": "x" * 2001})
        assert r.status_code == 422
        r = await ctl.api(
            "POST",
            "/alerts",
            json={"areas": ["thon-2"], "template": "fire", "test": True, "volume": 20},
            token=staff,
        )
        assert r.status_code == 201, r.text
        test_alert = r.json()
        assert (
            test_alert["test"]
            and test_alert["title"] == "Cảnh báo cháy"
            and test_alert["duration_s"] > 3
        )
        real = await ctl.api("GET", "/alerts", params={"test": False})
        assert real.json() == []
        tests = (await ctl.api("GET", "/alerts", params={"test": True})).json()
        assert [a["id"] for a in tests] == [test_alert["id"]]
        assert (
            await ctl.api("POST", f"/alerts/{test_alert['id']}/cancel", token=staff)
        ).status_code == 200
        assert (await ctl.api("POST", f"/alerts/{test_alert['id']}/cancel")).status_code == 409
        audit = (await ctl.api("GET", "/audit", params={"action": "alert."})).json()
        assert {e["action"] for e in audit} >= {"alert.test", "alert.cancel"}


@pytest.mark.slow
async def test_alert_preempts_only_its_village_and_every_node_confirms(make_settings):
    clock = SteppedClock()  # controller and nodes; held still until every node has the media
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 5)  # n0, n2, n4 in thon-1; n1, n3 in thon-2
        late = configs[4]
        async with fleet_of(configs[:4], clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            ann = (
                await ctl.api("POST", "/announcements", json={"title": "Tin", "text": LONG_TEXT})
            ).json()
            clock.pause()
            starts = datetime.fromtimestamp((clock.now_ms() + 2000) / 1000, UTC).isoformat()
            sched = (
                await ctl.api(
                    "POST",
                    "/schedules",
                    json={
                        "announcement_id": ann["id"],
                        "starts_at": starts,
                        "targets": {"areas": ["xa-a"]},
                    },
                )
            ).json()

            await wait_for(
                lambda: all(n.media.is_ready(ann["media_sha256"]) for n in fleet.nodes),
                60,
                "every node to hold the programme",
            )
            clock.resume()

            def playing() -> bool:
                return all(sounding(n) for n in fleet.nodes)

            await wait_for(playing, 20, "the programme to be playing")
            # How fast it sounds is measured in bench/bench_alert.py, not asserted here.
            r = await ctl.api(
                "POST",
                "/alerts",
                json={"areas": ["thon-1"], "template": "flood", "repeat": 1, "volume": 95},
            )
            assert r.status_code == 201, r.text
            alert = r.json()
            sse = asyncio.create_task(read_sse(ctl, alert["id"]))
            await wait_for(
                lambda: all(
                    sounding(n) == f"alert:{alert['id']}"
                    for n in fleet.nodes
                    if n.node_id in ("n0", "n2")
                ),
                10,
                "thon-1 nodes to play the alert",
            )
            for n in fleet.nodes:
                if n.node_id in ("n1", "n3"):
                    assert sounding(n) and not sounding(n).startswith("alert:")

            async with fleet_of([late], clock) as latecomer:  # offline at issue, back while active
                await wait_for(
                    lambda: any(a for a in latecomer.nodes[0].alerts_played),
                    30,
                    "the late node to play the active alert",
                )

            async def confirmed() -> bool:
                v = await view(ctl, alert["id"])
                return v["counts"].get("done", 0) == 3

            await wait_for(confirmed, 90, "every thon-1 node to confirm the alert")
            v = await view(ctl, alert["id"])
            assert {n["node_id"] for n in v["nodes"]} == {"n0", "n2", "n4"}
            assert all(n["received_at"] and n["started_at"] for n in v["nodes"])
            events = await asyncio.wait_for(sse, 30)
            assert events[0]["counts"] and any(
                e.get("event") == "alert_started" for e in events[1:]
            )

            d = (await ctl.api("GET", f"/schedules/{sched['id']}/deliveries")).json()
            by_node = {row["node_id"]: row["state"] for row in d["deliveries"]}
            assert by_node["n0"] == "preempted" and by_node["n2"] == "preempted"

            # Every node of thon-1 is done with it: played out, no longer retained.
            await wait_for(
                lambda: status_is(ctl, alert["id"], "finished"), 10, "the alert to finish"
            )
            clear = await ctl.api("POST", f"/alerts/{alert['id']}/all-clear")
            assert clear.status_code == 201
            # The danger it announced is over: the all-clear ended it.
            assert (await view(ctl, alert["id"]))["alert"]["status"] == "ended"


async def status_is(ctl, alert_id: str, status: str) -> bool:
    return (await view(ctl, alert_id))["alert"]["status"] == status


@pytest.mark.slow
async def test_all_clear_ends_the_alert_and_a_node_joining_after_it_finished_hears_nothing(
    make_settings,
):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 3)  # n0, n2 in thon-1; n1 in thon-2
        late = configs[2]
        async with fleet_of(configs[:2]) as fleet:
            n0 = fleet.nodes[0]
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            flood = (
                await ctl.api(
                    "POST", "/alerts", json={"areas": ["thon-1"], "template": "flood", "repeat": 0}
                )
            ).json()
            await wait_for(lambda: sounding(n0) == f"alert:{flood['id']}", 15, "the flood alert")

            r = await ctl.api("POST", f"/alerts/{flood['id']}/all-clear")
            assert r.status_code == 201, r.text
            clear = r.json()
            assert clear["template"] == "all_clear" and clear["repeat"] == 1
            ended = (await view(ctl, flood["id"]))["alert"]
            assert ended["status"] == "ended" and ended["cancelled_by"] == "root"
            # An ended alert and an all-clear are not cleared again.
            assert (await ctl.api("POST", f"/alerts/{flood['id']}/cancel")).status_code == 409
            r = await ctl.api("POST", f"/alerts/{clear['id']}/all-clear")
            assert r.status_code == 409, r.text

            # Played once on the one online node of thon-1 (n2 is away): finished at once.
            await wait_for(
                lambda: any(a.alert_id == clear["id"] for a in n0.alerts_played),
                30,
                "n0 to play the all-clear",
            )
            await wait_for(
                lambda: status_is(ctl, clear["id"], "finished"), 10, "the all-clear to finish"
            )
            active = (await ctl.api("GET", "/alerts", params={"state": "active"})).json()
            assert active == []
            assert [(a.alert_id, a.outcome) for a in n0.alerts_played] == [
                (flood["id"], "stopped"),
                (clear["id"], "finished"),
            ]
            # Its view says so: stopped, not played out.
            await wait_for(
                lambda: node_state(ctl, flood["id"], "n0", "stopped"), 10, "n0's stop to be shown"
            )

            async with fleet_of([late]) as latecomer:
                n2 = latecomer.nodes[0]
                await wait_for(lambda: n2.connected.is_set(), 20, "the late node to connect")
                # Behind anything still retained on thon-1's topic: a new alert, which it plays.
                barrier = (
                    await ctl.api(
                        "POST",
                        "/alerts",
                        json={"areas": ["thon-1"], "text": "Thử còi.", "repeat": 1, "test": True},
                    )
                ).json()
                await wait_for(
                    lambda: any(a.alert_id == barrier["id"] for a in n2.alerts_played),
                    30,
                    "the late node to play the alert sent after it joined",
                )
                assert [a.alert_id for a in n2.alerts_played] == [barrier["id"]]
                assert n2.alerts_received == 1


async def alert_events(
    ctl, alert_id: str, token: str | None = None, **params: Any
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The alert's server-sent events as they come: (kind, data), kind "snapshot" or "change"."""
    async with ctl.http.stream(
        "GET",
        f"{ctl.base_url}/api/v1/alerts/{alert_id}/events",
        params=params,
        headers={"Authorization": f"Bearer {token or ctl.token}"},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                yield kind, json.loads(line[6:])


async def read_sse(ctl, alert_id: str) -> list[dict]:
    got: list[dict] = []
    async with contextlib.aclosing(alert_events(ctl, alert_id)) as events:
        async for _kind, data in events:
            got.append(data)
            if any(g.get("event") == "alert_started" for g in got) and len(got) >= 3:
                return got
    return got


@pytest.mark.slow
async def test_cancelled_forged_and_replayed_alerts_are_not_played(make_settings):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 2)
        topics = ctl.service.topics
        login = ctl.service.registry.controller_login()
        port = ctl.service.settings.mqtt_embedded_port
        async with (
            fleet_of(configs) as fleet,
            aiomqtt.Client(
                "127.0.0.1",
                port,
                username=login.username,
                password=login.password,
                identifier=f"{login.username}:eavesdropper",
            ) as spy,
        ):
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            await spy.subscribe(topics.area_alert("thon-1"))
            alert = (
                await ctl.api(
                    "POST", "/alerts", json={"areas": ["thon-1"], "template": "storm", "repeat": 0}
                )
            ).json()
            captured = None
            async with asyncio.timeout(10):
                async for m in spy.messages:
                    captured = bytes(m.payload)
                    break
            n0 = fleet.nodes[0]
            await wait_for(lambda: sounding(n0) == f"alert:{alert['id']}", 15, "the alert to play")
            assert (await ctl.api("POST", f"/alerts/{alert['id']}/cancel")).status_code == 200
            await wait_for(
                lambda: sounding(n0) is None or not sounding(n0).startswith("alert:"),
                10,
                "the cancel to stop it",
            )
            played_before = len(n0.alerts_played)
            rejected_before = sum(fleet.summary().rejected.values())
            before = {n.node_id: n.rejected.copy() for n in fleet.nodes}
            received = [n.alerts_received for n in fleet.nodes]

            # Someone with the controller's stolen broker login replays the old alert and forges
            # a new one with a key of their own.
            forged = Signer(new_private_key()).sign(
                "alert",
                {
                    "alert_id": "forged",
                    "action": "play",
                    "expires": 32_000_000_000_000,
                    "title": "Sơ tán",
                    "duration_ms": 1000,
                    "media": {"url": "http://127.0.0.1:1/x.mp3", "sha256": "0" * 64, "size": 1},
                },
                int(datetime.now(UTC).timestamp() * 1000),
                600_000,
            )
            await spy.publish(topics.area_alert("thon-1"), captured, qos=1, retain=True)
            await spy.publish(topics.area_alert("xa-a"), forged, qos=1, retain=True)
            await wait_for(
                lambda: sum(fleet.summary().rejected.values()) >= rejected_before + 2,
                10,
                "the replay and the forgery to be refused",
            )

            def refused_by_each() -> bool:
                # thon-1's node takes both topics; thon-2's node only xa-a's.
                n1 = fleet.nodes[1]
                return (
                    n0.rejected["replayed"] == before["n0"]["replayed"] + 1
                    and n0.rejected["unknown_key"] == before["n0"]["unknown_key"] + 1
                    and n1.rejected["unknown_key"] == before["n1"]["unknown_key"] + 1
                )

            # Each node drops a message as it handles it: once every node has counted what it
            # was sent, nothing of either is left to play.
            await wait_for(refused_by_each, 30, "every node to refuse what it was sent")
            assert len(n0.alerts_played) == played_before
            assert all(n.alerts_received == r for n, r in zip(fleet.nodes, received, strict=True))
            assert all(not (sounding(n) or "").startswith("alert:") for n in fleet.nodes)

        # A node's own login cannot publish on alert topics at all (the broker's ACL).
        rogue = configs[0]
        async with aiomqtt.Client(
            "127.0.0.1",
            port,
            username=login.username,
            password=login.password,
            identifier=f"{login.username}:check",
        ) as check:
            await check.publish(topics.area_alert("thon-1"), b"", qos=1, retain=True)
            async with aiomqtt.Client(
                "127.0.0.1",
                port,
                username=rogue.username,
                password=rogue.password,
                identifier=rogue.username,
            ) as c:
                await c.publish(topics.area_alert("thon-1"), captured, qos=1, retain=True)
            await check.subscribe(topics.area_alert("thon-1"), qos=1)
            # A retained message comes right after the subscription, before anything published
            # after it: a marker of our own published now closes the window.
            marker = b"marker-after-subscribe"
            await check.publish(topics.area_alert("thon-1"), marker, qos=1)
            got = []
            async with asyncio.timeout(30):
                async for m in check.messages:
                    if bytes(m.payload) == marker:
                        break
                    got.append(bytes(m.payload))
            assert got == []


async def test_an_alert_replayed_onto_another_area_is_refused(make_settings):
    """Whoever holds the controller's broker login captures thon-1's alert and publishes it on
    thon-2's topic: the signed body names thon-1, so thon-2's loudspeaker refuses it and says
    so."""
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 2)  # n0 in thon-1, n1 in thon-2
        topics = ctl.service.topics
        login = ctl.service.registry.controller_login()
        port = ctl.service.settings.mqtt_embedded_port
        async with (
            fleet_of(configs) as fleet,
            aiomqtt.Client(
                "127.0.0.1",
                port,
                username=login.username,
                password=login.password,
                identifier=f"{login.username}:spy",
            ) as spy,
        ):
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            await spy.subscribe(topics.area_alert("thon-1"))
            r = await ctl.api(
                "POST", "/alerts", json={"areas": ["thon-1"], "template": "storm", "repeat": 0}
            )
            assert r.status_code == 201, r.text
            alert_id = r.json()["id"]
            async with asyncio.timeout(10):
                captured = bytes((await anext(aiter(spy.messages))).payload)
            n0, n1 = fleet.nodes
            await wait_for(lambda: sounding(n0) == f"alert:{alert_id}", 15, "thon-1 to sound")
            await spy.publish(topics.area_alert("thon-2"), captured, qos=1, retain=True)
            await wait_for(lambda: n1.rejected.get("wrong_area"), 10, "thon-2 to refuse it")
            assert n1.alerts_received == 0 and sounding(n1) is None

            def reported() -> list[str]:
                return [
                    e["detail"]
                    for e in ingested_events(ctl, "n1")
                    if e["type"] == "message_rejected"
                ]

            await wait_for(reported, 10, "the refusal to be reported")
            assert reported()[0].startswith("wrong_area on alert")
            await spy.publish(topics.area_alert("thon-2"), b"", qos=1, retain=True)


def ingested_events(ctl, node_id: str) -> list[dict]:
    from sqlmodel import select

    from controller.core.models import NodeEventRecord

    with ctl.service.db.session() as s:
        rows = s.exec(select(NodeEventRecord).where(NodeEventRecord.node_id == node_id)).all()
        return [{"type": r.type, "detail": r.detail} for r in rows]


def cap_doc(
    identifier: str, msg_type: str = "Alert", references=(), areas=(("thon-1", "Thôn 1"),)
) -> bytes:
    from controller.alerts.cap_export import export_cap

    now = datetime.now(UTC).replace(microsecond=0)
    return export_cap(
        {
            "id": identifier,
            "sender": "canhbao@kttv.example",
            "sent": now,
            "msg_type": msg_type,
            "references": list(references),
            "event": "Lũ quét",
            "headline": "Cảnh báo lũ quét",
            "description": "Nước lũ lên nhanh trên sông Đà.",
            "instruction": "Di chuyển lên chỗ cao.",
            "severity": "Severe",
            "urgency": "Immediate",
            "certainty": "Observed",
            "expires": now + timedelta(hours=2),
            "areas": list(areas),
        }
    )


async def test_a_cap_document_raises_and_cancels_the_same_alert(make_settings):
    from controller.alerts.cap_parse import parse_cap

    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 0)
        headers = {"content-type": "application/xml"}
        r = await ctl.api("POST", "/alerts/cap", content=cap_doc("AG-1"), headers=headers)
        assert r.status_code == 201, r.text
        alert = r.json()
        assert alert["areas"] == ["thon-1"] and alert["title"] == "Cảnh báo lũ quét"
        assert "sông Đà" in alert["text"] and not alert["test"]
        exported = parse_cap((await ctl.api("GET", f"/alerts/{alert['id']}/cap.xml")).content)
        assert exported.identifier == alert["id"] and exported.status == "Actual"

        hostile = (Path(__file__).parent / "cap_samples" / "billion_laughs.xml").read_bytes()
        r = await ctl.api("POST", "/alerts/cap", content=hostile, headers=headers)
        assert r.status_code == 422 and "hostile" in r.text
        r = await ctl.api("POST", "/alerts/cap", content=b"<alert>", headers=headers)
        assert r.status_code == 422

        sent = datetime.now(UTC).replace(microsecond=0)
        cancel = cap_doc("AG-2", "Cancel", [("canhbao@kttv.example", "AG-1", sent)])
        r = await ctl.api("POST", "/alerts/cap", content=cancel, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["id"] == alert["id"] and r.json()["status"] == "cancelled"


def test_cap_check_command(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {"RADIO_DEMO": "1", "RADIO_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "radio.cli",
            "area",
            "add",
            "thon-1",
            "--name",
            "Thôn 1",
            "--kind",
            "village",
        ],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    good = tmp_path / "good.xml"
    good.write_bytes(cap_doc("AG-9"))
    bad = root / "tests" / "controller" / "cap_samples" / "xxe_file.xml"
    ok = subprocess.run(
        [sys.executable, "-m", "radio.cli", "cap", "check", str(good)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✔ good.xml" in ok.stdout and "thon-1" in ok.stdout
    mixed = subprocess.run(
        [sys.executable, "-m", "radio.cli", "cap", "check", str(good), str(bad)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert mixed.returncode == 1
    assert "✘ xxe_file.xml" in mixed.stdout and "hostile" in mixed.stdout


async def test_short_alert_audio_travels_inside_the_alert(make_settings, monkeypatch):
    """A free-text alert's audio comes with the alert: nodes sound it without downloading it.
    Past the size limit, nodes download it (and play while downloading) as before."""
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 3)
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            fetched: list[str] = []

            async def record(request) -> None:
                fetched.append(request.url.path)

            fleet.http.event_hooks["request"].append(record)

            async def issue(text: str) -> dict:
                r = await ctl.api("POST", "/alerts", json={"areas": ["xa-a"], "text": text})
                assert r.status_code == 201, r.text
                alert = r.json()
                await wait_for(
                    lambda: all(
                        any(p.alert_id == alert["id"] for p in n.alerts_played)
                        or sounding(n) == f"alert:{alert['id']}"
                        for n in fleet.nodes
                    ),
                    30,
                    "every node to sound the alert",
                )
                cancel = await ctl.api("POST", f"/alerts/{alert['id']}/cancel")
                assert cancel.status_code == 200, cancel.text
                return alert

            inline = await issue("Nước sông đang lên nhanh, bà con di chuyển lên chỗ cao ngay.")
            sha = inline["media_sha256"]
            assert all(n.media.is_ready(sha) for n in fleet.nodes)
            assert not [p for p in fetched if sha in p], fetched

            monkeypatch.setattr("controller.alerts.alerts.MAX_INLINE_MEDIA_BYTES", 1000)
            big = await issue("Cháy rừng ở khu đồi phía tây, mọi người tránh xa khu vực đó.")
            assert [p for p in fetched if big["media_sha256"] in p]


async def test_village_staff_see_only_their_loudspeakers_of_a_commune_alert(make_settings):
    """An alert for the commune reaches every village; the staff of one village see their own
    loudspeakers in its view and live view (nodes, counts, silent ones, confirmations), as
    they do in the node list, and nothing of another village's."""
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        await make_commune(ctl, 2)  # n0 in thon-1, n1 in thon-2
        r = await ctl.api("POST", "/alerts", json={"areas": ["xa-a"], "template": "flood"})
        assert r.status_code == 201, r.text
        alert_id = r.json()["id"]
        staff = await ctl.login_as_new("thon-mot", "commune_staff", "thon-1")
        assert (await ctl.api("GET", "/nodes/n1", token=staff)).status_code == 404
        clock.advance(31_000)  # no node is running: both silent

        def view(token: str | None = None) -> Any:
            params = {"silent_after_s": 30}
            return ctl.api("GET", f"/alerts/{alert_id}", params=params, token=token)

        everything = (await view()).json()
        assert everything["silent"] == ["n0", "n1"] and everything["counts"] == {"silent": 2}
        own = (await view(staff)).json()
        assert [n["node_id"] for n in own["nodes"]] == ["n0"]
        assert own["silent"] == ["n0"] and own["counts"] == {"silent": 1}

        got: list[tuple[str, dict[str, Any]]] = []
        async with contextlib.aclosing(alert_events(ctl, alert_id, staff)) as events:
            async for kind, data in events:
                got.append((kind, data))
                if len(got) == 1:  # the first snapshot: confirmations from both villages
                    for node_id in ("n1", "n0"):
                        heard = AlertReceiptHeard(alert_id, node_id, "alert_received")
                        ctl.service.changes.publish(heard)
                if kind == "change" and data["node_id"] == "n0":
                    break
        first = got[0][1]
        assert first["nodes"] == {"n0": "silent"} and first["counts"] == {"silent": 1}
        changes = [data["node_id"] for kind, data in got if kind == "change"]
        assert changes == ["n0"]  # n1's confirmation, heard first, is not shown


async def test_an_alert_watched_a_page_at_a_time(make_settings):
    """An alert for many nodes is watched a page at a time, in JSON and in its live events: the
    page's nodes alone, the counts and silent nodes over all of them, a state as a filter;
    a page asked for wrongly is refused with a code."""
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        await make_commune(ctl, 5)
        r = await ctl.api("POST", "/alerts", json={"areas": ["xa-a"], "template": "flood"})
        assert r.status_code == 201, r.text
        alert_id = r.json()["id"]

        def hear(node_id: str, kind: str) -> None:  # as ingestion does with what it hears
            heard = ctl.service.alerts.heard(node_id, alert_id, kind, clock.now_ms(), "v1")
            assert heard is not None
            ctl.service.changes.publish(heard)

        for node_id in ("n1", "n3"):
            hear(node_id, "alert_started")
        clock.advance(31_000)  # the other three are silent by now
        path = f"/alerts/{alert_id}"

        page = {"silent_after_s": 30, "state": "silent", "offset": 1, "limit": 2}
        v = (await ctl.api("GET", path, params=page)).json()
        assert [n["node_id"] for n in v["nodes"]] == ["n2", "n4"]
        assert v["matched"] == 3 and v["counts"] == {"playing": 2, "silent": 3}
        assert v["silent"] == ["n0", "n2", "n4"]
        whole = (await ctl.api("GET", path, params={"silent_after_s": 30})).json()
        assert len(whole["nodes"]) == whole["matched"] == 5  # no page asked for: every node

        for wrong in ({"state": "lost"}, {"limit": 0}, {"limit": 1001}, {"offset": -1}):
            r = await ctl.api("GET", path, params=wrong)
            assert r.status_code == 422 and r.json()["code"] == "invalid_input", (wrong, r.text)

        # Live, a page of the nodes playing: it keeps to the node it showed when that one is
        # done, and a node on no page it shows still moves the counts, with no change named.
        got: list[tuple[str, dict[str, Any]]] = []
        snapshots: list[dict[str, Any]] = []
        playing_page = alert_events(ctl, alert_id, state="playing", limit=1)
        async with contextlib.aclosing(playing_page) as events:
            async for kind, data in events:
                got.append((kind, data))
                if kind != "snapshot":
                    continue
                snapshots.append(data)
                if len(snapshots) == 1:
                    hear("n1", "alert_finished")
                elif len(snapshots) == 2:
                    hear("n3", "alert_failed")
                else:
                    break
        first, second, third = snapshots
        assert first["nodes"] == {"n1": "playing"} and first["matched"] == 2
        assert first["counts"] == {"playing": 2, "silent": 3}
        assert second["nodes"] == {"n1": "done"} and second["matched"] == 1
        assert second["counts"] == {"done": 1, "playing": 1, "silent": 3}
        assert third["nodes"] == {"n1": "done"} and third["matched"] == 0
        assert third["counts"] == {"done": 1, "failed": 1, "silent": 3}
        changes = [(data["node_id"], data["event"]) for kind, data in got if kind == "change"]
        assert changes == [("n1", "alert_finished")]

        # The rows a console shows, named: their states whatever they are; no other node's.
        named_rows = alert_events(ctl, alert_id, state="playing", limit=100, ids="n0,n1,elsewhere")
        async with contextlib.aclosing(named_rows) as events:
            _kind, named = await anext(events)
        assert named["nodes"] == {"n0": "silent", "n1": "done"} and named["matched"] == 0
        too_many = ",".join(f"x{i}" for i in range(1001))
        r = await ctl.api("GET", f"{path}/events", params={"ids": too_many})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text
        # Only node ids and their commas: whatever else is refused as input, before the
        # alert is looked up.
        r = await ctl.api("GET", "/alerts/no-such-alert/events", params={"ids": "n0,\u0081"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text


def test_the_server_reads_the_longest_list_of_ids_a_live_view_may_name(make_settings):
    """uvicorn refuses, in plain text and not as the API's JSON, a request whose line and
    headers are still unfinished past its limit (16 KiB unless told): the longest `ids`, each
    character percent-encoded to 3 bytes, fits with room for the headers."""
    from fastapi import FastAPI

    from api.main import server_config
    from api.routes.alerts import NAMED_CHARS

    config = server_config(FastAPI(), make_settings())
    assert config.h11_max_incomplete_event_size >= 3 * NAMED_CHARS + 16 * 1024
