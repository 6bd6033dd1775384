"""Signed commands are executed and acknowledged; unknown or unsigned ones are not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from fwsim_support import Controller, MediaServer, item, until

from firmware_sim import Node
from firmware_sim.health import NodeHealth
from protocol import SystemClock

DATA = b"tone" * 500


async def test_volume_command_is_acked_and_reported(
    start_node: Callable[..., Node], controller: Controller
) -> None:
    node = start_node(heartbeat_s=0.2)
    await asyncio.wait_for(node.connected.wait(), 60)
    cmd_id = await controller.command("n1", "volume", {"level": 35})
    bad_id = await controller.command("n1", "volume", {"level": 300})
    await until(lambda: len(controller.acks("n1")) == 2, what="acks")
    acks = {a.cmd_id: a for a in controller.acks("n1")}
    assert acks[cmd_id].ok and node.health.volume == 35
    assert not acks[bad_id].ok
    await until(
        lambda: any(t.volume == 35 for t in controller.telemetry("n1")),
        what="telemetry with new volume",
    )


async def test_the_volume_is_kept_across_a_restart(
    start_node: Callable[..., Node], controller: Controller, tmp_path: Path
) -> None:
    node = start_node(cache_dir=str(tmp_path))
    await asyncio.wait_for(node.connected.wait(), 60)
    await controller.command("n1", "volume", {"level": 35})
    await until(lambda: controller.acks("n1"), what="the ack")
    assert controller.acks("n1")[0].ok
    kept = tmp_path / "n1" / "volume.json"
    await until(kept.exists, what="the volume kept on the card")  # renamed into place, whole
    # What the node software takes from the card as it starts again.
    again = NodeHealth()
    again.keep_volume_in(kept)
    assert again.volume == 35
    # A file torn by a power cut: the default volume, and the node starts all the same.
    kept.write_text('{"volu')
    torn = NodeHealth()
    torn.keep_volume_in(kept)
    assert torn.volume == 70


async def test_unknown_and_unsigned_commands(
    start_node: Callable[..., Node], controller: Controller
) -> None:
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    unknown_id = await controller.command("n1", "self_destruct")
    unsigned = json.loads(controller.sign("cmd", {"node_id": "n1", "command": "reboot"}))
    unsigned["sig"] = ""
    await controller.publish(controller.topics.cmd("n1"), json.dumps(unsigned).encode())
    await until(lambda: controller.acks("n1") and node.rejected["unsigned"] == 1, what="ack")
    [ack] = controller.acks("n1")
    assert ack.cmd_id == unknown_id and not ack.ok and "self_destruct" in ack.detail
    assert node.boot == 1


async def test_stop_reboot_and_resync(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = DATA
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    start = SystemClock().now_ms() + 700
    await controller.push_timeline(
        "n1", 1, [item("long", start, media.url("a.mp3"), DATA, duration_ms=60_000)]
    )
    await until(lambda: node.playback.now_playing is not None, what="playing")
    await controller.command("n1", "stop")
    await until(lambda: node.played, what="stopped")
    assert node.played[0].outcome == "preempted"
    await until(lambda: controller.events("n1", "playback_preempted"), what="preempted event")

    await controller.command("n1", "resync")
    await until(lambda: len(controller.acks("n1")) == 2, what="resync ack")
    await controller.command("n1", "reboot")
    await until(
        lambda: [s.boot for s in controller.states("n1") if s.status == "online"][-1:] == [2],
        timeout=6,
        what="online again with boot 2",
    )
    assert [a.ok for a in controller.acks("n1")] == [True, True, True]
    assert "offline" in [s.status for s in controller.states("n1")]
    assert node.rejected_total == 0  # the retained timeline seen again is benign
