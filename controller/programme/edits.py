"""Changing a schedule after it was written: a new version of it, or one day left out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from controller.core.db import Database
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import Announcement, Schedule, ScheduleStatus, ScheduleTarget
from controller.core.time import as_utc, utc_datetime
from controller.fleet.groups import members
from controller.fleet.registry import Registry
from controller.programme.admission import ensure_fits
from controller.programme.broadcasts import (
    Repetition,
    Targets,
    add_targets,
    ensure_targets_exist,
)
from controller.programme.programme import check_day
from controller.programme.recurrences import (
    checked_recurrence,
    exdates_json,
    parse_exdates,
    recurrence_of,
)
from controller.programme.timelines import TimelineService, affected_nodes
from protocol import Priority
from protocol.clock import Clock
from schedules import occurrences
from schedules.localtime import label_date, local_day_window

OPEN = (ScheduleStatus.scheduled, ScheduleStatus.pending)


class ScheduleClosed(Conflict):
    code = "schedule_closed"


class OnceHasNoDays(Invalid):
    code = "schedule_once"


class NoBroadcastThatDay(Invalid):
    code = "schedule_no_broadcast_that_day"


class DayAlreadyPlayed(Conflict):
    code = "schedule_day_played"


@dataclass
class Revision:
    """A schedule's new version, whole: what, when, where, how urgent, how it repeats."""

    announcement_id: int
    starts_at: datetime
    targets: Targets
    priority: Priority
    plan: Repetition
    status: ScheduleStatus


def open_schedule(session: Session, schedule_id: int, verb: str) -> Schedule:
    """The schedule, refused unless it is still on the programme or waiting for approval."""
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    if schedule.status not in OPEN:
        raise ScheduleClosed(
            f"schedule {schedule_id} is {schedule.status}: only a scheduled or pending schedule "
            f"can be {verb}"
        )
    return schedule


class ScheduleEdits:
    def __init__(
        self, db: Database, registry: Registry, timelines: TimelineService, clock: Clock
    ) -> None:
        self.db = db
        self.registry = registry
        self.timelines = timelines
        self.clock = clock

    async def revise(self, schedule_id: int, new: Revision) -> Schedule:
        """Checked as a new schedule would be (beside every other, not itself), all or nothing;
        the loudspeakers it reached before and those it reaches now get their timelines again."""
        exdates = parse_exdates(new.plan.exdates)
        rec = checked_recurrence(as_utc(new.starts_at), new.plan.rrule, exdates, new.plan.ends_on)
        targets = new.targets
        if not targets.areas and not targets.nodes and not targets.groups:
            raise Invalid("no targets: give at least one area, group or node")
        with self.db.session() as session:
            schedule = open_schedule(session, schedule_id, "changed")
            was_on_air = schedule.status == ScheduleStatus.scheduled
            if session.get(Announcement, new.announcement_id) is None:
                raise NotFound(f"announcement {new.announcement_id} does not exist")
            ensure_targets_exist(session, targets)
            before = affected_nodes(session, self.registry, schedule_id)
            schedule.announcement_id = new.announcement_id
            schedule.title = new.plan.title.strip()
            schedule.starts_at = utc_datetime(rec.start_ms)
            schedule.rrule = rec.rule
            schedule.exdates = exdates_json(exdates)
            schedule.ends_on = new.plan.ends_on
            schedule.priority = new.priority
            schedule.on_preempt = new.plan.on_preempt
            schedule.status = new.status
            for old in session.exec(
                select(ScheduleTarget).where(ScheduleTarget.schedule_id == schedule_id)
            ).all():
                session.delete(old)
            session.flush()
            add_targets(session, schedule_id, targets)
            session.add(schedule)
            session.flush()
            reached = list(targets.nodes)
            for group in members(session, targets.groups).values():
                reached += sorted(group - set(reached))
            ensure_fits(
                session,
                self.registry.area_tree(session),
                self.timelines.media_url,
                schedule,
                targets.areas,
                reached,
                self.clock.now_ms(),
                self.timelines.horizon_ms,
            )
            session.commit()
            session.refresh(schedule)
            after = affected_nodes(session, self.registry, schedule_id)
        if was_on_air or schedule.status == ScheduleStatus.scheduled:
            await self.timelines.refresh(before | after)
        return schedule

    async def skip_day(self, schedule_id: int, day: date) -> Schedule:
        """Leave out every broadcast of a repeating schedule on one local day."""
        check_day(day, "day")
        with self.db.session() as session:
            schedule = open_schedule(session, schedule_id, "changed")
            if schedule.rrule is None:
                raise OnceHasNoDays(
                    f"schedule {schedule_id} plays once: there is no day to skip, cancel it instead"
                )
            lo, hi = local_day_window(day, day)
            found = occurrences(recurrence_of(schedule), lo, hi)
            if not found:
                raise NoBroadcastThatDay(
                    f"schedule {schedule_id} has no broadcast on {label_date(day)} "
                    "(or that day is already skipped)"
                )
            if found[-1] <= self.clock.now_ms():
                raise DayAlreadyPlayed(
                    f"every broadcast of schedule {schedule_id} on {label_date(day)} has started "
                    "already: there is nothing left to skip that day"
                )
            stored = list(json.loads(schedule.exdates or "[]"))
            schedule.exdates = exdates_json(parse_exdates([*stored, day.isoformat()]))
            session.add(schedule)
            session.commit()
            session.refresh(schedule)
            nodes = affected_nodes(session, self.registry, schedule_id)
        if schedule.status == ScheduleStatus.scheduled:
            await self.timelines.refresh(nodes)
        return schedule
