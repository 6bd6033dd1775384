"""Signed operator commands (volume, stop, test tone, resync, reboot, firmware update) and acks."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import aiomqtt
from pydantic import ValidationError

from firmware_sim.trust import summarise, verify
from protocol import CommandAck, CommandBody, CommandName, MediaRef, Priority, TimelineItem

if TYPE_CHECKING:
    from firmware_sim.node import Node

log = logging.getLogger(__name__)

_TONE_SHA = hashlib.sha256(b"test-tone").hexdigest()


class Reboot(Exception):
    """Raised out of a session to disconnect and come back with boot + 1."""


async def handle(node: Node, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
    env = verify(node, topic, payload, "cmd")
    if env is None:
        return
    name = str(env.body.get("command", "?"))[:40]
    try:
        body = CommandBody.model_validate(env.body)
    except ValidationError as exc:
        ok, detail = False, f"unknown or invalid command {name!r}: {summarise(exc)}"
    else:
        if body.node_id != node.node_id:
            node.reject("wrong_node", f"command for {body.node_id}", topic)
            ok, detail = False, f"command is for {body.node_id}"
        elif body.command == CommandName.update_firmware:
            # Runs beside the session (a download must not hold up timelines or alerts) and
            # acks its progress and result itself.
            answer = node.firmware.start(env.id, body.args)
            if answer is None:
                log.info("%s: firmware update %s started", node.node_id, env.id)
                return
            ok, detail = answer
        else:
            ok, detail = await execute(node, client, body.command, body.args)
    log.info("%s: command %s -> ok=%s %s", node.node_id, name, ok, detail)
    ack = CommandAck(
        node_id=node.node_id,
        cmd_id=env.id,
        ts=node.clock.now_ms(),
        ok=ok,
        detail=detail[:500],
        firmware=node.firmware.version,
    )
    await client.publish(node.topics.cmd_ack(node.node_id), ack.model_dump_json(), qos=1)
    if ok and name == CommandName.reboot:
        raise Reboot


async def execute(
    node: Node, client: aiomqtt.Client, command: CommandName, args: dict[str, Any]
) -> tuple[bool, str]:
    if command == CommandName.volume:
        level = args.get("level")
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
            return False, "args.level must be an integer 0-100"
        node.health.volume = level
        return True, f"volume {level}"
    if command == CommandName.stop:
        stopped = node.playback.stop("stop command")
        return True, f"stopped {stopped.item_id}" if stopped else "nothing playing"
    if command == CommandName.test_tone:
        return test_tone(node, args)
    if command == CommandName.resync:
        # Re-subscribing makes the broker deliver the retained timeline again.
        timeline = node.topics.timeline(node.node_id)
        await client.unsubscribe(timeline)
        await client.subscribe(timeline, qos=1)
        return True, f"resubscribed; timeline v{node.timeline.version}"
    if command == CommandName.reboot:
        return True, "rebooting"
    return False, f"unsupported command {command}"


def test_tone(node: Node, args: dict[str, Any]) -> tuple[bool, str]:
    if node.playback.held_by is not None:
        return False, f"busy playing {node.playback.held_by}"
    busy = node.playback.now_playing
    if busy is not None:
        return False, f"busy playing {busy.item_id}"
    duration = args.get("duration_ms", 3000)
    if not isinstance(duration, int) or isinstance(duration, bool):
        return False, "args.duration_ms must be an integer"
    duration = max(100, min(duration, 30_000))
    now = node.clock.now_ms()
    tone = TimelineItem(
        item_id="test_tone",
        broadcast_id="test_tone",
        start=now,
        duration_ms=duration,
        priority=Priority.normal,
        media=MediaRef(url="", sha256=_TONE_SHA, size=0),
    )
    node.spawn(node.playback.play(tone, None, report=False), "test-tone")
    return True, f"1 kHz tone for {duration} ms"
