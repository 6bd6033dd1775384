"""Signed operator commands (volume, stop, test tone, resync, reboot, firmware update) and acks."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiomqtt
from pydantic import ValidationError

from firmware_sim.firmware import Firmware
from firmware_sim.health import NodeHealth
from firmware_sim.playback import Playback
from firmware_sim.timeline import Timeline
from firmware_sim.trust import Gate, Reject, summarise
from protocol import (
    Clock,
    CommandAck,
    CommandBody,
    CommandName,
    MediaRef,
    Priority,
    TimelineItem,
)

log = logging.getLogger(__name__)

_TONE_SHA = hashlib.sha256(b"test-tone").hexdigest()

Spawn = Callable[[Coroutine[Any, Any, object], str], None]
"""Run a side job that lives as long as the node, not the session: (coroutine, name)."""


class Reboot(Exception):
    """Raised out of a session to disconnect and come back with boot + 1."""


class Commands:
    """Runs the commands addressed to this node and acks each once."""

    def __init__(
        self,
        node_id: str,
        clock: Clock,
        gate: Gate,
        reject: Reject,
        ack_topic: str,
        timeline_topic: str,
        firmware: Firmware,
        health: NodeHealth,
        playback: Playback,
        timeline: Timeline,
        spawn: Spawn,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.gate = gate
        self.reject = reject
        self.ack_topic = ack_topic
        self.timeline_topic = timeline_topic
        self.firmware = firmware
        self.health = health
        self.playback = playback
        self.timeline = timeline
        self.spawn = spawn

    async def handle(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        env = self.gate.verify(topic, payload, "cmd")
        if env is None:
            return
        name = str(env.body.get("command", "?"))[:40]
        try:
            body = CommandBody.model_validate(env.body)
        except ValidationError as exc:
            ok, detail = False, f"unknown or invalid command {name!r}: {summarise(exc)}"
        else:
            if body.node_id != self.node_id:
                self.reject("wrong_node", f"command for {body.node_id}", topic)
                ok, detail = False, f"command is for {body.node_id}"
            elif body.command == CommandName.update_firmware:
                # Runs beside the session (a download must not hold up timelines or alerts) and
                # acks its progress and result itself.
                answer = self.firmware.start(env.id, body.args)
                if answer is None:
                    log.info("%s: firmware update %s started", self.node_id, env.id)
                    return
                ok, detail = answer
            else:
                ok, detail = await self.execute(client, body.command, body.args)
        log.info("%s: command %s -> ok=%s %s", self.node_id, name, ok, detail)
        ack = CommandAck(
            node_id=self.node_id,
            cmd_id=env.id,
            ts=self.clock.now_ms(),
            ok=ok,
            detail=detail[:500],
            firmware=self.firmware.version,
        )
        await client.publish(self.ack_topic, ack.model_dump_json(), qos=1)
        if ok and name == CommandName.reboot:
            raise Reboot

    async def execute(
        self, client: aiomqtt.Client, command: CommandName, args: dict[str, Any]
    ) -> tuple[bool, str]:
        if command == CommandName.volume:
            level = args.get("level")
            if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
                return False, "args.level must be an integer 0-100"
            self.health.set_volume(level)
            return True, f"volume {level}"
        if command == CommandName.stop:
            stopped = self.playback.stop("stop command")
            return True, f"stopped {stopped.item_id}" if stopped else "nothing playing"
        if command == CommandName.test_tone:
            return self.test_tone(args)
        if command == CommandName.resync:
            # Re-subscribing makes the broker deliver the retained timeline again.
            await client.unsubscribe(self.timeline_topic)
            await client.subscribe(self.timeline_topic, qos=1)
            return True, f"resubscribed; timeline v{self.timeline.version}"
        if command == CommandName.reboot:
            return True, "rebooting"
        return False, f"unsupported command {command}"

    def test_tone(self, args: dict[str, Any]) -> tuple[bool, str]:
        if self.playback.held_by is not None:
            return False, f"busy playing {self.playback.held_by}"
        busy = self.playback.now_playing
        if busy is not None:
            return False, f"busy playing {busy.item_id}"
        duration = args.get("duration_ms", 3000)
        if not isinstance(duration, int) or isinstance(duration, bool):
            return False, "args.duration_ms must be an integer"
        duration = max(100, min(duration, 30_000))
        now = self.clock.now_ms()
        tone = TimelineItem(
            item_id="test_tone",
            broadcast_id="test_tone",
            start=now,
            duration_ms=duration,
            priority=Priority.normal,
            media=MediaRef(url="", sha256=_TONE_SHA, size=0),
        )
        self.spawn(self.playback.play(tone, None, report=False), "test-tone")
        return True, f"1 kHz tone for {duration} ms"
