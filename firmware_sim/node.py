"""One loudspeaker node: MQTT session with reconnects, signed inputs, heartbeat and events."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from firmware_sim import inbound, timeline_store
from firmware_sim.alerts import AlertDesk
from firmware_sim.clock_watch import ClockWatch
from firmware_sim.commands import Reboot
from firmware_sim.config import NodeConfig
from firmware_sim.firmware import Firmware
from firmware_sim.health import NodeHealth, heartbeat, next_boot, node_state
from firmware_sim.health_machine import MachineHealth
from firmware_sim.media import MediaCache
from firmware_sim.media_token import MediaToken
from firmware_sim.outbox import Outbox
from firmware_sim.playback import Playback, Played
from firmware_sim.player_choice import make_player
from firmware_sim.quiet import QUIET
from firmware_sim.sounds import Sounds
from firmware_sim.stream_run import StreamRun
from firmware_sim.timeline import Timeline
from firmware_sim.trust import Rejections
from firmware_sim.trust_store import TrustStore
from protocol import Clock, EventType, NodeEvent, NodeStatus, Topics
from protocol.aio import cancel_and_wait, raise_if_cancelling
from protocol.messages import AlertBody

log = logging.getLogger(__name__)

KEEPALIVE_S = 30


class Node:
    """A simulated (or, on a Pi, real) loudspeaker node. `run()` until cancelled."""

    backoff_min_s = 0.5
    backoff_max_s = 30.0

    def __init__(
        self, config: NodeConfig, clock: Clock, http: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self.node_id = config.node_id
        self.clock = clock
        self.topics = Topics(config.topic_prefix)
        self.health = NodeHealth()
        self.clock_watch = ClockWatch()  # this clock against the controller's
        self.rejections = Rejections()
        self.rejected: collections.Counter[str] = self.rejections.counts
        self.connected = asyncio.Event()
        self.controller_online: bool | None = None
        # Reports wait while the controller is away: a broker drops what no one subscribes to.
        # Only once a controller has been heard, so a broker without one still gets reports.
        self.controller_up = asyncio.Event()
        self.controller_heard = False
        self.alerts_received = 0
        self.cache_dir = Path(config.cache_dir) / config.node_id if config.cache_dir else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        if config.health == "machine":
            self.health.machine = MachineHealth(
                cache_dir=self.cache_dir,
                power_command=config.power_command,
                speaker_check_command=config.speaker_check_command,
                amplifier_check_command=config.amplifier_check_command,
            )
        self.trust = TrustStore(config, self.cache_dir)
        self.verifier = self.trust.verifier
        self.boot = next_boot(self.cache_dir, 0)
        self.outbox = Outbox(path=self.cache_dir / "outbox.jsonl" if self.cache_dir else None)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=30)
        token = MediaToken(
            self.http,
            config.media_token,
            config.media_token_url,
            config.node_id,
            config.password or "",
        )
        self.media = MediaCache(self.http, self.emit, clock, token, self.cache_dir)
        self.player = make_player(config)
        self.sounds = Sounds(self.player, self.media, self.emit, config.media_token, self.health)
        self.playback = Playback(clock, self.emit, self.sounds)
        self.timeline = Timeline(self.node_id, clock, self.emit, self.media, self.playback)
        self.alerts = AlertDesk(
            self.node_id,
            clock,
            self.emit,
            self.media,
            self.playback,
            self.health,
            memory=self.cache_dir / "alerts.json" if self.cache_dir else None,
        )
        self.alerts_played = self.alerts.played  # the same list, appended to as alerts end
        self.reboot_requested = asyncio.Event()
        self.firmware = Firmware(self)  # may replace config.firmware with the installed version
        self.client: aiomqtt.Client | None = None
        self.connects = 0
        self._started = time.monotonic()
        self._background: set[asyncio.Task[object]] = set()

    # Observable state -------------------------------------------------------------------

    @property
    def played(self) -> list[Played]:
        return self.playback.played

    @property
    def streams(self) -> list[StreamRun]:
        """The node's recent stream runs: bytes and frames read, reconnects, fallbacks."""
        return self.sounds.streams

    @property
    def active_alert(self) -> AlertBody | None:
        return self.alerts.active

    @property
    def timeline_version(self) -> int:
        return self.timeline.version

    @property
    def outbox_size(self) -> int:
        return len(self.outbox)

    @property
    def uptime_s(self) -> int:
        return int(time.monotonic() - self._started)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    # Reporting ----------------------------------------------------------------------------

    def emit(
        self,
        type: EventType,
        *,
        item_id: str | None = None,
        broadcast_id: str | None = None,
        timeline_version: int | None = None,
        sha256: str | None = None,
        detail: str = "",
    ) -> None:
        try:
            event = NodeEvent(
                id=uuid.uuid4().hex,
                node_id=self.node_id,
                ts=self.clock.now_ms(),
                type=type,
                item_id=item_id,
                broadcast_id=broadcast_id,
                timeline_version=timeline_version,
                sha256=sha256,
                detail=detail[:500],
            )
        except ValueError as exc:  # a bug of ours must not stop playback
            log.error("%s: cannot build %s event: %s", self.node_id, type, exc)
            return
        self.outbox.push(event)

    def reject(self, reason: str, detail: str, topic: str) -> None:
        """Count and log a dropped message; report it unless reports are being flooded."""
        leaf = topic.rsplit("/", 1)[-1]
        log.warning("%s: rejected message on %s: %s %s", self.node_id, leaf, reason, detail)
        if self.rejections.record(reason):
            self.emit(EventType.message_rejected, detail=f"{reason} on {leaf}: {detail}"[:500])

    def state(self, status: NodeStatus) -> bytes:
        return node_state(self, status)

    def spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        """Run a side job (test tone) that lives as long as the node, not the session."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Connection ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected (reconnecting with back-off forever) until cancelled."""
        failures = 0
        timeline_store.restore(self)  # what to play even if the broker cannot be reached
        try:
            while True:
                raise_if_cancelling()
                await self.health.link.wait()  # a fault scenario may hold the node off the net
                before = self.connects
                try:
                    await self._session()
                except Reboot:
                    log.info("%s: rebooting", self.node_id)
                    await asyncio.sleep(1.0)
                    self.boot = next_boot(self.cache_dir, self.boot)
                    failures = 0
                    continue
                except aiomqtt.MqttError as exc:
                    failures = 0 if self.connects > before else failures
                    delay = min(self.backoff_min_s * 2**failures, self.backoff_max_s)
                    delay *= random.uniform(0.5, 1.0)  # a village must not stampede
                    failures += 1
                    log.info(
                        "%s: broker connection lost (%s); retry in %.1f s", self.node_id, exc, delay
                    )
                    await asyncio.sleep(delay)
        finally:
            self.timeline.close()
            self.alerts.close()
            self.media.close()
            self.trust.close()
            await self.sounds.aclose()
            for task in list(self._background):
                task.cancel()
            if self._own_http:
                await self.http.aclose()

    async def _session(self) -> None:
        broker = self.config.broker()
        state_topic = self.topics.node_state(self.node_id)
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=self.config.client_id or self.node_id,
            # Clean: the timeline is retained, stale commands are useless and events wait in
            # our own outbox, so a broker-side session would only cost broker memory.
            clean_session=True,
            keepalive=KEEPALIVE_S,
            timeout=10,
            will=aiomqtt.Will(state_topic, self.state(NodeStatus.lost), qos=1, retain=True),
            tls_context=broker.tls_context(),
        )
        async with client:
            self.client = client
            self.connects += 1
            try:
                await client.publish(state_topic, self.state(NodeStatus.online), qos=1, retain=True)
                self.controller_up.clear()  # until the (retained) controller state says online
                await inbound.subscribe(self, client)
                await self.firmware.on_connect(client)
                raise_if_cancelling()
                self.connected.set()
                log.info("%s: connected (boot %d)", self.node_id, self.boot)
                await self._serve(client)
            except (asyncio.CancelledError, Reboot):
                if self.connected.is_set():
                    await self._say_offline(client, state_topic)
                raise
            finally:
                self.connected.clear()
                self.client = None

    async def _say_offline(self, client: aiomqtt.Client, topic: str) -> None:
        try:
            await asyncio.wait_for(
                client.publish(topic, self.state(NodeStatus.offline), qos=1, retain=True), 2.0
            )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.info("%s: could not say offline: %s", self.node_id, exc)

    async def _serve(self, client: aiomqtt.Client) -> None:
        tasks = [
            asyncio.create_task(self._receive(client)),
            asyncio.create_task(self._send(client)),
            asyncio.create_task(heartbeat(self, client)),
            asyncio.create_task(self._reboot_when_asked()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(tasks)
        # When the connection drops, more than one of them fails at once: take every failure
        # (one not taken is logged as "never retrieved"), and raise the first that ended it.
        failures = [t.exception() for t in tasks if t.done() and not t.cancelled()]
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        for exc in failures:
            if exc is not None:
                raise exc
        raise aiomqtt.MqttError("session ended")

    async def _reboot_when_asked(self) -> None:
        """A job beside the session (a firmware install) asks for a reboot through this event."""
        await self.reboot_requested.wait()
        self.reboot_requested.clear()
        raise Reboot

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            QUIET.touch()
            await inbound.handle(self, client, message)
            raise_if_cancelling()

    async def _send(self, client: aiomqtt.Client) -> None:
        topic = self.topics.events(self.node_id)
        while True:
            event = await self.outbox.next()
            await QUIET.wait()
            if self.controller_heard:
                await self.controller_up.wait()
            await client.publish(topic, event.model_dump_json(), qos=1)
            self.outbox.ack(event.id)
            raise_if_cancelling()
