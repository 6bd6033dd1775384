"""One loudspeaker node: MQTT session with reconnects, signed inputs, heartbeat and events.

`Node.__init__` is the node's composition root: every part is built here and handed exactly
the collaborators it uses (the clock, the outbox's `emit`, the media cache, the trust gate, the
player, a callback), so no part holds the whole node.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from firmware_sim import timeline_store
from firmware_sim.alerts import AlertDesk
from firmware_sim.clock_watch import ClockWatch
from firmware_sim.commands import Commands, Reboot
from firmware_sim.config import NodeConfig
from firmware_sim.download import Downloader
from firmware_sim.firmware import Firmware, Releases
from firmware_sim.health import Heartbeat, NodeHealth, next_boot, node_state
from firmware_sim.health_machine import MachineHealth
from firmware_sim.inbound import Inbound
from firmware_sim.media import MediaCache
from firmware_sim.media_token import MediaToken
from firmware_sim.outbox import EVENTS_PER_MESSAGE, Outbox, Reporter
from firmware_sim.playback import Playback, Played
from firmware_sim.player_choice import make_player
from firmware_sim.presence import ControllerPresence
from firmware_sim.quiet import QUIET
from firmware_sim.sounds import Sounds
from firmware_sim.stream_run import StreamRun
from firmware_sim.timeline import Timeline
from firmware_sim.trust import Gate, KeyAnnouncements, Rejections
from firmware_sim.trust_store import TrustStore
from protocol import Clock, NodeStatus, TimelineBody, Topics
from protocol.aio import LoopClient, cancel_and_wait, raise_if_cancelling
from protocol.messages import AlertBody

log = logging.getLogger(__name__)


class LinkLossIsAWarning(logging.Filter):
    """The MQTT client (paho, under aiomqtt's logger "mqtt") logs a connection that broke
    under it as an error: a cut 4G link, a broker restart. A node expects those and connects
    again, so they are warnings; every other line keeps its level."""

    # paho words a failed send "failed to receive" too (its packet writer's message).
    LOST = ("failed to receive on socket", "timeout on socket")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith(self.LOST):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("mqtt").addFilter(LinkLossIsAWarning())


class Node:
    """A simulated (or, on a Pi, real) loudspeaker node. `run()` until cancelled."""

    backoff_min_s = 0.5
    backoff_max_s = 30.0

    def __init__(
        self, config: NodeConfig, clock: Clock, http: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self.node_id = node_id = config.node_id
        self.clock = clock
        self.topics = topics = Topics(config.topic_prefix)
        self.connected = asyncio.Event()
        self.client: aiomqtt.Client | None = None
        self.connects = 0
        self._started = time.monotonic()
        self._background: set[asyncio.Task[object]] = set()
        self.reboot_requested = asyncio.Event()

        # What the node keeps on its card (a real node; a simulated one usually keeps nothing).
        self.cache_dir = Path(config.cache_dir) / node_id if config.cache_dir else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.boot = next_boot(self.cache_dir, 0)

        # Reports: events queued (on disk too) until the broker has them.
        self.outbox = Outbox(path=self.cache_dir / "outbox.jsonl" if self.cache_dir else None)
        self.last_report_at = 0.0  # wall-clock time the latest event was acknowledged
        self.emit = Reporter(node_id, clock, self.outbox)

        # Health readings: simulated, or the machine's own on a real node.
        self.health = NodeHealth()
        if self.cache_dir is not None:
            self.health.keep_volume_in(self.cache_dir / "volume.json")
        if config.health == "machine":
            self.health.machine = MachineHealth(
                cache_dir=self.cache_dir,
                power_command=config.power_command,
                speaker_check_command=config.speaker_check_command,
                amplifier_check_command=config.amplifier_check_command,
            )

        # Trust: the keys, the replay journal, and the gate every controller message passes.
        self.clock_watch = ClockWatch()  # this clock against the controller's
        self.rejections = Rejections(node_id, self.emit)
        self.rejected: collections.Counter[str] = self.rejections.counts
        self.reject = self.rejections.reject
        self.trust = TrustStore(config, self.cache_dir)
        self.verifier = self.trust.verifier
        gate = Gate(node_id, clock, self.trust, self.clock_watch, self.reject)

        # Downloads: one client (shared by a simulated fleet), the token for the controller.
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=30)
        token = MediaToken(
            self.http, config.media_token, config.media_token_url, node_id, config.password or ""
        )
        self.downloader = Downloader(self.http, token)
        self.media = MediaCache(self.downloader, self.emit, clock, self.cache_dir)

        # Sound: the player, what each item sounds like, the timeline and alerts that use it.
        self.player = make_player(config)
        self.sounds = Sounds(self.player, self.media, self.emit, token, self.health)
        self.playback = Playback(clock, self.emit, self.sounds)
        self.timeline = Timeline(node_id, clock, self.emit, self.media, self.playback)
        self.alerts = AlertDesk(
            node_id,
            clock,
            self.emit,
            self.media,
            self.playback,
            self.sounds,
            self.health,
            memory=self.cache_dir / "alerts.json" if self.cache_dir else None,
        )
        self.alerts_played = self.alerts.played  # the same list, appended to as alerts end

        # Commands and firmware.
        ack_topic = topics.cmd_ack(node_id)
        releases = None  # a real node installs updates as releases and restarts into them
        if config.install_dir:
            releases = Releases(
                Path(config.install_dir), config.restart_command, config.update_confirm_s
            )
        self.firmware = Firmware(
            node_id,
            clock,
            config.firmware,  # unless an update installed another (on the card, or a release)
            self.cache_dir,
            self.downloader,
            ack_topic,
            session=self._live_client,
            spawn=self.spawn,
            boot=lambda: self.boot,
            reboot=self.reboot_requested,
            releases=releases,
        )
        commands = Commands(
            node_id,
            clock,
            gate,
            self.reject,
            ack_topic,
            topics.timeline(node_id),
            self.firmware,
            self.health,
            self.playback,
            self.timeline,
            self.spawn,
        )

        # What arrives, and what goes out besides events.
        self.presence = ControllerPresence(node_id, self.clock_watch, self.reject)
        retained = [topics.timeline(node_id), *(topics.area_alert(a) for a in config.areas)]
        keys = KeyAnnouncements(node_id, gate, self.trust, self.emit, self.reject, retained)
        self.inbound = Inbound(
            node_id,
            topics,
            config.areas,
            clock,
            self.clock_watch,
            gate,
            self.reject,
            self.timeline,
            self._adopt,
            self._keep,
            self.media,
            self.alerts,
            self.presence,
            commands,
            keys,
        )
        self.heartbeat = Heartbeat(
            node_id,
            topics.telemetry(node_id),
            clock,
            config.heartbeat_s,
            self.health,
            self.playback,
            self.timeline,
            self.clock_watch,
            uptime_s=lambda: self.uptime_s,
            rejected_total=lambda: self.rejections.total,
        )

    # Observable state -------------------------------------------------------------------

    @property
    def played(self) -> collections.deque[Played]:
        return self.playback.played

    @property
    def streams(self) -> list[StreamRun]:
        """The node's recent stream runs: bytes and frames read, reconnects, fallbacks."""
        return self.sounds.streams

    @property
    def active_alert(self) -> AlertBody | None:
        return self.alerts.active

    @property
    def alerts_received(self) -> int:
        return self.inbound.alerts_received

    @property
    def controller_online(self) -> bool | None:
        return self.presence.online

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
        return self.rejections.total

    # Wiring ---------------------------------------------------------------------------------

    def state(self, status: NodeStatus) -> bytes:
        return node_state(
            self.node_id,
            status,
            self.clock.now_ms(),
            self.boot,
            self.firmware.version,
            self.config.areas,
        )

    def spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        """Run a side job (test tone) that lives as long as the node, not the session."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _live_client(self) -> aiomqtt.Client | None:
        """The broker connection if the node is connected now (for acks sent beside it)."""
        return self.client if self.connected.is_set() else None

    def _adopt(self, body: TimelineBody, payload: bytes | None = None) -> None:
        """Play a verified timeline of this node (fetching its media) and keep it on the card."""
        self.timeline.apply(body)
        self.media.prefetch(body.prefetch)
        if payload is not None:
            self._keep(payload)

    def _keep(self, payload: bytes) -> None:
        timeline_store.save(self.cache_dir, payload)

    # Connection ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected (reconnecting with back-off forever) until cancelled."""
        failures = 0
        # What to play even if the broker cannot be reached.
        kept = timeline_store.restore(
            self.cache_dir, self.node_id, self.verifier, self.clock.now_ms()
        )
        if kept is not None:
            self._adopt(kept)
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
        client = LoopClient(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=self.config.client_id or self.node_id,
            # Clean: the timeline is retained, stale commands are useless and events wait in
            # our own outbox, so a broker-side session would only cost broker memory.
            clean_session=True,
            keepalive=self.config.keepalive_s,
            timeout=10,
            will=aiomqtt.Will(state_topic, self.state(NodeStatus.lost), qos=1, retain=True),
            tls_context=broker.tls_context(),
        )
        async with client:
            self.client = client
            self.connects += 1
            try:
                await client.publish(state_topic, self.state(NodeStatus.online), qos=1, retain=True)
                self.presence.session_started()
                await self.inbound.subscribe(client)
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
            asyncio.create_task(self.heartbeat.run(client)),
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
            await self.inbound.handle(client, message)
            raise_if_cancelling()

    async def _send(self, client: aiomqtt.Client) -> None:
        topic = self.topics.events(self.node_id)
        while True:
            await self.outbox.next()
            await QUIET.wait()
            await self.presence.wait_to_report()
            # What came meanwhile goes with it, if the controller reads arrays.
            waiting = self.outbox.message(EVENTS_PER_MESSAGE if self.presence.event_arrays else 1)
            if not waiting.ids:
                continue
            await client.publish(topic, waiting.payload, qos=1)
            self.outbox.ack(*waiting.ids)
            self.last_report_at = time.time()  # for benches: when the latest report went out
            raise_if_cancelling()
