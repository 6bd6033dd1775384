"""The controller process: composes database, broker, gateway, timelines, ingestion and audio."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from sqlmodel import col, select

from audio import MediaStore
from controller.alerts import Alerts
from controller.broadcasts import Broadcasts
from controller.config import Settings
from controller.db import Database
from controller.embedded_broker import EmbeddedBroker
from controller.gateway import BrokerAddress, Gateway
from controller.ingest import ReportIngest
from controller.keys import load_or_create_signer
from controller.models import Node, utcnow
from controller.registry import Registry
from controller.security import LoginThrottle
from controller.speech import Speech
from controller.timelines import TimelineService
from protocol import Topics
from protocol.aio import cancel_and_wait
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class RadioService:
    """Everything long-lived in the controller; the API's lifespan starts and stops it."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.db_url)
        self.topics = Topics(settings.topic_prefix)
        self.signer = load_or_create_signer(settings.secrets_dir)
        self.registry = Registry(settings, self.db, self.topics, self.signer)
        self.store = MediaStore(settings.media_dir)
        self.speech = Speech(settings, self.db, self.store)
        self.ingest = ReportIngest(self.db, self.topics, self.clock)
        self.gateway = Gateway(
            self._broker_address(),
            self.topics,
            self.clock,
            settings.instance,
            on_message=self.ingest.handle,
            on_connect=self._on_connect,
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
        self.alerts = Alerts(
            self.db,
            self.registry,
            self.speech,
            self.gateway,
            self.signer,
            self.topics,
            self.clock,
            settings.base_url,
        )
        self.ingest.listeners.append(self._alert_change)
        self.login_throttle = LoginThrottle()
        self.broker: EmbeddedBroker | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
        await asyncio.to_thread(self.db.migrate)
        await asyncio.to_thread(self.registry.write_broker_files)
        if not self.settings.mqtt_url:
            passwd = self.settings.broker_dir / "passwd"
            acl = self.settings.broker_dir / "acl"
            self.broker = EmbeddedBroker(
                self.settings.mqtt_embedded_host, self.settings.mqtt_embedded_port, passwd, acl
            )
            await self.broker.start()
        await asyncio.to_thread(self.ingest.reload_nodes)
        for coro in (
            self.gateway.run(),
            self.ingest.run(),
            self.timelines.run_horizon(),
            self._sweep_offline(),
            self.ingest.watch_registry(self.nodes_changed),
            self._collect_media_garbage(),
            self.alerts.run_expiry(),
        ):
            self._tasks.append(asyncio.create_task(coro))
        if self.settings.prerender_alert_templates:
            self._tasks.append(asyncio.create_task(self.alerts.prerender_templates(self.timelines)))
        log.info("controller %s started: %s", self.settings.instance, self.settings.summary())

    async def stop(self) -> None:
        await self.gateway.close()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self.broker is not None:
            await self.broker.stop()
        self.db.dispose()

    async def nodes_changed(self) -> None:
        """After the registry changed: new broker files, known nodes, timelines."""
        await asyncio.to_thread(self.registry.write_broker_files)
        await asyncio.to_thread(self.ingest.reload_nodes)
        await self.timelines.refresh()

    async def _on_connect(self) -> None:
        await self.alerts.republish_active()
        await self.timelines.refresh(force=True)

    def _alert_change(self, kind: str, change: dict[str, Any]) -> None:
        if kind == "alert_receipt":
            self.alerts.notify(change)

    async def _collect_media_garbage(self) -> None:
        while True:
            await asyncio.sleep(3600)
            try:
                await asyncio.to_thread(self.speech.collect_garbage)
            except Exception:
                log.exception("media garbage collection failed")

    async def _sweep_offline(self) -> None:
        """A node silent for longer than the heartbeat timeout is offline, will or not."""
        while True:
            await asyncio.sleep(min(10.0, self.settings.offline_after_s / 3))
            try:
                await asyncio.to_thread(self._mark_silent_offline)
            except Exception:
                log.exception("offline sweep failed")

    def _mark_silent_offline(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.settings.offline_after_s)
        with self.db.session() as session:
            stale = session.exec(
                select(Node).where(
                    Node.status == "online",
                    col(Node.last_seen) < cutoff,
                    Node.retired == False,  # noqa: E712
                )
            ).all()
            for node in stale:
                node.status = "offline"
                session.add(node)
            session.commit()
        if stale:
            log.info(
                "%d node(s) silent past %.0f s: offline", len(stale), self.settings.offline_after_s
            )
