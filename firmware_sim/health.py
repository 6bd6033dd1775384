"""Simulated hardware readings, boot counter and heartbeat of a node; scenarios may set faults
(see `firmware_sim.scenario`): broken speaker or amplifier, battery, heat, a cut link, a hang.

A real node (single-node mode) reports what its machine measures instead: `NodeHealth.machine`
is then a `firmware_sim.health_machine.MachineHealth`, and none of the simulated readings below
reach the wire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import aiomqtt

from firmware_sim.clock_watch import ClockWatch
from firmware_sim.replay_journal import write_atomic
from protocol import Clock, NodeState, NodeStatus, Telemetry
from protocol.aio import raise_if_cancelling

if TYPE_CHECKING:
    from firmware_sim.health_machine import MachineHealth, Readings
    from firmware_sim.node import Node
    from firmware_sim.playback import Playback
    from firmware_sim.timeline import Timeline

log = logging.getLogger(__name__)

# However fast a scaled clock runs, heartbeats stay this far apart in real time.
MIN_HEARTBEAT_REAL_S = 1.0


@dataclass
class NodeHealth:
    """What the heartbeat reports. Set a field to simulate a fault (e.g. `speaker_ok = False`);
    set `jitter = False` to make readings exact for assertions."""

    volume: int = 70
    signal_dbm: int = -67
    temperature_c: float = 38.0
    power: Literal["mains", "battery"] = "mains"
    battery_pct: int | None = None
    supply_v: float = 230.0
    speaker_ok: bool = True
    amplifier_ok: bool = True
    storage_free_mb: int = 1800
    alert_volume: int | None = None  # set while an alert overrides the volume
    jitter: bool = True
    # Cleared: the node is off the network (it does not reconnect until set again).
    link: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()), repr=False)
    # The firmware hangs: the MQTT connection stays up but no heartbeat goes out, so only the
    # controller's heartbeat timeout notices (a "silent death").
    hung: bool = False
    # Set on a real node: every reading comes from the machine, unknown where it offers none.
    machine: MachineHealth | None = None
    # Where the operator's volume is kept across restarts (the node's card); None: nowhere.
    volume_file: Path | None = field(default=None, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def keep_volume_in(self, path: Path) -> None:
        """Keep the volume set by the operator in `path`, and take the one kept there now."""
        self.volume_file = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # torn by a power cut: the default, said so
            log.warning("unreadable %s (%s): volume %d", path, exc, self.volume)
            return
        level = data.get("volume") if isinstance(data, dict) else None
        if isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 100:
            self.volume = level
        else:
            log.warning("no volume 0-100 in %s: volume %d", path, self.volume)

    def set_volume(self, level: int) -> None:
        """The operator's volume from now on, kept for the next start when there is a card:
        written by a worker thread (its fsync must not hold the node's loop, nor a fleet's
        thousands of nodes at once), or at once without an event loop (a tool)."""
        self.volume = level
        if self.volume_file is None:
            return
        try:
            asyncio.get_running_loop().run_in_executor(None, self._keep_volume, level)
        except RuntimeError:
            self._keep_volume(level)

    def _keep_volume(self, level: int) -> None:
        assert self.volume_file is not None
        try:
            write_atomic(self.volume_file, json.dumps({"volume": level}).encode())
        except OSError as exc:  # it applies now all the same
            log.warning("cannot keep the volume in %s: %s", self.volume_file, exc)

    def telemetry(
        self,
        node_id: str,
        ts: int,
        uptime_s: int,
        now_playing: str | None,
        timeline_version: int,
        rejected_messages: int,
        controller_delay_ms: int | None = None,
        readings: Readings | None = None,
    ) -> Telemetry:
        volume = self.volume if self.alert_volume is None else self.alert_volume
        if readings is not None:
            return _measured(
                readings,
                node_id=node_id,
                ts=ts,
                uptime_s=max(0, uptime_s if readings.uptime_s is None else readings.uptime_s),
                volume=volume,
                now_playing=now_playing[:200] if now_playing else None,
                timeline_version=timeline_version,
                rejected_messages=rejected_messages,
                controller_delay_ms=controller_delay_ms,
            )
        signal, temp, supply = self.signal_dbm, self.temperature_c, self.supply_v
        if self.jitter:
            # Small noise so dashboards of a simulated fleet look like real ones.
            signal = max(-150, min(0, signal + self._rng.randint(-3, 3)))
            temp = round(temp + self._rng.uniform(-0.5, 0.5), 1)
            supply = (
                round(supply + self._rng.uniform(-4, 4), 1) if self.power == "mains" else supply
            )
        return Telemetry(
            node_id=node_id,
            ts=ts,
            uptime_s=max(0, uptime_s),
            volume=volume,
            signal_dbm=signal,
            temperature_c=max(-40.0, min(150.0, temp)),
            power=self.power,
            battery_pct=self.battery_pct,
            supply_v=max(0.0, min(400.0, supply)),
            speaker_ok=self.speaker_ok,
            amplifier_ok=self.amplifier_ok,
            storage_free_mb=self.storage_free_mb,
            now_playing=now_playing[:200] if now_playing else None,
            timeline_version=timeline_version,
            rejected_messages=rejected_messages,
            controller_delay_ms=controller_delay_ms,
        )


def _measured(r: Readings, **common: object) -> Telemetry:
    """The heartbeat of a real node: the machine's readings, None where it has none."""
    return Telemetry.model_validate(
        {
            **common,
            "signal_dbm": r.signal_dbm,
            "temperature_c": r.temperature_c,
            "power": r.power.power,
            "battery_pct": r.power.battery_pct,
            "supply_v": r.power.supply_v,
            "speaker_ok": r.speaker_ok,
            "amplifier_ok": r.amplifier_ok,
            "storage_free_mb": r.storage_free_mb,
            "memory_free_mb": r.memory_free_mb,
            "load_1m": r.load_1m,
            "network": r.network[:200] if r.network else None,
            "clock_synced": r.clock.synced,
            "clock_source": r.clock.source,
            # A clock a day off is reported as unknown offset (its sync state still tells).
            "clock_offset_ms": r.clock.offset_ms
            if r.clock.offset_ms is not None and abs(r.clock.offset_ms) <= 86_400_000
            else None,
        }
    )


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


