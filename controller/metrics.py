"""Prometheus metrics of one controller, in a registry of its own (several controllers in one
process, as in tests, never share counters). Fleet numbers are read at scrape time from the
same functions the API uses, so `/metrics` and the API agree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlmodel import col, func, select

from controller.core.events import DeliveryChanged
from controller.core.models import Alarm, BulletinFeed, Delivery, Schedule
from controller.health.alarms import AlarmKind
from controller.health.fleet_view import STATES, fleet_counts
from protocol import gc_pauses

if TYPE_CHECKING:
    from controller.service import RadioService

RENDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    def __init__(self, service: RadioService) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.render_seconds = Histogram(
            "radio_render_seconds",
            "Time to render an announcement to speech (normalise, synthesise, master, store)",
            buckets=RENDER_BUCKETS,
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "radio_delivery_latency_seconds",
            "Reported start of an item minus its scheduled start (early starts count as 0)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(FleetCollector(service))
        self.registry.register(GcCollector(gc_pauses.install()))
        service.speech.on_render = self.render_seconds.observe
        service.changes.subscribe(DeliveryChanged, self._on_delivery)

    def _on_delivery(self, delivery: DeliveryChanged) -> None:
        if delivery.latency_ms is not None:
            self.delivery_latency.observe(max(0.0, delivery.latency_ms / 1000))

    def exposition(self) -> bytes:
        """The text format; reads the database, so call it off the event loop."""
        return generate_latest(self.registry)


class GcCollector(Collector):
    def __init__(self, pauses: gc_pauses.GcPauses) -> None:
        self.pauses = pauses

    def collect(self) -> Iterator[Metric]:
        pauses = HistogramMetricFamily(
            "radio_gc_pause_seconds",
            "Garbage collections by generation and how long each held the interpreter "
            "(every thread waits meanwhile)",
            labels=["generation"],
        )
        for g in gc_pauses.GENERATIONS:
            pauses.add_metric([str(g)], self.pauses.cumulative(g), self.pauses.total_s[g])
        yield pauses
        longest = GaugeMetricFamily(
            "radio_gc_pause_longest_seconds",
            "The longest garbage collection since the process started, by generation",
            labels=["generation"],
        )
        for g in gc_pauses.GENERATIONS:
            longest.add_metric([str(g)], self.pauses.longest_s[g])
        yield longest


class FleetCollector(Collector):
    def __init__(self, service: RadioService) -> None:
        self.service = service

    def describe(self) -> list[Metric]:
        return []  # collected on demand: the database is not read at registration

    def collect(self) -> Iterator[Metric]:
        s = self.service
        with s.db.session() as session:
            c = fleet_counts(session, s.health.presence)
            alarms = session.exec(
                select(Alarm.kind, Alarm.state, func.count())
                .where(col(Alarm.cleared_at).is_(None))
                .group_by(col(Alarm.kind), col(Alarm.state))
            ).all()
            schedules = session.exec(
                select(Schedule.status, func.count()).group_by(col(Schedule.status))
            ).all()
            deliveries = session.exec(
                select(Delivery.state, func.count()).group_by(col(Delivery.state))
            ).all()
        nodes = GaugeMetricFamily("radio_nodes", "Registered nodes by state", labels=["state"])
        for state in STATES:
            nodes.add_metric([state], c[state])
        yield nodes
        yield GaugeMetricFamily(
            "radio_nodes_alarmed", "Nodes with at least one alarm not cleared", value=c["alarmed"]
        )
        by_kind = GaugeMetricFamily(
            "radio_alarms", "Alarms not cleared, by kind and state", labels=["kind", "state"]
        )
        seen: Counter[tuple[str, str]] = Counter({(k, st): n for k, st, n in alarms})
        for kind in AlarmKind:
            for state in ("open", "acknowledged"):
                by_kind.add_metric([kind.value, state], seen.get((kind.value, state), 0))
        yield by_kind
        sched = GaugeMetricFamily("radio_schedules", "Schedules by status", labels=["status"])
        for status, n in schedules:
            sched.add_metric([status], n)
        yield sched
        deliv = GaugeMetricFamily(
            "radio_deliveries", "Broadcast items on nodes by state", labels=["state"]
        )
        for state, n in deliveries:
            deliv.add_metric([state], n)
        yield deliv
        yield from self._feeds()
        yield from self._transport()

    def _feeds(self) -> Iterator[Metric]:
        """Followed bulletin feeds: 1 for one silent longer than its period (alert on it)."""
        with self.service.db.session() as session:
            feeds = session.exec(
                select(BulletinFeed.name, BulletinFeed.silent_since).where(
                    col(BulletinFeed.active).is_(True)
                )
            ).all()
        silent = GaugeMetricFamily(
            "radio_bulletin_feed_silent",
            "1 when a followed bulletin feed has had nothing new for longer than its period",
            labels=["feed"],
        )
        for name, since in feeds:
            silent.add_metric([name], 1 if since is not None else 0)
        yield silent

    def _transport(self) -> Iterator[Metric]:
        s = self.service
        gw = s.gateway
        yield GaugeMetricFamily(
            "radio_mqtt_connected",
            "1 when connected to the broker",
            value=int(gw.connected.is_set()),
        )
        yield CounterMetricFamily(
            "radio_mqtt_connects", "Broker (re)connections", value=gw.connects
        )
        yield CounterMetricFamily(
            "radio_mqtt_messages_received", "MQTT messages received", value=gw.received
        )
        yield CounterMetricFamily(
            "radio_mqtt_messages_published", "MQTT messages published", value=gw.published
        )
        reports = CounterMetricFamily(
            "radio_ingest_reports",
            "Node reports by outcome (accepted, rejected, duplicate, dropped) and reason",
            labels=["outcome", "reason"],
        )
        for key, n in sorted(s.ingest.stats.items()):
            outcome, _, reason = key.partition(":")
            reports.add_metric([outcome, reason], n)
        yield reports
        yield GaugeMetricFamily(
            "radio_ingest_queue",
            "Reports waiting to be written: queued, or in a batch being written or waiting to go "
            "again while the database is away",
            value=s.ingest.waiting,
        )
        yield CounterMetricFamily(
            "radio_telemetry_samples_written",
            "Heartbeats stored",
            value=s.health.telemetry.written,
        )
        hooks = CounterMetricFamily(
            "radio_webhook_notifications", "Alarm webhook outcomes", labels=["outcome"]
        )
        for outcome in ("delivered", "attempts_failed", "failed", "dropped_queue_full"):
            hooks.add_metric([outcome], s.health.webhook.stats.get(outcome, 0))
        yield hooks
        yield from self._tasks()

    def _tasks(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "radio_task_restarts",
            "Background tasks restarted after a crash (or a kill), by task",
            labels=["task"],
        )
        running = GaugeMetricFamily(
            "radio_task_running", "1 while a background task runs, by task", labels=["task"]
        )
        for name, health in sorted(self.service.supervisor.health.items()):
            restarts.add_metric([name], health.restarts)
            running.add_metric([name], int(health.running))
        yield restarts
        yield running
        failed = CounterMetricFamily(
            "radio_change_listener_failures",
            "Listeners of ingestion's changes that raised, by listener",
            labels=["listener"],
        )
        for name, n in sorted(self.service.changes.failures.items()):
            failed.add_metric([name], n)
        yield failed
        dropped = CounterMetricFamily(
            "radio_change_events_dropped",
            "Events a live view missed because it fell behind, by view",
            labels=["listener"],
        )
        for name, n in sorted(self.service.changes.dropped.items()):
            dropped.add_metric([name], n)
        yield dropped
