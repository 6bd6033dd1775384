"""Fault scenarios: a TOML file of timed faults played against real nodes on a real broker; what
the nodes publish shows each fault begin and end. Bad files are refused with a clear message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fwsim_support import Controller, MediaServer, item, until

from firmware_sim import Node
from firmware_sim.cli import main as sim_main
from firmware_sim.scenario import Scenario, ScenarioError
from protocol import NodeStatus
from tests.clocks import SteppedClock


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faults.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_hardware_faults_show_in_telemetry_and_end(
    tmp_path: Path, start_node: Callable[..., Node], controller: Controller
) -> None:
    # Real speed: each fault lasts until the test has seen it, then a jump ends them all.
    clock = SteppedClock()
    a = start_node("a1", clock=clock, heartbeat_s=1)
    b = start_node("b1", clock=clock, heartbeat_s=1)
    for node in (a, b):
        node.health.jitter = False
    await until(lambda: a.connected.is_set() and b.connected.is_set(), what="connect")
    scenario = Scenario.load(
        write(
            tmp_path,
            """
[[fault]]
nodes = ["a1"]
kind = "speaker"
at = 1
duration = 30

[[fault]]
node = "a1"
kind = "over_temperature"
temperature_c = 91
at = 1
duration = 30

[[fault]]
node = "b1"
kind = "mains_lost"
battery_pct = 30
drain_pct_per_min = 60
at = 1
duration = 40
""",
        )
    )
    run = asyncio.create_task(scenario.run([a, b], clock))

    def seen(node_id: str, cond: Callable[..., bool]) -> bool:
        return any(cond(t) for t in controller.telemetry(node_id))

    await until(lambda: seen("a1", lambda t: not t.speaker_ok and t.temperature_c == 91), 10)
    await until(lambda: seen("b1", lambda t: t.power == "battery"), 10)
    clock.advance(10_000)  # the battery drains in steps of 10 s
    await until(lambda: seen("b1", lambda t: t.power == "battery" and t.battery_pct < 30), 10)
    assert not run.done()
    clock.advance(31_000)  # past the end of the longest fault (40 s)
    await asyncio.wait_for(run, 15)  # every fault has a duration: the scenario ends
    assert a.health.speaker_ok and a.health.temperature_c == 38.0
    assert b.health.power == "mains" and b.health.battery_pct is None
    n = len(controller.telemetry("a1"))
    await until(lambda: len(controller.telemetry("a1")) > n, 10, "a heartbeat after the faults")
    assert controller.telemetry("a1")[-1].speaker_ok


async def test_offline_fires_the_will_and_hang_stops_heartbeats(
    tmp_path: Path, start_node: Callable[..., Node], controller: Controller
) -> None:
    # Real speed: the faults last until a jump ends them. c1, healthy, beats as b1 would.
    clock = SteppedClock()
    a = start_node("a1", clock=clock, heartbeat_s=1)
    b = start_node("b1", clock=clock, heartbeat_s=1)
    c = start_node("c1", clock=clock, heartbeat_s=1)
    await until(lambda: all(n.connected.is_set() for n in (a, b, c)), what="connect")

    def beats(node_id: str) -> int:
        return len(controller.telemetry(node_id))

    path = write(
        tmp_path,
        """
[[fault]]
node = "a1"
kind = "offline"
at = 0
duration = 30