def cut_link(node: Node) -> None:
    """Drop the node's connection without a goodbye, as a power cut or a dead 4G link would:
    the broker publishes the node's last will. It stays off until `restore_link`."""
    node.health.link.clear()
    client = node.client
    paho = getattr(client, "_client", None) if client is not None else None
    sock = paho.socket() if paho is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def restore_link(node: Node) -> None:
    node.health.link.set()


def next_boot(cache_dir: Path | None, previous: int) -> int:
    """The boot counter after one more start: persisted when the node has a cache directory."""
    if cache_dir is None:
        return previous + 1
    path = cache_dir / "boot"
    try:
        boot = max(int(path.read_text().strip()), previous) + 1
    except (OSError, ValueError):
        boot = previous + 1
    try:
        path.write_text(str(boot))
    except OSError as exc:
        log.warning("cannot persist boot counter in %s: %s", path, exc)
    return boot


def node_state(
    node_id: str, status: NodeStatus, ts: int, boot: int, firmware: str, areas: list[str]
) -> bytes:
    """The retained `state` payload (also the last will, with status `lost`)."""
    state = NodeState(
        node_id=node_id, status=status, ts=ts, boot=boot, firmware=firmware, areas=areas
    )
    return state.model_dump_json().encode()


class Heartbeat:
    """Telemetry every `interval_s` of node time while a session lasts: the readings (the
    simulator's or the machine's) and what the node is doing."""

    def __init__(
        self,
        node_id: str,
        topic: str,
        clock: Clock,
        interval_s: float,
        health: NodeHealth,
        playback: Playback,
        timeline: Timeline,
        clock_watch: ClockWatch,
        uptime_s: Callable[[], int],
        rejected_total: Callable[[], int],
    ) -> None:
        self.node_id = node_id
        self.topic = topic
        self.clock = clock
        self.interval_s = interval_s
        self.health = health
        self.playback = playback
        self.timeline = timeline
        self.clock_watch = clock_watch
        self.uptime_s = uptime_s
        self.rejected_total = rejected_total

    async def run(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.health.hung:
                await self.clock.sleep(int(self.interval_s * 1000))
                await asyncio.sleep(MIN_HEARTBEAT_REAL_S)
                continue
            machine = self.health.machine
            readings = await asyncio.to_thread(machine.read) if machine is not None else None
            raise_if_cancelling()
            playing = self.playback.now_playing
            telemetry = self.health.telemetry(
                self.node_id,
                self.clock.now_ms(),
                self.uptime_s(),
                self.playback.held_by or (playing.item_id if playing else None),
                self.timeline.version,
                self.rejected_total(),
                controller_delay_ms=self.clock_watch.delay_ms(),
                readings=readings,
            )
            await client.publish(self.topic, telemetry.model_dump_json(), qos=0)
            raise_if_cancelling()
            began = loop.time()
            await self.clock.sleep(int(self.interval_s * 1000))
            if (rest := MIN_HEARTBEAT_REAL_S - (loop.time() - began)) > 0:
                await asyncio.sleep(rest)
