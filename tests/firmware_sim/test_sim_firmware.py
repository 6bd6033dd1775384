"""Firmware updates on the node: fetched with the node's token, verified, installed, rebooted into,
reported step by step; a bad image is refused and the old version kept."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

from fwsim_support import Controller, MediaServer, until

from firmware_sim import Node, NodeConfig
from protocol import CommandAck, SystemClock

IMAGE = bytes(range(256)) * 1024  # 256 KiB


def update_args(media: MediaServer, name: str, version: str, data: bytes = IMAGE) -> dict:
    return {
        "version": version,
        "url": media.url(name),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def acks_of(controller: Controller, cmd_id: str) -> list[CommandAck]:
    return [a for a in controller.acks("n1") if a.cmd_id == cmd_id]


def final(controller: Controller, cmd_id: str) -> CommandAck | None:
    return next((a for a in acks_of(controller, cmd_id) if a.final), None)


async def test_update_is_fetched_with_the_token_verified_installed_and_rebooted_into(
    start_node: Callable[..., Node],
    controller: Controller,
    media: MediaServer,
    tmp_path: Path,
    prefix: str,
) -> None:
    media.files["fw-2.bin"] = IMAGE
    node = start_node(
        cache_dir=str(tmp_path),
        media_token="n1.secret-token",
        media_token_url=media.url("media/token"),
    )
    await asyncio.wait_for(node.connected.wait(), 60)
    # The state is published before `connected` is set; its delivery may trail.
    await until(lambda: controller.states("n1"), what="the node's online state")
    assert controller.states("n1")[-1].firmware == "sim-1.0.0"

    cmd_id = await controller.command(
        "n1", "update_firmware", update_args(media, "fw-2.bin", "2.0")
    )
    await until(lambda: final(controller, cmd_id), timeout=10, what="the final ack")

    acks = acks_of(controller, cmd_id)
    assert [a.stage for a in acks] == [
        "downloading",
        "verifying",
        "installing",
        "rebooting",
        "done",
    ]
    assert [a.final for a in acks] == [False, False, False, False, True]
    done = acks[-1]
    assert done.ok and done.firmware == "2.0" and "sim-1.0.0" in done.detail
    assert acks[0].firmware == "sim-1.0.0"  # progress said what ran while downloading
    assert media.auth == ["Bearer n1.secret-token"]
    # The final ack comes from the rebooted node, after it said it is online with the new version.
    online = [s for s in controller.states("n1") if s.status == "online"]
    assert [(s.boot, s.firmware) for s in online] == [(1, "sim-1.0.0"), (2, "2.0")]
    assert (tmp_path / "n1" / "firmware" / "installed.bin").read_bytes() == IMAGE

    # The installed version survives a power cycle of the device.
    again = Node(
        NodeConfig(node_id="n1", topic_prefix=prefix, cache_dir=str(tmp_path)), SystemClock()
    )
    assert again.firmware.version == "2.0" and not again.firmware.unsent

    # Asking for the version it runs is answered at once, without a download or a reboot.
    same = await controller.command("n1", "update_firmware", update_args(media, "fw-2.bin", "2.0"))
    await until(lambda: final(controller, same), what="the ack of a no-op update")
    assert final(controller, same).detail == "already running 2.0"  # type: ignore[union-attr]
    assert len(media.auth) == 1 and node.boot == 2


async def test_bad_images_and_bad_args_are_refused_and_the_old_version_kept(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["corrupt.bin"] = b"\xff" + IMAGE[1:]  # one byte off: same size, other sha256
    media.files["slow.bin"] = IMAGE
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)

    async def answer(args: dict) -> str:
        cmd_id = await controller.command("n1", "update_firmware", args)
        await until(lambda: final(controller, cmd_id), timeout=10, what="a final ack")
        return cmd_id

    corrupt = await answer(update_args(media, "corrupt.bin", "2.0"))
    missing = await answer(update_args(media, "no-such.bin", "2.1"))
    bad_args = await answer({"version": "3", "url": "x"})
    refused = final(controller, corrupt)
    assert refused is not None and not refused.ok and refused.stage == "failed"
    assert "sha256 mismatch" in refused.detail and refused.firmware == "sim-1.0.0"
    assert "rebooting" not in [a.stage for a in acks_of(controller, corrupt)]
    gone = final(controller, missing)
    assert gone is not None and not gone.ok and "HTTP 404" in gone.detail
    invalid = final(controller, bad_args)
    assert invalid is not None and not invalid.ok and "sha256" in invalid.detail
    assert node.firmware.version == "sim-1.0.0" and node.boot == 1

    # One update at a time: a second one while the first downloads is refused, not queued.
    media.hold = threading.Event()  # the download stays in progress until the test lets go
    slow = await controller.command("n1", "update_firmware", update_args(media, "slow.bin", "4.0"))
    await until(lambda: acks_of(controller, slow), what="the download to start")
    busy = await controller.command("n1", "update_firmware", update_args(media, "slow.bin", "5.0"))
    await until(lambda: final(controller, busy), what="the busy answer")
    assert "in progress" in final(controller, busy).detail  # type: ignore[union-attr]
    assert final(controller, slow) is None
    media.hold.set()
    await until(lambda: final(controller, slow), timeout=10, what="the slow update to finish")
    assert final(controller, slow).ok and node.firmware.version == "4.0"  # type: ignore[union-attr]
    await until(lambda: node.boot == 2 and node.connected.is_set(), what="the reboot")
