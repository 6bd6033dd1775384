"""Which controller instance does the periodic work, when several share one database.

Every instance serves the API and ingests its share of node reports (MQTT shared subscriptions),
but the work that must happen once — rolling timelines forward, expiring alerts, sweeping for
silent nodes, evaluating alarms, timing out commands — runs on the leader only. The leader holds
a PostgreSQL session advisory lock on a connection of its own; if the process dies the server
drops the connection and the lock with it, and another instance takes it at its next try
(`leader_retry_s`, so a handover takes at most that long plus the server's noticing the dead
connection, which TCP keep-alives bound). On SQLite there is one process: it always leads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import text

from controller.core.db import Database
from protocol.aio import cancel_and_wait

log = logging.getLogger(__name__)

LOCK_KEY = 7231002


class Leadership:
    def __init__(self, db: Database, instance: str, retry_s: float = 3.0) -> None:
        self.db = db
        self.instance = instance
        self.retry_s = retry_s
        self.is_leader = asyncio.Event()
        self.lost = asyncio.Event()
        self.changes = 0
        self._conn: Any = None
        # A cancelled to_thread() leaves its thread running: the connection is closed only after
        # the statement on it has returned, never from under it.
        self._conn_lock = threading.Lock()

    @property
    def shared(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    async def run(self) -> None:
        """Hold (or keep trying for) the leadership until cancelled."""
        if not self.shared:
            self._become(True)
            await asyncio.Event().wait()
        try:
            while True:
                try:
                    held = await asyncio.to_thread(self._try_lock)
                    if held != self.is_leader.is_set():
                        self._become(held)
                except Exception as exc:  # the database is away: nobody can be sure to lead
                    if self.is_leader.is_set():
                        log.warning("lost the leadership (%s)", str(exc).splitlines()[0][:200])
                        self._become(False)
                    await asyncio.to_thread(self._drop)
                await asyncio.sleep(self.retry_s)
        finally:
            await asyncio.to_thread(self._drop)

    def _try_lock(self) -> bool:
        """Take the lock if free; if held, check that its connection is still alive."""
        with self._conn_lock:
            return self._try_lock_unguarded()

    def _try_lock_unguarded(self) -> bool:
        if self._conn is None:
            self._conn = self.db.engine.connect()
            got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
            if not got.scalar():
                self._close()
                return False
            self._conn.commit()
            return True
        self._conn.execute(text("SELECT 1"))
        self._conn.commit()
        return True

    def _drop(self) -> None:
        with self._conn_lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken
                pass
            self._conn = None

    def _become(self, leader: bool) -> None:
        self.changes += 1
        if leader:
            log.info("instance %s leads: periodic work runs here", self.instance)
            self.lost.clear()
            self.is_leader.set()
        else:
            log.info("instance %s follows", self.instance)
            self.is_leader.clear()
            self.lost.set()

    async def while_leader(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Run `work()` whenever this instance leads; cancel it when the leadership is lost."""
        while True:
            await self.is_leader.wait()
            task = asyncio.create_task(work(), name=name)
            lost = asyncio.create_task(self.lost.wait())
            try:
                await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait([task, lost])
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("%s stopped: %s", name, task.exception())
                await asyncio.sleep(self.retry_s)
