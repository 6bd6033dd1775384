"""Drafts by commune staff go on air only once an officer approves them."""

from __future__ import annotations

from sqlmodel import Session, select

from controller.core.db import Database
from controller.core.errors import Conflict, NotFound
from controller.core.models import Schedule, ScheduleStatus, ScheduleTarget, utcnow
from controller.fleet.registry import Registry
from controller.programme.admission import ensure_fits
from controller.programme.timelines import TimelineService, affected_nodes
from protocol.clock import Clock


class Approvals:
    def __init__(
        self, db: Database, registry: Registry, timelines: TimelineService, clock: Clock
    ) -> None:
        self.db = db
        self.registry = registry
        self.timelines = timelines
        self.clock = clock

    async def approve(self, schedule_id: int, by: str) -> Schedule:
        """Checked again as if new: the programme may have filled up since it was drafted."""
        with self.db.session() as session:
            schedule = self._pending(session, schedule_id, "approved")
            targets = session.exec(
                select(ScheduleTarget).where(ScheduleTarget.schedule_id == schedule_id)
            ).all()
            ensure_fits(
                session,
                self.registry.area_tree(session),
                self.timelines.media_url,
                schedule,
                [t.target_id for t in targets if t.kind == "area"],
                [t.target_id for t in targets if t.kind == "node"],
                self.clock.now_ms(),
                self.timelines.horizon_ms,
            )
            schedule.status = ScheduleStatus.scheduled
            schedule.approved_by, schedule.approved_at = by, utcnow()
            session.add(schedule)
            session.commit()
            nodes = affected_nodes(session, self.registry, schedule_id)
        await self.timelines.refresh(nodes)
        return schedule

    def reject(self, schedule_id: int, by: str) -> Schedule:
        with self.db.session() as session:
            schedule = self._pending(session, schedule_id, "rejected")
            schedule.status = ScheduleStatus.rejected
            schedule.approved_by, schedule.approved_at = by, utcnow()
            session.add(schedule)
            session.commit()
        return schedule

    @staticmethod
    def _pending(session: Session, schedule_id: int, verb: str) -> Schedule:
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            raise NotFound(f"schedule {schedule_id} does not exist")
        if schedule.status != ScheduleStatus.pending:
            raise Conflict(
                f"schedule {schedule_id} is {schedule.status}, not pending: only a draft "
                f"waiting for approval can be {verb}"
            )
        return schedule
