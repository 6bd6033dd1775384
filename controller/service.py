"""The controller process: composes database, broker, gateway, timelines, ingestion and audio."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote, urlparse

from audio import MediaStore
from controller.alerts.alerts import Alerts, record_alert_events
from controller.alerts.cap_follow import WarningFeeds
from controller.auth.key_rotation import KeyRollover
from controller.auth.keys import load_or_create_signer
from controller.auth.security import LoginThrottle
from controller.bulletins.bulletins import BulletinDesk
from controller.bulletins.feeds import FeedFollower
from controller.commands.commands import Commands
from controller.commands.firmware import FirmwareCatalogue
from controller.core.config import Settings
from controller.core.db import Database
from controller.core.events import (
    AlertReceiptStored,
    Changes,
    CommandAckHeard,
    DeliveryChanged,
    NodeStatusChanged,
)
from controller.core.leadership import Leadership
from controller.core.periodic import Periodic
from controller.core.private_files import secure_data_dir
from controller.core.supervisor import Supervisor
from controller.fleet.registry import Registry
from controller.health.device_health import DeviceHealth
from controller.health.stream_alarms import StreamAlarms
from controller.live.live import LiveBroadcasts
from controller.live.relays import Relays
from controller.metrics import Metrics
from controller.mqtt.broker_process import BrokerProcess
from controller.mqtt.gateway import BrokerAddress, Gateway
from controller.mqtt.ingest import ReportIngest
from controller.programme.broadcasts import Broadcasts
from controller.programme.speech import Speech
from controller.programme.timelines import TimelineService
from protocol import Topics
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)
CAP_FEED_TICK_S = 5.0


class RadioService:
    """Everything long-lived in the controller; the API's lifespan starts and stops it."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        secure_data_dir(settings.data_dir)
        self.db = Database(settings.db_url)
        self.topics = Topics(settings.topic_prefix)
        self.signer = load_or_create_signer(settings.secrets_dir)
        self.registry = Registry(settings, self.db, self.topics, self.signer)
        self.store = MediaStore(settings.media_dir)
        self.speech = Speech(settings, self.db, self.store)
        self.leadership = Leadership(self.db, settings.instance, settings.leader_retry_s)
        # The controller's events: ingestion's stored reports, health's judgements, alerts'
        # changes; heard by the domains above (subscribed below, as composed) and live views.
        self.changes = Changes()
        self.health = DeviceHealth(settings, self.db, self.clock, changes=self.changes)
        self.alarms = self.health.alarms  # raise_alarm / clear_alarm for other modules
        self.ingest = ReportIngest(
            self.db, self.topics, self.clock, health=self.health, changes=self.changes
        )
        self.changes.subscribe((NodeStatusChanged, DeliveryChanged), self.health.on_change)
        self.gateway = Gateway(
            self._broker_address(),
            self.topics,
            self.clock,
            settings.instance,
            shared_group=settings.mqtt_shared_group,
            event_arrays=settings.mqtt_event_arrays,
            on_message=self.ingest.handle,
            on_connect=self._on_connect,
        )
        self.key_rollover = KeyRollover(
            self.signer, self.gateway, self.topics, self.clock, self._on_connect
        )
        self.timelines = TimelineService(
            settings, self.db, self.registry, self.topics, self.signer, self.clock, self.gateway
        )
        self.broadcasts = Broadcasts(
            self.db,
            self.registry,
            self.timelines,
            self.speech,
            self.clock,
            settings.max_text_chars,
        )
        self.bulletins = BulletinDesk(self.broadcasts, self.registry, self.clock)
        self.feeds = FeedFollower(
            self.bulletins,
            settings.stations,
            self.clock,
            self.store.root,
            settings.bulletin_feed_max_kb * 1024,
            int(settings.upload_max_mb * 1024 * 1024),
        )
        self.alerts = Alerts(
            self.db,
            self.registry,
            self.speech,
            self.gateway,
            self.signer,
            self.topics,
            self.clock,
            settings.base_url,
            self.changes,
        )
        self.warning_feeds = WarningFeeds(
            self.db, self.alerts, settings.cap_feed_hosts, settings.cap_feed_max_bytes
        )
        # Every few seconds, the feeds whose own interval has passed (tests call run_once()).
        self.cap_feed_job = Periodic(
            "CAP feeds", CAP_FEED_TICK_S, self.warning_feeds.poll_due, at_start=True
        )
        self.ingest.event_writers["alert_"] = record_alert_events
        self.ingest.event_hearers["alert_"] = self.alerts.heard
        self.changes.subscribe(AlertReceiptStored, self.alerts.on_receipt)
        self.changes.subscribe(
            NodeStatusChanged, lambda c: self.alerts.board.node_status(c.node_id, c.status)
        )
        self.firmware = FirmwareCatalogue(settings, self.db)
        self.commands = Commands(
            settings,
            self.db,
            self.registry,
            self.firmware,
            self.gateway,
            self.signer,
            self.topics,
            self.clock,
        )
        self.changes.subscribe(CommandAckHeard, self.commands.on_report)
        self.relays = Relays(settings.stream_bitrate_kbps, settings.stations)
        self.live = LiveBroadcasts(
            settings, self.db, self.registry, self.timelines, self.speech, self.clock
        )
        self.stream_alarms = StreamAlarms(self.db, self.alarms, self.clock)
        self.metrics = Metrics(self)
        self.login_throttle = LoginThrottle()
        self.broker: BrokerProcess | None = None
        self.supervisor = Supervisor()

    def _broker_address(self) -> BrokerAddress:
        if self.settings.mqtt_url:
            u = urlparse(self.settings.mqtt_url)
            return BrokerAddress(
                host=u.hostname or "127.0.0.1",
                port=u.port or (8883 if u.scheme == "mqtts" else 1883),
                username=unquote(u.username) if u.username else None,
                password=unquote(u.password) if u.password else None,
                tls=u.scheme == "mqtts",
                ca_file=self.settings.mqtt_ca_file,
            )
        login = self.registry.controller_login()
        return BrokerAddress(
            self.settings.mqtt_embedded_host,
            self.settings.mqtt_embedded_port,
            login.username,
            login.password,
        )

    async def start(self) -> None:
        # Migrating is `radio db upgrade`'s job, run before: instances starting together on
        # one empty database must not race to create it.
        await asyncio.to_thread(self.db.check_current)
        await asyncio.to_thread(self.registry.write_broker_files)
        if not self.settings.mqtt_url:
            passwd = self.settings.broker_dir / "passwd"
            acl = self.settings.broker_dir / "acl"
            self.broker = BrokerProcess(
                self.settings.mqtt_embedded_host,
                self.settings.mqtt_embedded_port,
                passwd,
                acl,
                json_logs_as=self.settings.instance if self.settings.log_format == "json" else None,
            )
            await self.broker.start()
        try:
            await asyncio.to_thread(self.ingest.reload_nodes)
            await self.health.load()
        except BaseException:
            if self.broker is not None:  # not left running for a controller that never ran
                await self.broker.stop()
            raise
        tasks: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
            *((("embedded-broker", self.broker.keep),) if self.broker is not None else ()),
            ("leadership", self.leadership.run),
            ("gateway", self.gateway.run),
            ("ingest", self.ingest.run),
            ("registry-watch", lambda: self.ingest.watch_registry(self.nodes_changed)),
            ("command-acks", self.commands.run),
            ("live-watch", self.live.run_watch),
            ("relay-idle", self.relays.run_idle),
            # Every instance keeps its own board of the alerts its users watch.
            ("alert-board", self.alerts.run_board),
        ]
        for name, work in tasks:
            self.supervisor.start(name, work)
        # Work that must happen once however many instances share the database: the leader's.
        once: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
            ("horizon", self.timelines.run_horizon),
            ("media-gc", self._collect_media_garbage),
            ("alert-expiry", self.alerts.run_expiry),
            ("cap-feeds", self.cap_feed_job.run),
            ("key-rollover", self.key_rollover.run),
            ("command-timeouts", self.commands.run_timeouts),
            ("stream-alarms", self.stream_alarms.run),
            ("bulletin-feeds", self._follow_feeds),
            *((f"health-{i}", job) for i, job in enumerate(self.health.task_factories())),
        ]
        for name, work in once:
            self.supervisor.start(name, _while_leader(self.leadership, work, name))
        if self.settings.prerender_alert_templates:
            self.supervisor.start(
                "alert-templates",
                lambda: self.alerts.prerender_templates(self.timelines),
                restart=False,
            )
        log.info("controller %s started: %s", self.settings.instance, self.settings.summary())

    async def stop(self) -> None:
        if self.broker is not None:
            self.broker.stopping()  # it may be told to stop (a SIGTERM to every process) first
        await self.live.close()  # nodes hear the end while the broker is still there
        await self.relays.close()
        await self.gateway.close()
        await self.supervisor.stop()
        if self.broker is not None:
            await self.broker.stop()
        self.db.dispose()

    async def nodes_changed(self) -> None:
        """After the registry changed: new broker files, known nodes, timelines."""
        await asyncio.to_thread(self.registry.write_broker_files)
        await asyncio.to_thread(self.ingest.reload_nodes)
        await self.timelines.refresh()

    async def _on_connect(self) -> None:
        # The key announcement first: what follows may be signed by a key it introduces.
        await self.key_rollover.publish()
        await self.alerts.republish_active()
        await self.timelines.refresh(force=True)

    async def _follow_feeds(self) -> None:
        interval = self.settings.bulletin_feed_poll_s
        await Periodic("bulletin feeds", interval, self.feeds.poll_all).run()

    async def _collect_media_garbage(self) -> None:
        async def once() -> None:
            await asyncio.to_thread(self.speech.collect_garbage)

        await Periodic("media garbage collection", 3600, once).run()


def _while_leader(
    leadership: Leadership, work: Callable[[], Coroutine[Any, Any, None]], name: str
) -> Callable[[], Coroutine[Any, Any, None]]:
    def run() -> Coroutine[Any, Any, None]:
        return leadership.while_leader(work, name)

    return run
