"""Commands to nodes: targets and arguments checked, one signed envelope per node, published in
the background, followed to each node's answer or timeout."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, update

from controller.commands import command_progress as progress
from controller.commands.command_plan import CommandPlan, plan_command
from controller.commands.firmware import FirmwareCatalogue
from controller.core.config import Settings
from controller.core.db import Database, database_failed
from controller.core.events import CommandAckHeard
from controller.core.models import Command, CommandState, NodeCommand
from controller.core.time import utc_datetime
from controller.fleet.registry import Registry
from controller.mqtt.gateway import Gateway, NotConnected
from protocol import CommandAck, CommandBody, CommandName, Signer, Topics
from protocol.clock import Clock

log = logging.getLogger(__name__)

PUBLISH_AT_ONCE = 100


class Commands:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        firmware: FirmwareCatalogue,
        gateway: Gateway,
        signer: Signer,
        topics: Topics,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.firmware = firmware
        self.gateway = gateway
        self.signer = signer
        self.topics = topics
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._acks: asyncio.Queue[tuple[str, CommandAck, datetime]] = asyncio.Queue(100_000)
        self._wake = asyncio.Event()
        self._publishing: set[asyncio.Task[None]] = set()

    def now(self) -> datetime:
        # The controller's clock, as ingestion stamps reports (scaled in tests).
        return utc_datetime(self.clock.now_ms())

    # --- giving a command ------------------------------------------------------------------

    def plan(self, session: Session, name: CommandName, **request: Any) -> CommandPlan:
        """Checked and resolved to nodes (args, nodes, areas, timeout_s, offline)."""
        return plan_command(session, self.registry, self.firmware, self.settings, name, **request)

    async def issue(self, plan: CommandPlan, author: str) -> Command:
        """Record the command and every node's part; publishing goes on in the background."""
        plan.check_reachable()
        command, payloads = await asyncio.to_thread(self._record, plan, author)
        self.stats["commands:issued"] += 1
        task = asyncio.create_task(self._publish(command.id, payloads))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)
        self._wake.set()
        return command

    def _record(self, plan: CommandPlan, author: str) -> tuple[Command, list[tuple[str, bytes]]]:
        now, now_ms = self.now(), self.clock.now_ms()
        # The envelope expires with the wait: a node that gets it later must not act on it.
        ttl_ms = int(plan.timeout_s * 1000)
        command = Command(
            id=uuid.uuid4().hex,
            name=plan.name.value,
            args=json.dumps(plan.args),
            targets=json.dumps(plan.targets),
            areas=json.dumps(plan.areas),
            nodes=len(plan.nodes),
            timeout_s=plan.timeout_s,
            created_by=author,
            created_at=now,
        )
        rows: list[NodeCommand] = []
        payloads: list[tuple[str, bytes]] = []
        for node in plan.nodes:
            if plan.offline == "skip" and node.status != "online":
                seen = f", last seen {node.last_seen:%Y-%m-%d %H:%M} UTC" if node.last_seen else ""
                rows.append(
                    NodeCommand(
                        command_id=command.id,
                        node_id=node.id,
                        cmd_id=uuid.uuid4().hex,
                        state=CommandState.skipped,
                        detail=f"not sent: the node is {node.status}{seen}",
                        deadline=now,
                        finished_at=now,
                    )
                )
                continue
            body = CommandBody(node_id=node.id, command=plan.name, args=plan.wire_args)
            env = self.signer.envelope("cmd", body.model_dump(mode="json"), now_ms, ttl_ms)
            rows.append(
                NodeCommand(
                    command_id=command.id,
                    node_id=node.id,
                    cmd_id=env.id,
                    deadline=progress.deadline_after(now, plan.timeout_s),
                )
            )
            payloads.append((node.id, env.model_dump_json().encode()))
        if not payloads:
            command.finished_at = now
        with self.db.session() as session:
            session.add(command)
            session.add_all(rows)
            session.commit()
            session.refresh(command)
        return command, payloads

    async def _publish(self, command_id: str, payloads: list[tuple[str, bytes]]) -> None:
        sent: list[str] = []
        lost: list[str] = []
        sending_at = self.now()  # before the first publish: a fast answer may come in first

        async def one(node_id: str, payload: bytes) -> None:
            try:
                await self.gateway.publish(self.topics.cmd(node_id), payload, qos=1)
                sent.append(node_id)
            except NotConnected:
                lost.append(node_id)

        for i in range(0, len(payloads), PUBLISH_AT_ONCE):
            await asyncio.gather(*(one(n, p) for n, p in payloads[i : i + PUBLISH_AT_ONCE]))
        self.stats["commands:published"] += len(sent)
        self.stats["commands:not_sent"] += len(lost)
        if lost:
            log.warning(
                "command %s: broker unavailable, %d node(s) not reached", command_id, len(lost)
            )
        try:
            await asyncio.to_thread(self._mark_sent, command_id, sent, lost, sending_at)
        except Exception:
            log.exception("recording the sending of command %s failed", command_id)

    def _mark_sent(
        self, command_id: str, sent: list[str], lost: list[str], sending_at: datetime
    ) -> None:
        now = self.now()
        with self.db.session() as session:
            for i in range(0, len(sent), 500):
                # Whatever state the node's part is in: its answer may have been written first.
                session.exec(
                    update(NodeCommand)
                    .where(
                        col(NodeCommand.command_id) == command_id,
                        col(NodeCommand.node_id).in_(sent[i : i + 500]),
                        col(NodeCommand.sent_at).is_(None),
                    )
                    .values(sent_at=sending_at)
                )
            for i in range(0, len(lost), 500):
                session.exec(
                    update(NodeCommand)
                    .where(
                        col(NodeCommand.command_id) == command_id,
                        col(NodeCommand.node_id).in_(lost[i : i + 500]),
                        col(NodeCommand.state).in_(progress.OPEN),
                    )
                    .values(
                        state=CommandState.failed,
                        finished_at=now,
                        detail="not sent: the broker was unavailable; give the command again",
                    )
                )
            if lost:
                progress.close_finished(session, {command_id}, now)
            session.commit()

    # --- answers -------------------------------------------------------------------------------

    def on_report(self, heard: CommandAckHeard) -> None:
        """Ingestion's listener: acks are queued here and written in batches by `run`."""
        try:
            self._acks.put_nowait((heard.node_id, heard.ack, self.now()))
        except asyncio.QueueFull:
            self.stats["ack:dropped_queue_full"] += 1

    async def run(self) -> None:
        """Write the acks in batches. While the database is away a batch waits and goes again,
        whole; one it refuses goes again ack by ack, so one node's ack it cannot store (a NUL
        in a text) costs no other node theirs: that one is dropped and counted."""
        failed: list[tuple[str, CommandAck, datetime]] = []
        while True:
            batch = failed or [await self._acks.get()]
            while not failed and len(batch) < 500 and not self._acks.empty():
                batch.append(self._acks.get_nowait())
            failed = []
            try:
                await asyncio.to_thread(self._record_acks, batch)
            except Exception as exc:
                if database_failed(exc):
                    log.warning("recording %d command acks failed (%s); again", len(batch), exc)
                    failed = batch
                    await asyncio.sleep(1)
                    continue
                failed = await asyncio.to_thread(self._record_each, batch)
                if failed:
                    await asyncio.sleep(1)

    def _record_each(
        self, batch: list[tuple[str, CommandAck, datetime]]
    ) -> list[tuple[str, CommandAck, datetime]]:
        """Each ack alone; what is left when the database itself fails (to go again)."""
        for i, item in enumerate(batch):
            try:
                self._record_acks([item])
            except Exception as exc:
                if database_failed(exc):
                    return batch[i:]
                self.stats["ack:dropped_unstorable"] += 1
                log.warning(
                    "dropped %s's ack of %s the database refused: %s",
                    item[0],
                    item[1].cmd_id[:40],
                    str(getattr(exc, "orig", exc))[:200],
                )
        return []

    def _record_acks(self, batch: list[tuple[str, CommandAck, datetime]]) -> None:
        counted: Counter[str] = Counter()
        with self.db.session() as session:
            touched = progress.record_acks(session, batch, counted)
            progress.close_finished(session, touched, self.now())
            session.commit()
        # Counted once stored: a counter that moved means the command's view shows the ack.
        self.stats.update(counted)

    async def run_timeouts(self) -> None:
        """Wakes at the next deadline (or when a command is given) to time out the silent."""
        speed = float(getattr(self.clock, "speed", 1.0))
        while True:
            delay = 5.0
            try:
                delay = await asyncio.to_thread(self._expire)
            except Exception:
                log.exception("command timeout sweep failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay / speed, 0.05))
            except TimeoutError:
                pass

    def _expire(self) -> float:
        now = self.now()
        with self.db.session() as session:
            expired, upcoming = progress.expire_overdue(session, now)
            session.commit()
        if expired:
            self.stats["commands:timed_out"] += expired
            log.info("%d command(s) timed out", expired)
        if upcoming is None:
            return 5.0
        return min(max((upcoming - now).total_seconds(), 0.0), 5.0)
