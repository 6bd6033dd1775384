"""Device health of the fleet: presence, telemetry history, alarms and their notification, run
as background tasks of the controller; its changes (node states, alarms) told as events."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from controller.core.config import Settings
from controller.core.db import Database
from controller.core.events import (
    AlarmChanged,
    Changes,
    DeliveryChanged,
    Event,
    NodeStatusChanged,
)
from controller.core.periodic import Periodic
from controller.health.alarm_rules import AlarmRules, LatestFirmware, firmware_source
from controller.health.alarms import AlarmBook
from controller.health.presence import Presence
from controller.health.telemetry import TelemetryStore
from controller.health.webhook import Webhook
from controller.mqtt.ingest_guard import FloodGate, QuietLog, implausible
from protocol.clock import Clock

log = logging.getLogger(__name__)


class DeviceHealth:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        latest_firmware: LatestFirmware | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.presence = Presence(settings, clock)
        self.telemetry = TelemetryStore(settings)
        self.alarms = AlarmBook(clock)
        self.rules = AlarmRules(
            settings,
            self.alarms,
            self.presence,
            self.telemetry,
            latest_firmware if latest_firmware is not None else firmware_source(),
        )
        self.webhook = Webhook(settings, db, self.alarms)
        self.gate = FloodGate(settings.ingest_node_rate, settings.ingest_node_burst)
        self.quiet = QuietLog(log)
        self.stats: Counter[str] = Counter()
        # Where health tells what it judged (offline by silence, alarms); the service's events.
        self.changes = changes if changes is not None else Changes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.alarms.listeners.append(self._on_alarm)

    # --- ingestion hooks (the gateway's task, then the writer thread) ---------------------

    def screen(self, node_id: str, kind: str, report: Any) -> str | None:
        """Why a report is refused before it is queued (counted by the caller), or None."""
        if kind in ("telemetry", "state") and not self.gate.admit(f"{node_id}/{kind}"):
            self.quiet.warning(
                f"flood:{node_id}", "node %s floods the broker; excess dropped", node_id
            )
            return "flood"
        problem = implausible(report)
        if problem is not None:
            self.quiet.warning(f"implausible:{node_id}", "node %s reported %s", node_id, problem)
            return "implausible"
        return None

    def on_change(self, _event: NodeStatusChanged | DeliveryChanged) -> None:
        """Ingestion's committed node states and deliveries (on the event loop): judge the
        alarms now rather than at the next round."""
        self._wake.set()

    # --- live changes ----------------------------------------------------------------------

    def _on_alarm(self, change: dict[str, Any]) -> None:
        """From whichever thread committed the alarm."""
        self.webhook.offer(change)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.publish, AlarmChanged.from_snapshot(change))

    def publish(self, event: Event) -> None:
        self.changes.publish(event)

    # --- background work -------------------------------------------------------------------

    async def load(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.webhook._loop = self._loop
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        with self.db.session() as session:
            self.presence.load(session)
            since = self.presence.now() - timedelta(seconds=self.settings.offline_after_s)
            self.telemetry.load_latest(session, since)

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        return [job() for job in self.task_factories()]

    def task_factories(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """The periodic jobs, as callables, so a new leader can start them afresh."""
        jobs = [self._sweep, self._judge, self._rollup]
        if self.settings.webhook_url:
            jobs += [self.webhook.run, self.webhook.run_reminders]
        return jobs

    async def _sweep(self) -> None:
        """The heartbeat timeout, checked a few times per timeout (moved from the service)."""
        interval = min(10.0, self.settings.offline_after_s / 3)
        await Periodic(
            "offline sweep", interval, self.sweep_once, jitter=0, sleep=self._sleep
        ).run()

    async def sweep_once(self) -> None:
        for change in await asyncio.to_thread(self._sweep_once):
            self.publish(NodeStatusChanged.from_presence(change))
            self._wake.set()

    def _sweep_once(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return self.presence.sweep(session)

    async def _judge(self) -> None:
        while True:
            try:
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self._real(self.settings.alarm_check_s)
                )
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await asyncio.to_thread(self.evaluate)
            except Exception:
                log.exception("alarm evaluation failed")
            await asyncio.sleep(0.2)  # coalesce bursts of changes into one pass

    def evaluate(self) -> tuple[int, int]:
        with self.db.session() as session:
            result = self.rules.evaluate(session)
        self.stats["evaluations"] += 1
        return result

    async def _rollup(self) -> None:
        while True:
            try:
                hours = await asyncio.to_thread(self._rollup_once)
                if hours:
                    log.info("telemetry: %d hour(s) summarised", hours)
            except Exception:
                log.exception("telemetry rollup failed")
            await self._sleep(self.settings.telemetry_rollup_s)

    def _rollup_once(self) -> int:
        with self.db.session() as session:
            return self.telemetry.rollup(session, self.presence.now())

    def _real(self, clock_s: float) -> float:
        """Seconds of the controller's clock in real seconds (a scaled clock runs faster)."""
        return clock_s / float(getattr(self.clock, "speed", 1.0))

    async def _sleep(self, clock_s: float) -> None:
        await self.clock.sleep(int(clock_s * 1000))
