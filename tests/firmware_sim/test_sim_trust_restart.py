"""Replays across a node restart, with the real controller and its embedded broker: an alert and a
command captured from the broker, published again with the controller's stolen broker login
after the node restarted (same cache directory), are neither played nor executed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from firmware_sim.config import NodeConfig
from tests.conftest import running_controller, wait_for
from tests.controller.test_alerts import sounding
from tests.controller.test_broadcast_e2e import fleet_of, make_commune


@pytest.mark.slow
async def test_alert_and_command_replayed_after_a_restart_are_refused(
    make_settings, tmp_path: Path
) -> None:
    settings = make_settings()
    async with running_controller(settings) as ctl:
        [prov] = await make_commune(ctl, 1)  # n0 in thon-1
        cfg = NodeConfig.model_validate({**prov.model_dump(), "cache_dir": str(tmp_path)})
        topics = ctl.service.topics
        login = ctl.service.registry.controller_login()
        captured: dict[str, bytes] = {}

        async def capture(spy: aiomqtt.Client) -> None:
            async for m in spy.messages:
                if m.payload:  # the first of each: the alert's `play`, the command
                    captured.setdefault(m.topic.value, bytes(m.payload))  # type: ignore[arg-type]

        async with aiomqtt.Client(
            "127.0.0.1",
            settings.mqtt_embedded_port,
            username=login.username,
            password=login.password,
            identifier=f"{login.username}:eavesdropper",
        ) as spy:
            await spy.subscribe([(topics.area_alert("thon-1"), 1), (topics.cmd("n0"), 1)])
            listening = asyncio.create_task(capture(spy))
            async with fleet_of([cfg]) as fleet:
                node = fleet.nodes[0]
                await wait_for(lambda: node.connected.is_set(), 20, "the node to connect")
                r = await ctl.api(
                    "POST", "/alerts", json={"areas": ["thon-1"], "template": "storm", "repeat": 0}
                )
                assert r.status_code == 201, r.text
                alert_id = r.json()["id"]
                await wait_for(lambda: sounding(node) == f"alert:{alert_id}", 20, "the alert")
                assert (await ctl.api("POST", f"/alerts/{alert_id}/cancel")).status_code == 200
                await wait_for(lambda: node.alerts_played, 10, "the cancel to stop it")
                r = await ctl.api(
                    "POST",
                    "/commands",
                    json={"command": "volume", "args": {"level": 35}, "nodes": ["n0"]},
                )
                assert r.status_code == 202, r.text
                await wait_for(lambda: node.health.volume == 35, 10, "the command")
                kept = tmp_path / "n0" / "volume.json"
                await wait_for(kept.exists, 10, "the volume kept")
            await wait_for(lambda: len(captured) == 2, 5, "the alert and the command captured")
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

            async with fleet_of([cfg]) as fleet:  # the node restarts
                node = fleet.nodes[0]
                await wait_for(lambda: node.connected.is_set(), 20, "the node to come back")
                ran: list[object] = []
                execute = node.inbound.commands.execute

                async def counted(*args: Any) -> tuple[bool, str]:
                    ran.append(args[1])
                    return await execute(*args)

                node.inbound.commands.execute = counted  # type: ignore[method-assign]
                for topic, payload in captured.items():
                    await spy.publish(topic, payload, qos=1)
                await wait_for(lambda: node.rejected["replayed"] == 2, 10, "both replays refused")
                # A barrier: behind each replay, on its topic, a message that is not even JSON.
                # Once both are refused, the node has dealt with all before them.
                for topic in captured:
                    await spy.publish(topic, b"{", qos=1)
                await wait_for(lambda: node.rejected["malformed"] == 2, 10, "the barrier")
                assert dict(node.rejected) == {"replayed": 2, "malformed": 2}
                assert not node.alerts_played and sounding(node) is None
                assert ran == []  # the command did not run again
                assert node.health.volume == 35  # its level, kept across the restart
