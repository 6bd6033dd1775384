"""Emergency alerts: rendered by the offline voice, one signed publish per target area (the
broker fans out), retained while active, confirmed by each node, cancelled everywhere at once,
ended by an all-clear, finished once played out."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from audio import prepare_mastering
from controller.alerts.alert_templates import TEMPLATES
from controller.alerts.board import ALL, STAMPS, AlertBoard, BoardNode, Page, report_version
from controller.core.db import Database, insert_rows, rows_by_pair, update_rows
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.events import AlertChanged, AlertReceiptHeard, AlertReceiptStored, Changes
from controller.core.models import Alert, AlertReceipt, AlertStatus, Area, Node
from controller.core.time import utc_datetime, utc_ms
from controller.fleet.registry import Registry
from controller.mqtt.gateway import Gateway, NotConnected
from controller.programme.speech import Speech
from protocol import AlertBody, MediaRef, Signer, Topics
from protocol.clock import Clock
from protocol.messages import MAX_INLINE_MEDIA_BYTES

log = logging.getLogger(__name__)
# How long after an alert closed its board entry still takes in what the database holds.
BOARD_CLOSED_REFRESH_S = 600.0

# Nodes pause this long between playings (the protocol's default `pause_ms`).
PAUSE_MS = 3000
# A node may start a little after the issue (clock differences, a download): the play window
# ends this much after the last repetition would end on a node that started at once.
PLAY_GRACE_MS = 10_000
# The confirmations that a node is done with an alert's version.
_DONE = ("finished_at", "stopped_at", "failed_at")


@dataclass
class AlertRequest:
    areas: list[str]
    text: str | None = None
    template: str | None = None
    title: str | None = None
    repeat: int = 3
    volume: int | None = 100
    test: bool = False
    expires_in_min: float = 60
    cap_sender: str | None = None
    cap_identifier: str | None = None
    author: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Alerts:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        speech: Speech,
        gateway: Gateway,
        signer: Signer,
        topics: Topics,
        clock: Clock,
        public_url: str,
        changes: Changes | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.speech = speech
        self.gateway = gateway
        self.signer = signer
        self.topics = topics
        self.clock = clock
        self.public_url = public_url
        # Where alerts tell their changes (the live views listen there); the service's events.
        self.changes = changes if changes is not None else Changes()
        self.wake = asyncio.Event()  # a node is done with an alert: sweep now, not in 5 s
        # What the alert views show, pushed as reports arrive (see controller.alerts.board).
        self.board = AlertBoard()
        self.changes.subscribe(
            AlertChanged, lambda c: self.board.changed(c.alert_id, c.status, c.version)
        )

    async def prerender_templates(self, timelines: Any = None) -> None:
        """Render every template with the offline voice at start; later alerts hit the cache,
        and nodes are told to hold the audio in advance (timeline `prefetch`)."""
        refs: list[MediaRef] = []
        # Templates are usually cache hits: load the mastering libraries now all the same, so
        # that the first free-text alert does not wait for them.
        await asyncio.to_thread(prepare_mastering, self.speech.mastering().sample_rate)
        for key, (_title, text) in TEMPLATES.items():
            try:
                r = await self.speech.render(text, "espeak", 1)
            except Exception:
                log.exception("pre-rendering alert template %s failed", key)
                continue
            refs.append(
                MediaRef(
                    url=f"{self.public_url}/media/{r.sha256}.mp3", sha256=r.sha256, size=r.size
                )
            )
        if timelines is not None and refs:
            timelines.prefetch = refs
            await timelines.refresh()

    async def issue(self, req: AlertRequest) -> Alert:
        areas = list(dict.fromkeys(req.areas))
        if not areas:
            raise Invalid("no target areas: choose at least one village, commune or district")
        with self.db.session() as session:
            for area_id in areas:
                if session.get(Area, area_id) is None:
                    raise Invalid(f"area {area_id!r} does not exist")
        title, text = self._content(req)
        # Always the offline voice: an alert must never wait on the internet.
        result = await self.speech.render(text, "espeak", 1)
        now = self.now()
        alert = Alert(
            id=uuid.uuid4().hex[:20],
            title=title,
            text=text,
            template=req.template,
            media_sha256=result.sha256,
            media_size=result.size,
            duration_ms=int(result.duration_s * 1000),
            repeat=req.repeat,
            volume=req.volume,
            test=req.test,
            areas=json.dumps(areas),
            expires_at=now + timedelta(minutes=req.expires_in_min),
            issued_at=now,
            created_at=now,
            created_by=req.author,
            cap_sender=req.cap_sender,
            cap_identifier=req.cap_identifier,
        )
        with self.db.session() as session:
            session.add(alert)
            session.commit()
            session.refresh(alert)
        # On the board before the nodes hear it, so that no confirmation comes too early; its
        # list of nodes is read after the publish, not in the way of the alert.
        self.board.put(alert.id, alert.version, alert.created_at, alert.status)
        await self.publish(alert)
        await asyncio.to_thread(self.load_board, alert.id)
        return alert

    def now(self) -> datetime:
        """The service's time (the one it signs with), not the machine's: both agree in
        production, and a node compares the alert's times with the same clock."""
        return utc_datetime(self.clock.now_ms())

    def _content(self, req: AlertRequest) -> tuple[str, str]:
        if req.template:
            if req.template not in TEMPLATES:
                raise Invalid(
                    f"unknown template {req.template!r}; choose one of: {', '.join(TEMPLATES)}"
                )
            title, text = TEMPLATES[req.template]
            return (req.title or title), text
        if not req.text or not req.text.strip():
            raise Invalid("give the alert's text, or choose a template")
        if len(req.text) > 2000:
            raise Invalid("an alert's text is limited to 2,000 characters: keep it short")
        return (req.title or req.text.strip()[:80]), req.text.strip()

    async def update(self, alert_id: str, req: AlertRequest) -> Alert:
        """Replace the message on the same nodes: same id, next version."""
        with self.db.session() as session:
            alert = self._active(session, alert_id)
        title, text = self._content(req)
        result = await self.speech.render(text, "espeak", 1)
        with self.db.session() as session:
            alert = self._active(session, alert_id)
            alert.version += 1
            alert.title, alert.text, alert.template = title, text, req.template
            alert.media_sha256, alert.media_size = result.sha256, result.size
            alert.duration_ms = int(result.duration_s * 1000)
            alert.repeat, alert.volume = req.repeat, req.volume
            now = self.now()
            alert.expires_at = now + timedelta(minutes=req.expires_in_min)
            alert.issued_at = now
            session.add(alert)
            # Confirmations start over for the new message.
            for r in session.exec(select(AlertReceipt).where(AlertReceipt.alert_id == alert_id)):
                session.delete(r)
            session.commit()
            session.refresh(alert)
        self.board.changed(alert.id, alert.status, alert.version)
        await self.publish(alert)
        return alert

    def _active(self, session: Session, alert_id: str) -> Alert:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if alert.status != AlertStatus.active:
            raise Conflict(f"alert {alert_id} is {alert.status}: issue a new one")
        return alert

    def body(self, alert: Alert, action: Literal["play", "cancel"], area_id: str) -> dict[str, Any]:
        """The alert's body for one area's topic: the area is signed with it, so the message
        cannot be replayed onto another area's topic."""
        media = None
        data = None
        if action == "play":
            media = MediaRef(
                url=f"{self.public_url}/media/{alert.media_sha256}.mp3",
                sha256=alert.media_sha256,
                size=alert.media_size,
            )
            data = self._inline(alert)
        return AlertBody(
            alert_id=alert.id,
            version=alert.version,
            action=action,
            area=area_id,
            title=alert.title[:200],
            media=media,
            duration_ms=alert.duration_ms,
            repeat=alert.repeat,
            volume=alert.volume,
            test=alert.test,
            expires=utc_ms(alert.expires_at),
            play_by=play_by(alert),
            media_data=data,
        ).model_dump(mode="json", exclude_none=True)

    def _inline(self, alert: Alert) -> str | None:
        """The alert's audio for the message itself, when it is small enough: a thousand nodes
        then get it from the broker's one fan-out instead of a thousand downloads from us.
        Not for templates: nodes fetch those in advance, and the larger message would only
        slow the fan-out (measured: 1,000 nodes received it 0.5 s after the call, not 0.2 s)."""
        if alert.template or alert.media_size > MAX_INLINE_MEDIA_BYTES:
            return None
        path = self.speech.store.path_for(alert.media_sha256)
        if path is None:
            return None
        data = path.read_bytes()
        if len(data) != alert.media_size:
            log.error(
                "alert %s: stored media is %d bytes, not %d", alert.id, len(data), alert.media_size
            )
            return None
        return base64.b64encode(data).decode()

    async def publish(self, alert: Alert) -> None:
        """One retained publish per target area; the broker delivers to every node below."""
        now = self.clock.now_ms()
        ttl = max(utc_ms(alert.expires_at) - now, 1000)
        for area_id in json.loads(alert.areas):
            payload = self.signer.sign("alert", self.body(alert, "play", area_id), now, ttl)
            try:
                await self.gateway.publish(self.topics.area_alert(area_id), payload, 1, True)
            except NotConnected:
                log.warning("broker unavailable: alert %s goes out on reconnect", alert.id)
        self.changes.publish(AlertChanged(alert.id, alert.status, alert.version))

    async def cancel(self, alert_id: str, author: str) -> Alert:
        with self.db.session() as session:
            alert = self._active(session, alert_id)
            alert.status = AlertStatus.cancelled
            alert.cancelled_by, alert.cancelled_at = author, self.now()
            session.add(alert)
            session.commit()
            session.refresh(alert)
        await self._withdraw(alert)
        return alert

    async def all_clear(self, alert_id: str, author: str) -> Alert:
        """End the alert and tell its areas, once, that the danger is over. An alert still
        sounding stops; one that has played out (`finished`) is ended too, since the danger it
        announced lasted until now."""
        with self.db.session() as session:
            alert = session.get(Alert, alert_id)
            if alert is None:
                raise NotFound(f"alert {alert_id} does not exist")
            if alert.template == "all_clear":
                raise Conflict(f"alert {alert_id} is itself an all-clear")
            ending = alert.status in (AlertStatus.active, AlertStatus.finished)
            if ending:
                alert.status = AlertStatus.ended
                alert.cancelled_by, alert.cancelled_at = author, self.now()
                session.add(alert)
                session.commit()
                session.refresh(alert)
        if ending:
            await self._withdraw(alert)
        return await self.issue(
            AlertRequest(
                areas=json.loads(alert.areas),
                template="all_clear",
                repeat=1,
                volume=alert.volume,
                test=alert.test,
                expires_in_min=15,
                author=author,
            )
        )

    async def _withdraw(self, alert: Alert, stop: bool = True) -> None:
        """Clear the retained play, so that a node coming later hears nothing; with `stop`,
        first a cancel, so that nodes sounding it stop now (a finished alert plays out)."""
        now = self.clock.now_ms()
        for area_id in json.loads(alert.areas):
            payload = self.signer.sign("alert", self.body(alert, "cancel", area_id), now, 3600_000)
            topic = self.topics.area_alert(area_id)
            try:
                if stop:
                    await self.gateway.publish(topic, payload, 1, False)
                await self.gateway.publish(topic, b"", 1, True)  # clear the retained play
            except NotConnected:
                log.warning("broker unavailable: withdrawal of %s goes out on reconnect", alert.id)
        self.changes.publish(AlertChanged(alert.id, alert.status))

    async def republish_active(self) -> None:
        """After a (re)connect: a restarted broker may have lost the retained alerts."""
        with self.db.session() as session:
            active = session.exec(select(Alert).where(Alert.status == AlertStatus.active)).all()
        for alert in active:
            if alert.expires_at <= self.now():
                await self.expire(alert.id)
            elif (end := play_by(alert)) is not None and end <= self.clock.now_ms():
                await self.finish(alert.id)
            else:
                await self.publish(alert)

    async def expire(self, alert_id: str) -> None:
        await self._close(alert_id, AlertStatus.expired, stop=True)

    async def finish(self, alert_id: str) -> None:
        """Played out: no longer retained, so a node joining now hears nothing; nodes still
        sounding it (one that started late) play their last repetition out."""
        await self._close(alert_id, AlertStatus.finished, stop=False)

    async def _close(self, alert_id: str, status: AlertStatus, stop: bool) -> None:
        with self.db.session() as session:
            alert = session.get(Alert, alert_id)
            if alert is None or alert.status != AlertStatus.active:
                return
            alert.status = status
            session.add(alert)
            session.commit()
            session.refresh(alert)
        await self._withdraw(alert, stop)

    def on_receipt(self, receipt: AlertReceiptStored) -> None:
        """Ingestion's report of a confirmation: a node done with an alert wakes the sweep."""
        if receipt.event in ("alert_finished", "alert_stopped", "alert_failed"):
            self.wake.set()

    async def sweep(self) -> None:
        """Close what is due: expired alerts, and those played out (every online node of its
        areas done with this version, or the end of its last repetition passed)."""
        now = self.now()
        with self.db.session() as session:
            active = session.exec(select(Alert).where(Alert.status == AlertStatus.active)).all()
            expired = [a.id for a in active if a.expires_at <= now]
            finished = [a.id for a in active if a.expires_at > now and self.played_out(session, a)]
        for alert_id in expired:
            await self.expire(alert_id)
        for alert_id in finished:
            await self.finish(alert_id)

    def played_out(self, session: Session, alert: Alert) -> bool:
        end = play_by(alert)
        if end is None:
            return False  # sounds until cancelled or expired
        return end <= self.clock.now_ms() or self.played_everywhere(session, alert)

    def played_everywhere(self, session: Session, alert: Alert) -> bool:
        """Every node of the alert's areas that is online is done with its version (at least
        one node, so that an alert to nodes that are all away waits for them)."""
        online = {n.id for n in self.expected_nodes(session, alert) if n.status == "online"}
        if not online:
            return False
        done = session.exec(
            select(AlertReceipt.node_id).where(
                AlertReceipt.alert_id == alert.id,
                AlertReceipt.version == alert.version,
                col(AlertReceipt.finished_at).is_not(None)
                | col(AlertReceipt.stopped_at).is_not(None)
                | col(AlertReceipt.failed_at).is_not(None),
            )
        ).all()
        return online <= set(done)

    async def run_expiry(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 5)
            self.wake.clear()
            try:
                await self.sweep()
            except Exception:
                log.exception("alert expiry sweep failed")

    # --- confirmations ---------------------------------------------------------------------

    def expected_nodes(self, session: Session, alert: Alert) -> list[Any]:
        """Rows (id, name, area_id, status) of the nodes the alert is for."""
        return self.registry.nodes_under(
            session,
            set(json.loads(alert.areas)),
            Node.id,
            Node.name,
            Node.area_id,
            Node.status,
        )

    def view(
        self, session: Session, alert: Alert, silent_after_s: float, page: Page = ALL
    ) -> dict[str, Any]:
        """The alert's nodes of `page` with their states, the counts and the silent nodes: from
        the board, where ingestion puts each confirmation as it arrives (read from the database
        only when the alert comes onto the board)."""
        # The row the caller just read is the truth about status and version (another
        # instance may have closed or replaced the alert).
        self.board.changed(alert.id, alert.status, alert.version)
        found = self.board.view(alert.id, silent_after_s, self.now(), page)
        if found is None:
            self._load_board(session, alert)
            found = self.board.view(alert.id, silent_after_s, self.now(), page)
        if found is None:  # pushed off the board at once by many others: a board of its own
            board = AlertBoard(max_alerts=1)
            self._load_board(session, alert, board)
            found = board.view(alert.id, silent_after_s, self.now(), page)
        assert found is not None
        return found

    def load_board(self, alert_id: str) -> None:
        """Put the alert on the board from the database, or merge the database into it."""
        with self.db.session() as session:
            alert = session.get(Alert, alert_id)
            if alert is not None:
                self._load_board(session, alert)

    def _load_board(self, session: Session, alert: Alert, board: AlertBoard | None = None) -> None:
        # Columns, not objects: ten thousand of each are read for a look at a big alert.
        # Rows read by column name, which the row type (a tuple to mypy) does not declare.
        stored: Sequence[Any] = session.exec(
            select(  # type: ignore[call-overload,misc]  # sqlmodel types select() to 4 columns
                AlertReceipt.node_id,
                AlertReceipt.version,
                AlertReceipt.received_at,
                AlertReceipt.started_at,
                AlertReceipt.finished_at,
                AlertReceipt.stopped_at,
                AlertReceipt.failed_at,
                AlertReceipt.detail,
            ).where(AlertReceipt.alert_id == alert.id)
        ).all()
        nodes = [
            BoardNode(n.id, n.name, n.area_id, n.status)
            for n in self.expected_nodes(session, alert)
        ]
        (board or self.board).put(
            alert.id, alert.version, alert.created_at, alert.status, nodes, list(stored)
        )

    def heard(
        self, node_id: str, alert_id: str, kind: str, ts_ms: int, detail: str
    ) -> AlertReceiptHeard | None:
        """Ingestion heard a node's confirmation: on the board at once, before it is stored."""
        if self.board.heard(alert_id, node_id, kind, ts_ms, detail):
            return AlertReceiptHeard(alert_id, node_id, kind)
        return None

    async def run_board(self, interval_s: float = 3.0) -> None:
        """Merge the database into the board's alerts every few seconds, while they are active
        and for ten minutes after they close: what another instance heard, a close or a new
        version made there, nodes added to the areas, the nodes' online states."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self._refresh_board)
            except Exception:
                log.exception("refreshing the alert board failed")

    def _refresh_board(self) -> None:
        ids = self.board.to_refresh(BOARD_CLOSED_REFRESH_S)
        if not ids:
            return
        with self.db.session() as session:
            for alert in session.exec(select(Alert).where(col(Alert.id).in_(ids))).all():
                self._load_board(session, alert)


def play_by(alert: Alert) -> int | None:
    """When the alert's last repetition has ended where it was heard (ms), or None for an
    alert that sounds until cancelled or expired; never after it expires."""
    if alert.repeat == 0:
        return None
    issued = utc_ms(alert.issued_at or alert.created_at)
    playing = alert.repeat * alert.duration_ms + (alert.repeat - 1) * PAUSE_MS
    return min(issued + playing + PLAY_GRACE_MS, utc_ms(alert.expires_at))


# What ingestion hands over of each alert_* event: node, alert, kind, the node's ms, detail.
AlertEvent = tuple[str, str, str, int, str]
_RECEIPT = AlertReceipt.__table__  # type: ignore[attr-defined]
_RECEIPT_COLUMNS = [c.name for c in _RECEIPT.c if c.name != "id"]


def record_alert_events(session: Session, events: list[AlertEvent]) -> list[AlertReceiptStored]:
    """Called by ingestion with a batch's alert_* events, in arrival order: the nodes'
    confirmations, kept per alert and node. The batch's alerts and receipts are read at once
    and written back in a statement or two, whatever the number of nodes confirming."""
    versions: dict[str, int] = dict(
        session.exec(
            select(Alert.id, Alert.version).where(col(Alert.id).in_({e[1] for e in events}))
        ).all()
    )
    receipts = rows_by_pair(
        session,
        _RECEIPT,
        "alert_id",
        "node_id",
        ((a, node) for node, a, *_ in events if a in versions),
    )
    touched: set[tuple[str, str]] = set()
    stored: list[AlertReceiptStored] = []
    for node_id, alert_id, kind, ts_ms, detail in events:
        current, stamp = versions.get(alert_id), STAMPS.get(kind)
        if current is None or stamp is None:
            continue
        # Nodes name the version first in the detail ("v2; ..."): a report about a version
        # that an update replaced (its "stopped") must not count for the new one.
        version = report_version(detail, current)
        if version < current:
            continue
        key = (alert_id, node_id)
        r = receipts.get(key)
        if r is None:
            r = receipts[key] = {name: None for name in _RECEIPT_COLUMNS} | {
                "id": None,
                "alert_id": alert_id,
                "node_id": node_id,
                "version": version,
                "detail": "",
            }
        if version < r["version"]:
            continue
        when: datetime = utc_datetime(ts_ms)
        r[stamp] = when
        r["version"] = version
        if r["received_at"] is None:
            r["received_at"] = when
        if detail:
            r["detail"] = detail[:500]
        touched.add(key)
        stored.append(AlertReceiptStored(alert_id, node_id, kind))
    rows = [receipts[key] for key in sorted(touched)]
    new = [{c: r[c] for c in _RECEIPT_COLUMNS} for r in rows if r["id"] is None]
    insert_rows(session, AlertReceipt, new)
    update_rows(session, _RECEIPT, "id", [r for r in rows if r["id"] is not None])
    return stored
