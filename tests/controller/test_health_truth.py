"""A controller and real nodes: what a node cannot measure stays unknown (no alarm, "không rõ"
in the console), a single node's heartbeat carries the machine's own values, and a node whose
clock is off is shown with its offset and raises the clock alarm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from firmware_sim.config import NodeConfig
from firmware_sim.fleet import Fleet
from firmware_sim.health_machine import cpu_temperature, machine_uptime_s
from firmware_sim.node import Node
from firmware_sim.single import single_config
from protocol import SystemClock
from tests.conftest import TEST_PASSWORD, RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import make_commune

FAST = {"alarm_check_s": 0.3, "heartbeat_s": 1}
NO_POWER_SUPPLY = not any(Path("/sys/class/power_supply").glob("*"))


@contextlib.asynccontextmanager
async def nodes_running(nodes: list[Node]) -> AsyncIterator[list[Node]]:
    tasks = [asyncio.create_task(n.run()) for n in nodes]
    try:
        yield nodes
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def node_view(ctl: RunningController, node_id: str) -> dict[str, Any]:
    r = await ctl.api("GET", f"/nodes/{node_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def open_kinds(ctl: RunningController, node_id: str) -> set[str]:
    r = await ctl.api("GET", "/alarms", params={"node_id": node_id, "state": "active"})
    assert r.status_code == 200, r.text
    return {a["kind"] for a in r.json()}


async def console_page(ctl: RunningController, path: str) -> str:
    login = await ctl.http.get(f"{ctl.base_url}/console/login")
    form = re.search(r'name="login_form" value="([^"]+)"', login.text)
    assert form is not None, login.text[:500]
    r = await ctl.http.post(
        f"{ctl.base_url}/console/login",
        data={"username": "root", "password": TEST_PASSWORD, "login_form": form.group(1)},
    )
    assert r.status_code in (200, 303), r.text[:500]
    page = await ctl.http.get(f"{ctl.base_url}{path}", headers={"Accept-Language": "vi"})
    assert page.status_code == 200, page.text[:500]
    return page.text


async def test_unknown_power_and_checks_raise_nothing_and_show_as_unknown(
    make_settings, tmp_path: Path
):
    async with running_controller(make_settings(**FAST)) as ctl:
        configs = await make_commune(ctl, 2)
        # n0 reads this machine (no battery board, no speaker hook here); n1 is simulated on
        # a battery at 10 %, so the same rules are seen to raise where something is known.
        real = configs[0].model_copy(update={"health": "machine", "cache_dir": str(tmp_path)})
        async with nodes_running([Node(real, SystemClock()), Node(configs[1], SystemClock())]) as (
            _n0,
            n1,
        ):
            n1.health.power, n1.health.battery_pct = "battery", 10
            await wait_for(
                lambda: {"n0", "n1"} <= set(ctl.service.health.telemetry.latest), 30, "heartbeats"
            )
            await wait_for(lambda: _alarmed(ctl, "n1"), 30, "n1's battery alarms")
            seen = (await node_view(ctl, "n0"))["telemetry"]
            if NO_POWER_SUPPLY:
                assert seen["power"] is None and seen["battery_pct"] is None
                assert not {"mains_lost", "low_battery"} & await open_kinds(ctl, "n0")
            assert seen["speaker_ok"] is None and seen["amplifier_ok"] is None
            assert not {"speaker_fault", "amplifier_fault"} & await open_kinds(ctl, "n0")
            assert {"mains_lost", "low_battery"} <= await open_kinds(ctl, "n1")
            html = await console_page(ctl, "/console/nodes/n0")
            section = html[html.index('id="health"') : html.index('id="commands"')]
            assert "chưa kiểm tra" in section  # speaker and amplifier: not checked
            if seen["power"] is None:
                assert "không rõ" in section


def _alarmed(ctl: RunningController, node_id: str) -> bool:
    from sqlmodel import col, select

    from controller.core.models import Alarm

    with ctl.service.db.session() as s:
        rows = s.exec(
            select(Alarm).where(Alarm.node_id == node_id, col(Alarm.cleared_at).is_(None))
        ).all()
    return {"mains_lost", "low_battery"} <= {a.kind for a in rows}


async def test_a_single_node_reports_the_machines_own_readings(make_settings, tmp_path: Path):
    async with running_controller(make_settings(**FAST)) as ctl:
        (config,) = await make_commune(ctl, 1)
        provision = tmp_path / "provision.json"
        provision.write_text(json.dumps(config.model_dump()))
        cache = tmp_path / "cache"
        single = single_config(provision, cache, device="null", backend="null")
        assert single.health == "machine"
        async with nodes_running([Node(single, SystemClock())]):
            store = ctl.service.health.telemetry
            await wait_for(lambda: "n0" in store.latest, 30, "a heartbeat")
            t = (await node_view(ctl, "n0"))["telemetry"]
            st = os.statvfs(cache)
            free = st.f_bavail * st.f_frsize / 2**20
            assert abs(t["storage_free_mb"] - free) <= max(1, free / 100)
            uptime = machine_uptime_s()
            assert uptime is not None and uptime - 5 <= t["uptime_s"] <= uptime
            zone = cpu_temperature()
            assert t["temperature_c"] == zone or (zone is not None and t["temperature_c"])
            assert t["signal_dbm"] != -67 or zone is not None  # never the simulator's number
            assert t["load_1m"] is not None and t["memory_free_mb"] is not None


async def test_a_node_whose_clock_is_off_is_shown_so_and_raises_the_clock_alarm(make_settings):
    async with running_controller(make_settings(**FAST)) as ctl:
        configs = await make_commune(ctl, 3)
        offsets = {"n0": 0, "n1": 400, "n2": -400}
        fleet = Fleet(configs, clock_for=lambda c: SystemClock(offsets[c.node_id]))
        task = asyncio.create_task(fleet.run(display=False))
        try:
            await wait_for(
                lambda: set(offsets) <= set(ctl.service.health.telemetry.latest), 30, "heartbeats"
            )
            # A live, signed message to each: the node times it against the controller's clock.
            r = await ctl.api(
                "POST",
                "/commands",
                json={"command": "volume", "args": {"level": 60}, "nodes": list(offsets)},
            )
            assert r.status_code == 202, r.text

            async def two_way() -> bool:
                views = [await node_view(ctl, n) for n in offsets]
                return all(v["clock"] and v["clock"]["method"] == "two_way" for v in views)

            await wait_for(two_way, 30, "both directions measured")
            for node_id, true_offset in offsets.items():
                clock = (await node_view(ctl, node_id))["clock"]
                # Delays are never negative, so the bounds always hold the true offset.
                assert clock["low_ms"] <= true_offset <= clock["high_ms"], (node_id, clock)
            for node_id in ("n1", "n2"):
                sent = [time.monotonic()]

                async def alarmed(n: str = node_id, sent: list[float] = sent) -> bool:
                    if _has(ctl, n, "clock_offset"):
                        return True
                    # Each signed message is one more sample, and the node keeps the quickest:
                    # on a busy machine the first ones may be too slow to tell 400 ms apart.
                    if time.monotonic() - sent[-1] > 2:
                        sent.append(time.monotonic())
                        body = {"command": "volume", "args": {"level": 60}, "nodes": [n]}
                        assert (await ctl.api("POST", "/commands", json=body)).status_code == 202
                    return False

                await wait_for(alarmed, 60, f"{node_id}'s alarm")
            r = await ctl.api("GET", "/alarms", params={"node_id": "n1", "kind": "clock_offset"})
            assert "ms from the controller's clock" in r.json()[0]["detail"]
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _has(ctl: RunningController, node_id: str, kind: str) -> bool:
    from sqlmodel import col, select

    from controller.core.models import Alarm

    with ctl.service.db.session() as s:
        return (
            s.exec(
                select(Alarm).where(
                    Alarm.node_id == node_id, Alarm.kind == kind, col(Alarm.cleared_at).is_(None)
                )
            ).first()
            is not None
        )


def test_node_config_hooks_are_optional() -> None:
    config = NodeConfig(node_id="n0")
    assert config.health is None and config.power_command is None


def test_the_clock_alarm_needs_proof_and_clears_on_a_two_way_estimate() -> None:
    from controller.health.telemetry import clock_offset

    def judged(up: int | None, down: int | None) -> bool | None:
        offset = clock_offset(up, down)
        return None if offset is None else offset.beyond(50)

    assert judged(-398, 402) is True  # 400 ms ahead, 2 ms each way: both bounds say so
    assert judged(402, -398) is True  # 400 ms behind
    assert judged(-380, None) is True  # heartbeats alone prove a node ahead
    assert judged(None, -380) is True  # the node's measure alone proves it behind
    assert judged(2, 298) is None  # a slow downlink: [−2, 298] proves nothing; left as it is
    assert judged(3, 5) is False  # within 1 ms, say both ways: cleared
    assert judged(None, 30) is None and judged(None, None) is None


def test_the_kept_heartbeat_has_every_field_of_the_protocols() -> None:
    from controller.health.telemetry import Reading
    from protocol import Telemetry

    # The controller keeps each node's newest heartbeat as a Reading: a field added to the
    # protocol must be kept too, in the same order.
    assert Reading._fields == tuple(Telemetry.model_fields)
    report = Telemetry(node_id="n1", ts=5, temperature_c=41.5, power="battery", battery_pct=40)
    assert Reading.of(report)._asdict() == report.model_dump(mode="json")
