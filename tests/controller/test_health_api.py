"""The device-health API on a running controller with real nodes: node filters, counts per
area, telemetry and timelines, alarms raised through the public interface, acknowledged,
streamed live, notified through a webhook that was dead at first; /metrics access."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from controller.core.models import Alarm, utcnow
from firmware_sim.config import NodeConfig
from firmware_sim.fleet import Fleet
from protocol import SystemClock
from tests.conftest import RunningController, free_port, running_controller, wait_for
from tests.controller.health_support import WebhookServer, prometheus


async def seed(ctl: RunningController) -> dict[str, NodeConfig]:
    for body in (
        {"id": "xa", "name": "Xã A", "kind": "commune"},
        {"id": "thon-1", "name": "Thôn 1", "kind": "village", "parent_id": "xa"},
        {"id": "thon-2", "name": "Thôn 2", "kind": "village", "parent_id": "xa"},
        {"id": "xb", "name": "Xã B", "kind": "commune"},
        {"id": "thon-b", "name": "Thôn B", "kind": "village", "parent_id": "xb"},
    ):
        assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
    configs = {}
    for node_id, area in (("a1", "thon-1"), ("a2", "thon-1"), ("a3", "thon-2"), ("b1", "thon-b")):
        r = await ctl.api("POST", "/nodes", json={"id": node_id, "name": node_id, "area_id": area})
        assert r.status_code == 201
        configs[node_id] = NodeConfig.model_validate(r.json()["provisioning"])
    return configs


async def ids(ctl: RunningController, token: str | None = None, **params: Any) -> list[str]:
    r = await ctl.api("GET", "/nodes", params=params, token=token)
    assert r.status_code == 200, r.text
    return [n["id"] for n in r.json()["items"]]


async def listen(
    ctl: RunningController, token: str, into: list[dict[str, Any]], connected: asyncio.Event
) -> None:
    """Collect the server-sent events of /alarms/events; `connected` is set once the server
    has registered the stream (its first line), so no change after that can be missed."""
    headers = {"Authorization": f"Bearer {token}"}
    async with ctl.http.stream("GET", f"{ctl.base_url}/api/v1/alarms/events", headers=headers) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line == ": connected":
                connected.set()
            if line.startswith("data: "):
                into.append(json.loads(line[6:]))


@pytest.mark.slow
@pytest.mark.sql  # the node list's filters and counts are SQL
async def test_fleet_views_alarms_webhook_and_metrics(make_settings):
    hook_port = free_port()  # nothing listens here yet: the webhook is dead
    settings = make_settings(
        webhook_url=f"http://127.0.0.1:{hook_port}/hook",
        webhook_retries=1,
        webhook_timeout_s=1,
        alarm_repeat_s=2,
        alarm_check_s=0.5,
        metrics_token="scrape-token-0123456789",
    )
    hook: WebhookServer | None = None
    fleet_task = stream = None
    try:
        async with running_controller(settings) as ctl:
            configs = await seed(ctl)
            tech = await ctl.login_as_new("tech-a", "technician", "xa")
            tech_b = await ctl.login_as_new("tech-b", "technician", "xb")
            staff = await ctl.login_as_new("staff-a", "commune_staff", "xa")
            fleet = Fleet([configs[n] for n in ("a1", "a2", "b1")], SystemClock())
            fleet_task = asyncio.create_task(fleet.run(display=False))

            async def online() -> bool:
                return await ids(ctl, state="online") == ["a1", "a2", "b1"]

            await wait_for(online, 30, "three nodes online")
            assert await ids(ctl, state="unknown") == ["a3"]
            assert await ids(ctl, area_id="thon-1") == ["a1", "a2"]
            assert await ids(ctl, tech) == ["a1", "a2", "a3"]  # a technician sees their area
            assert await ids(ctl, firmware="sim-1.0.0") == ["a1", "a2", "b1"]
            # A page at a time, by id, with how many match and how many are in each state.
            page = (await ctl.api("GET", "/nodes", params={"limit": 2})).json()
            assert [n["id"] for n in page["items"]] == ["a1", "a2"] and page["total"] == 4
            assert page["counts"] == {
                "nodes": 4,
                "online": 3,
                "offline": 0,
                "flapping": 0,
                "unknown": 1,
                "alarmed": 0,
            }
            assert page["next_after"] == "a2"
            # The next page from where this one ended (keyset), and the last says so.
            params = {"after": "a2", "limit": 2}
            page = (await ctl.api("GET", "/nodes", params=params)).json()
            assert [n["id"] for n in page["items"]] == ["a3", "b1"] and page["total"] == 4
            assert page["next_after"] is None and page["prev_before"] == "a3"
            # Back from it (keyset, read backwards), and the list's last page: the nodes after
            # its last full page, so that walking back meets the pages walking forward did.
            page = (await ctl.api("GET", "/nodes", params={"before": "a3", "limit": 2})).json()
            assert [n["id"] for n in page["items"]] == ["a1", "a2"]
            assert page["prev_before"] is None and page["next_after"] == "a2"
            params = {"before": "b1", "limit": 2}
            page = (await ctl.api("GET", "/nodes", params=params)).json()
            assert [n["id"] for n in page["items"]] == ["a2", "a3"]
            assert (page["prev_before"], page["next_after"]) == ("a2", "a3")
            for limit, last in ((3, ["b1"]), (2, ["a3", "b1"]), (500, ["a1", "a2", "a3", "b1"])):
                params = {"last": "true", "limit": limit}
                page = (await ctl.api("GET", "/nodes", params=params)).json()
                assert [n["id"] for n in page["items"]] == last and page["next_after"] is None
                assert page["prev_before"] == (last[0] if len(last) < 4 else None)
            params = {"last": "true", "state": "unknown", "limit": 2}
            page = (await ctl.api("GET", "/nodes", params=params)).json()
            assert [n["id"] for n in page["items"]] == ["a3"] and page["prev_before"] is None
            params = {"after": "a1", "state": "online", "limit": 1}
            page = (await ctl.api("GET", "/nodes", params=params)).json()
            assert [n["id"] for n in page["items"]] == ["a2"] and page["next_after"] == "a2"
            params = {"state": "online", "offset": 2, "limit": 2}
            page = (await ctl.api("GET", "/nodes", params=params)).json()
            assert [n["id"] for n in page["items"]] == ["b1"] and page["total"] == 3
            assert page["counts"]["unknown"] == 1  # the counts beside a state filter ignore it
            assert await ids(ctl, q=" A2 ") == ["a2"]  # in the id or the name, any case
            assert await ids(ctl, id=["b1", "a3", "zz"]) == ["a3", "b1"]
            assert await ids(ctl, tech, id=["b1", "a1"]) == ["a1"]  # never another area's
            for bad in (
                {"limit": 0},
                {"limit": 501},
                {"offset": -1},
                {"after": "x" * 65},
                {"before": ""},
                {"last": "garbage"},
            ):
                assert (await ctl.api("GET", "/nodes", params=bad)).status_code == 422
            cursors = ({"after": "a1", "before": "b1"}, {"last": "true", "offset": 2})
            for both in (*cursors, {"before": "b1", "offset": 1}):
                refused = await ctl.api("GET", "/nodes", params=both)
                assert refused.status_code == 422 and refused.json()["code"] == "page_cursors"

            events: list[dict[str, Any]] = []
            connected = asyncio.Event()
            stream = asyncio.create_task(listen(ctl, tech, events, connected))
            await asyncio.wait_for(connected.wait(), 60)
            service = ctl.service
            # The public interface other modules use (e.g. a firmware rollout).
            with service.db.session() as s:
                assert service.alarms.raise_alarm(s, "a1", "firmware_outdated", "runs 1.0")
                assert service.alarms.raise_alarm(s, "b1", "firmware_outdated", "runs 1.0")
                s.commit()
            await wait_for(lambda: any(e.get("change") == "raised" for e in events), 10)
            # The stream shows only what is in the technician's area.
            assert {e["node_id"] for e in events if e["type"] == "alarm"} == {"a1"}

            assert await ids(ctl, alarm="firmware_outdated") == ["a1", "b1"]
            assert await ids(ctl, alarm="any", area_id="xa") == ["a1"]
            assert await ids(ctl, alarm="none") == ["a2", "a3"]
            r = await ctl.api("GET", "/nodes", params={"alarm": "gremlins"})
            assert r.status_code == 422

            summary = (await ctl.api("GET", "/fleet/summary", params={"area_id": "xa"})).json()
            assert summary["totals"] == {
                "nodes": 3,
                "online": 2,
                "offline": 0,
                "flapping": 0,
                "unknown": 1,
                "alarmed": 1,
            }
            by_area = {a["area_id"]: a for a in summary["areas"]}
            assert by_area["thon-1"]["online"] == 2 and by_area["thon-1"]["alarmed"] == 1
            assert by_area["thon-2"]["unknown"] == 1 and by_area["thon-2"]["name"] == "Thôn 2"
            mine = (await ctl.api("GET", "/fleet/summary", token=tech)).json()
            assert mine["area_id"] == "xa" and mine["totals"]["nodes"] == 3
            top = (await ctl.api("GET", "/fleet/summary")).json()
            assert {a["area_id"] for a in top["areas"]} == {"xa", "xb"}
            r = await ctl.api("GET", "/fleet/summary", params={"area_id": "xb"}, token=tech)
            assert r.status_code == 404

            # The webhook is dead: the alarm stays, the failure is counted.
            webhook = service.health.webhook
            await wait_for(lambda: webhook.stats["failed"] >= 2, 20, "webhook failures")
            a1_alarm = (await ctl.api("GET", "/alarms", params={"node_id": "a1"})).json()[0]
            assert a1_alarm["state"] == "open" and a1_alarm["notified_at"] is None
            # It comes back: the undelivered alarms are sent, none lost.
            hook = WebhookServer(port=hook_port)
            await wait_for(lambda: len(hook.events("raised")) >= 2, 90, "delivery after recovery")
            assert {e["alarm"]["node_id"] for e in hook.events("raised")} == {"a1", "b1"}

            # Acknowledging: technicians in their area only.
            aid = a1_alarm["id"]
            r = await ctl.api("POST", f"/alarms/{aid}/ack", json={"note": "x"}, token=staff)
            assert r.status_code == 403
            r = await ctl.api("POST", f"/alarms/{aid}/ack", json={"note": "x"}, token=tech_b)
            assert r.status_code == 404
            r = await ctl.api("POST", f"/alarms/{aid}/ack", json={"note": "đi thay"}, token=tech)
            assert r.status_code == 200 and r.json()["state"] == "acknowledged"
            r = await ctl.api("POST", f"/alarms/{aid}/ack", json={}, token=tech)
            assert r.status_code == 409 and "already acknowledged by tech-a" in r.text
            assert (await ctl.api("POST", "/alarms/999999/ack", json={})).status_code == 404
            r = await ctl.api("POST", f"/alarms/{aid}/ack", json={"note": "x" * 501}, token=tech)
            assert r.status_code == 422
            acked = await ctl.api("GET", "/alarms", params={"state": "acknowledged"})
            assert [a["node_id"] for a in acked.json()] == ["a1"]
            # a1's, acknowledged, is due no more however long ago it was notified (a reminder
            # decided before the acknowledgement may have left after it, on a slow machine: the
            # round's choice is what is checked); b1's, which nobody took, is.
            with service.db.session() as s:
                for alarm in s.exec(select(Alarm).where(col(Alarm.node_id).in_(["a1", "b1"]))):
                    alarm.notified_at = utcnow() - timedelta(hours=1)
                    s.add(alarm)
                s.commit()
            due = await wait_for(
                lambda: {c["node_id"] for c in webhook.due()} if not webhook._in_flight else None,
                10,
                "a reminder round with no notification in flight",
            )
            assert "b1" in due and "a1" not in due, due
            assert (await ctl.api("GET", "/alarms", params={"area_id": "xb"})).json()[0][
                "node_id"
            ] == "b1"
            assert (await ctl.api("GET", "/alarms", token=tech)).json()[0]["node_id"] == "a1"

            with service.db.session() as s:
                assert service.alarms.clear_alarm(s, "a1", "firmware_outdated", "updated")
                s.commit()
            await wait_for(lambda: any(e.get("change") == "cleared" for e in events), 10)
            await wait_for(lambda: hook.events("cleared"), 10)

            # Telemetry history and the node's timeline.
            r = await ctl.api("GET", "/nodes/a1/telemetry")
            assert r.status_code == 200 and r.json()["resolution"] == "full"
            assert r.json()["points"] and "temperature_c" in r.json()["points"][0]
            r = await ctl.api(
                "GET", "/nodes/a1/telemetry", params={"from": "2020-01-01", "to": "2026-01-01"}
            )
            assert r.status_code == 422 and "range too long" in r.text
            r = await ctl.api(
                "GET", "/nodes/a1/telemetry", params={"from": "2026-02-01", "to": "2026-01-01"}
            )
            assert r.status_code == 422 and "before" in r.text
            r = await ctl.api("GET", "/nodes/a1/telemetry", params={"from": "0001-01-01T00:00"})
            assert r.status_code == 422
            r = await ctl.api(
                "GET",
                "/nodes/a1/telemetry",
                params={"from": "2025-01-01T00:00", "to": "2025-03-01T00:00"},
            )
            assert r.json()["resolution"] == "hourly"
            assert (await ctl.api("GET", "/nodes/b1/telemetry", token=tech)).status_code == 404
            timeline = (await ctl.api("GET", "/nodes/a1/events")).json()
            kinds = [e["type"] for e in timeline]
            assert "online" in kinds
            assert kinds.index("firmware_outdated cleared") < kinds.index(
                "firmware_outdated acknowledged"
            )

            # /metrics: a scraper's token, or an administrator, auditor or technician.
            url = f"{ctl.base_url}/metrics"
            assert (await ctl.http.get(url)).status_code == 401
            bad = {"Authorization": "Bearer nope"}
            assert (await ctl.http.get(url, headers=bad)).status_code == 401
            staff_h = {"Authorization": f"Bearer {staff}"}
            assert (await ctl.http.get(url, headers=staff_h)).status_code == 403
            for token in ("scrape-token-0123456789", tech):
                r = await ctl.http.get(url, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            m = prometheus(r.text)
            assert m['radio_nodes{state="online"}'] == 3
            assert m['radio_alarms{kind="firmware_outdated",state="open"}'] == 1
            assert m['radio_webhook_notifications_total{outcome="failed"}'] >= 2
            assert m["radio_mqtt_messages_received_total"] >= 3
            assert m["radio_mqtt_connected"] == 1
            assert m["radio_nodes_alarmed"] == 1
            # Every garbage collection is timed: a full one more shows, in its bucket.
            full = 'radio_gc_pause_seconds_count{generation="2"}'
            gc.collect()
            r = await ctl.http.get(url, headers={"Authorization": f"Bearer {tech}"})
            after = prometheus(r.text)
            assert after[full] >= m[full] + 1
            assert after['radio_gc_pause_seconds_bucket{generation="2",le="+Inf"}'] == after[full]
            assert 0 < after['radio_gc_pause_longest_seconds{generation="2"}'] < 60
            # b1's alarm, which nobody acknowledged, is notified again (alarm_repeat_s = 2).
            await wait_for(
                lambda: {e["alarm"]["node_id"] for e in hook.events("reminder")} >= {"b1"},
                10,
                "a reminder of b1",
            )
            r = await ctl.http.get(f"{ctl.base_url}/api/v1/alarms/events")  # no token
            assert r.status_code == 401
    finally:
        for task in (stream, fleet_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if hook is not None:
            hook.close()


@pytest.mark.mosquitto
async def test_readiness_follows_the_broker(make_settings, mosquitto_factory):
    broker = mosquitto_factory()
    async with running_controller(make_settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}")) as ctl:
        url = f"{ctl.base_url}/api/v1/ready"
        r = await ctl.http.get(url)
        assert r.status_code == 200
        assert r.json()["checks"] == {
            "broker": True,
            "database": True,
            "ingest": True,
            "background": True,
        }
        broker.stop()  # the broker goes away: not ready, though alive

        async def not_ready() -> bool:
            return (await ctl.http.get(url)).status_code == 503

        await wait_for(not_ready, 20, "readiness to fail")
        assert (await ctl.http.get(url)).json()["checks"]["broker"] is False
        assert (await ctl.http.get(f"{ctl.base_url}/api/v1/health")).status_code == 200
