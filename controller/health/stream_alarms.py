"""The "stream source dead" alarm: raised when a node reports `stream_failed` (it fell back to
the recording, or to silence), cleared when it reports `stream_connected` again.

It reads the stored node events rather than hooking into ingestion, so it adds nothing to the
path every report takes; a few seconds of delay are nothing for a dead station.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlmodel import col, select

from controller.core.db import Database
from controller.core.models import NodeEventRecord
from controller.core.periodic import Periodic
from controller.core.time import utc_datetime
from controller.health.alarms import AlarmBook, AlarmKind
from protocol import EventType
from protocol.clock import Clock

log = logging.getLogger(__name__)

_TYPES = (EventType.stream_failed.value, EventType.stream_connected.value)


class StreamAlarms:
    interval_s = 2.0

    def __init__(self, db: Database, alarms: AlarmBook, clock: Clock) -> None:
        self.db = db
        self.alarms = alarms
        self.since: datetime = utc_datetime(clock.now_ms())
        # The events stored at `since` itself, already taken: another stored in the same
        # millisecond after a check is read by the next one (a strict `>` would lose it).
        self._at_since: set[str] = set()

    async def run(self) -> None:
        await Periodic("stream alarm check", self.interval_s, self.run_once).run()

    async def run_once(self) -> None:
        await asyncio.to_thread(self.check)

    def check(self) -> int:
        """Raise or clear from the stream events stored since the last check; how many."""
        with self.db.session() as session:
            rows = session.exec(
                select(NodeEventRecord)
                .where(col(NodeEventRecord.type).in_(_TYPES))
                .where(NodeEventRecord.received_at >= self.since)
                .order_by(col(NodeEventRecord.received_at), col(NodeEventRecord.ts))
            ).all()
            rows = [r for r in rows if r.id not in self._at_since]
            if not rows:
                return 0
            latest = max(r.received_at for r in rows)
            at_latest = {r.id for r in rows if r.received_at == latest}
            self._at_since = at_latest | (self._at_since if latest == self.since else set())
            self.since = latest
            for row in rows:
                if row.type == EventType.stream_failed:
                    self.alarms.raise_alarm(
                        session, row.node_id, AlarmKind.stream_dead, f"{row.item_id}: {row.detail}"
                    )
                else:
                    self.alarms.clear_alarm(
                        session, row.node_id, AlarmKind.stream_dead, f"{row.item_id}: connected"
                    )
            session.commit()
        return len(rows)
