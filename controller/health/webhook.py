"""Alarm notifications to the province's system: a JSON POST per change, retried with back-off;
reminders for alarms nobody acknowledged. A dead webhook loses nothing: the alarm stays in the
database, the failure is counted, and undelivered alarms are sent again later."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from controller.core.config import Settings
from controller.core.db import Database
from controller.core.models import Alarm, AlarmState, Node
from controller.health.alarms import LABELS_VI, AlarmBook, AlarmKind, snapshot

log = logging.getLogger(__name__)

QUEUE_MAX = 10_000
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
_HEADLINE = {
    "raised": "Cảnh báo",
    "reminder": "Nhắc lại (chưa ai tiếp nhận)",
    "acknowledged": "Đã tiếp nhận",
    "cleared": "Đã hết",
}


def message(change: dict[str, Any], node_name: str) -> str:
    """One line a person reads on a phone: Vietnamese, the node by its name."""
    try:
        label = LABELS_VI[AlarmKind(change["kind"])]
    except (KeyError, ValueError):
        label = str(change.get("kind"))
    head = _HEADLINE.get(str(change.get("change")), str(change.get("change")))
    text = f"{head}: {node_name} ({change.get('node_id')}) — {label}"
    if change.get("detail"):
        text += f" ({change['detail']})"
    if change.get("change") == "acknowledged" and change.get("acked_by"):
        text += f"; người tiếp nhận: {change['acked_by']}"
    return text


class Webhook:
    def __init__(self, settings: Settings, db: Database, book: AlarmBook) -> None:
        self.settings = settings
        self.url = settings.webhook_url
        self.db = db
        self.book = book
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_MAX)
        self.stats: Counter[str] = Counter()
        self._in_flight: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def offer(self, change: dict[str, Any]) -> None:
        """From any thread: queue a change; never waits (ingestion must not block on it)."""
        if self.url is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._put, change)

    def _put(self, change: dict[str, Any]) -> None:
        if change.get("id") in self._in_flight:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            # Not lost: the alarm is in the database and the reminder round sends it later.
            self.stats["dropped_queue_full"] += 1
            return
        if isinstance(change.get("id"), int):
            self._in_flight.add(change["id"])

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_s) as client:
            while True:
                change = await self.queue.get()
                try:
                    ok = await self._deliver(client, change)
                    if ok and change.get("change") in ("raised", "reminder"):
                        await asyncio.to_thread(self._mark_notified, int(change["id"]))
                except Exception:  # the notifier must outlive any one notification
                    log.exception("notifying alarm %s failed", change.get("id"))
                finally:
                    self._in_flight.discard(change.get("id"))

    async def _deliver(self, client: httpx.AsyncClient, change: dict[str, Any]) -> bool:
        name = await asyncio.to_thread(self._node_name, str(change.get("node_id")))
        body = {
            "event": change.get("change"),
            "text": message(change, name),
            "instance": self.settings.instance,
            "alarm": {k: v for k, v in change.items() if k not in ("type", "change")},
        }
        delay = BACKOFF_BASE_S
        for attempt in range(self.settings.webhook_retries + 1):
            try:
                r = await client.post(self.url or "", json=body)
                if r.is_success:
                    self.stats["delivered"] += 1
                    return True
                problem = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            self.stats["attempts_failed"] += 1
            if attempt < self.settings.webhook_retries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        self.stats["failed"] += 1
        log.error(
            "webhook gave up on alarm %s (%s) after %d attempts: %s",
            change.get("id"),
            change.get("change"),
            self.settings.webhook_retries + 1,
            problem,
        )
        return False

    def _node_name(self, node_id: str) -> str:
        with self.db.session() as session:
            node = session.get(Node, node_id)
        return node.name if node else node_id

    def _mark_notified(self, alarm_id: int) -> None:
        with self.db.session() as session:
            alarm = session.get(Alarm, alarm_id)
            if alarm is not None:
                alarm.notified_at = self.book.now()
                alarm.notifications += 1
                session.add(alarm)
                session.commit()

    async def run_reminders(self) -> None:
        """Open alarms nobody acknowledged are notified again every `alarm_repeat_s`; alarms
        whose notification never got through are tried again."""
        self._loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(self.settings.alarm_check_s, self.settings.alarm_repeat_s))
            try:
                for change in await asyncio.to_thread(self.due):
                    self._put(change)
            except Exception:
                log.exception("alarm reminder round failed")

    def due(self) -> list[dict[str, Any]]:
        now = self.book.now()
        repeat = now - timedelta(seconds=self.settings.alarm_repeat_s)
        retry = now - timedelta(seconds=min(60.0, self.settings.alarm_repeat_s))
        with self.db.session() as session:
            rows = session.exec(
                select(Alarm, Node.area_id)
                .join(Node, col(Node.id) == Alarm.node_id)
                .where(Alarm.state == AlarmState.open)
            ).all()
        out = []
        for alarm, area_id in rows:
            if alarm.id in self._in_flight:
                continue
            if alarm.notified_at is None and alarm.raised_at <= retry:
                out.append(snapshot(alarm, area_id, "raised"))
            elif alarm.notified_at is not None and alarm.notified_at <= repeat:
                out.append(snapshot(alarm, area_id, "reminder"))
        return out