[[fault]]
node = "b1"
kind = "hang"
at = 0
duration = 30
""",
    )
    run = asyncio.create_task(Scenario.load(path).run([a, b], clock))
    await until(lambda: NodeStatus.lost in [s.status for s in controller.states("a1")], 10)
    assert not a.connected.is_set()
    # A heartbeat of c1's after the hang began: one b1 had on the way then is in by now.
    healthy = beats("c1")
    await until(lambda: beats("c1") > healthy, 10, "a heartbeat of the healthy node")
    hung, healthy = beats("b1"), beats("c1")
    # Three more of c1's: time for two of b1's, had it not hung.
    await until(lambda: beats("c1") >= healthy + 3, 10, "three heartbeats of the healthy node")
    assert beats("b1") == hung and b.connected.is_set()  # connected, but no heartbeat
    assert not run.done()
    clock.advance(31_000)  # past the end of both faults
    await asyncio.wait_for(run, 10)
    await until(lambda: a.connected.is_set(), 15, "a1 back after the outage")
    await until(lambda: controller.states("a1")[-1].status == NodeStatus.online, 5, "a1 online")
    await until(lambda: beats("b1") > hung, 10, "b1 heartbeats again")


async def test_silent_and_corrupt_downloads(
    tmp_path: Path,
    start_node: Callable[..., Node],
    controller: Controller,
    media: MediaServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="firmware_sim.timeline")

    def stalled_on(item_id: str) -> bool:
        return any(
            r.name == "firmware_sim.timeline"
            and "player stalled" in r.getMessage()
            and item_id in r.getMessage()
            for r in caplog.records
        )

    clock = SteppedClock()
    silent = start_node("s1", clock=clock)
    corrupt = start_node("c1", clock=clock)
    await until(lambda: silent.connected.is_set() and corrupt.connected.is_set())
    path = write(
        tmp_path,
        """
[[fault]]
node = "s1"
kind = "silent"

[[fault]]
node = "c1"
kind = "media_corrupt"
""",
    )
    run = asyncio.create_task(Scenario.load(path).run([silent, corrupt], clock))
    await until(lambda: silent.playback.stalled and corrupt.media.corrupt)
    data = b"ID3" + bytes(range(256)) * 8
    media.files["a.mp3"] = data
    clock.pause()  # the item comes due once s1 holds its media, however slow the download
    start = clock.now_ms() + 1500
    for node_id in ("s1", "c1"):
        await controller.push_timeline(
            node_id, 1, [item("i1", start, media.url("a.mp3"), data, duration_ms=300)]
        )
    await until(lambda: controller.events("c1", "media_failed"), 10, "a failed download")
    assert "sha256 mismatch" in controller.events("c1", "media_failed")[0].detail
    await until(lambda: controller.events("s1", "media_ready"), 10, "s1 downloads its media")
    clock.skip_to(start)
    clock.resume()
    # The node's own word that its item came due on a stalled player.
    await until(lambda: stalled_on("i1"), 10, "the item's time on the stalled player")
    # A barrier: a new timeline's report travels behind any report about i1 there could be.
    await controller.push_timeline("s1", 2, [])
    await until(
        lambda: any(e.timeline_version == 2 for e in controller.events("s1", "timeline_applied")),
        10,
        "the barrier's report",
    )
    assert not silent.played and not controller.events("s1", "playback_started")
    assert not controller.events("s1", "playback_failed")  # silent: nothing is reported
    run.cancel()  # these faults have no duration: they stay until the scenario is stopped


def test_bad_scenario_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        Scenario.load(write(tmp_path, "[[fault]\nkind="))
    with pytest.raises(ScenarioError, match="fault 1: kind"):
        Scenario.load(write(tmp_path, '[[fault]]\nnode = "a"\nkind = "gremlins"\n'))
    with pytest.raises(ScenarioError, match="name the node"):
        Scenario.load(write(tmp_path, '[[fault]]\nkind = "speaker"\n'))
    with pytest.raises(ScenarioError, match="fault 1: duration"):
        Scenario.load(write(tmp_path, '[[fault]]\nnode="a"\nkind="hang"\nduration=-1\n'))
    with pytest.raises(ScenarioError, match="no \\[\\[fault\\]\\]"):
        Scenario.load(write(tmp_path, "# nothing\n"))
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "missing.toml")
    scenario = Scenario.load(write(tmp_path, '[[fault]]\nnodes=["a","zz"]\nkind="flap"\n'))
    with pytest.raises(ScenarioError, match="not in the fleet: zz"):
        scenario.check(["a", "b"])


def test_the_command_line_refuses_a_scenario_naming_unknown_nodes(tmp_path: Path, capsys) -> None:
    provision = tmp_path / "prov"
    provision.mkdir()
    (provision / "n1.json").write_text('{"node_id": "n1"}')
    path = write(tmp_path, '[[fault]]\nnode = "ghost"\nkind = "speaker"\n')
    code = sim_main(["--provision-dir", str(provision), "--scenario", str(path)])
    assert code == 2 and "not in the fleet: ghost" in capsys.readouterr().err
