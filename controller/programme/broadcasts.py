"""Announcements and schedules: the operations officers perform, validated and all-or-nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session, select

from audio import AudioError, UploadRefused
from controller.core.db import Database
from controller.core.errors import Invalid, NotFound, StorageFull, is_no_space
from controller.core.models import (
    Announcement,
    Area,
    ContentCategory,
    Node,
    NodeGroup,
    Schedule,
    ScheduleStatus,
    ScheduleTarget,
)
from controller.core.time import as_utc, utc_datetime
from controller.fleet.groups import members
from controller.fleet.registry import Registry
from controller.programme.admission import ensure_fits
from controller.programme.recurrences import checked_recurrence, exdates_json, parse_exdates
from controller.programme.speech import Speech
from controller.programme.timelines import TimelineService, affected_nodes
from protocol import Priority
from protocol.clock import Clock
from schedules import Policy

log = logging.getLogger(__name__)


@dataclass
class Repetition:
    """How a schedule repeats and yields; the defaults are one broadcast that pre-empts."""

    rrule: str | None = None
    exdates: list[str] = field(default_factory=list)
    ends_on: date | None = None
    on_preempt: Policy = Policy.preempt
    title: str = ""


@dataclass
class Targets:
    areas: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


def ensure_targets_exist(session: Session, targets: Targets) -> None:
    """Invalid names the first target that does not exist (or a node that is retired)."""
    for area_id in targets.areas:
        if session.get(Area, area_id) is None:
            raise Invalid(f"area {area_id!r} does not exist")
    for node_id in targets.nodes:
        node = session.get(Node, node_id)
        if node is None or node.retired:
            raise Invalid(f"node {node_id!r} does not exist or is retired")
    for group_id in targets.groups:
        if session.get(NodeGroup, group_id) is None:
            raise Invalid(f"group {group_id!r} does not exist")


def add_targets(session: Session, schedule_id: int, targets: Targets) -> None:
    """The schedule's target rows, each target once."""
    for kind, ids in (("area", targets.areas), ("node", targets.nodes), ("group", targets.groups)):
        for target_id in dict.fromkeys(ids):
            session.add(ScheduleTarget(schedule_id=schedule_id, kind=kind, target_id=target_id))


class Broadcasts:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        timelines: TimelineService,
        speech: Speech,
        clock: Clock,
        max_text_chars: int,
    ) -> None:
        self.db = db
        self.registry = registry
        self.timelines = timelines
        self.speech = speech
        self.clock = clock
        self.max_text_chars = max_text_chars

    async def create_announcement(
        self,
        title: str,
        text: str,
        area_id: str | None = None,
        author: str = "",
        engine: str | None = None,
        repeat: int = 1,
        category: ContentCategory = ContentCategory.local_news,
    ) -> Announcement:
        title, text = title.strip(), text.strip()
        if not title:
            raise Invalid("title is empty: give the announcement a short title")
        if not text:
            raise Invalid("text is empty: write what the loudspeakers should say")
        if len(text) > self.max_text_chars:
            raise Invalid(
                f"text is {len(text)} characters; the limit is {self.max_text_chars}. "
                "Split it into several announcements."
            )
        try:
            result = await self.speech.render(text, engine, repeat, area_id)
        except ValueError as exc:  # an unknown engine name
            raise Invalid(str(exc)) from exc
        except AudioError as exc:
            if is_no_space(exc):
                raise StorageFull(
                    "no space left for media: the announcement was not saved; free disk space"
                ) from exc
            raise Invalid(f"the text could not be turned into speech: {exc}") from exc
        ann = Announcement(
            title=title,
            text=text,
            normalized_text=result.normalized_text,
            media_sha256=result.sha256,
            media_size=result.size,
            duration_ms=int(result.duration_s * 1000),
            loudness_lufs=result.integrated_lufs,
            engine=result.engine,
            voice=result.voice,
            area_id=area_id,
            created_by=author,
            fallback_from=result.fallback_from,
            repeat=repeat,
            category=category,
        )
        with self.db.session() as session:
            session.add(ann)
            session.commit()
            session.refresh(ann)
        log.info("announcement %s rendered (%s, %.1f s)", ann.id, ann.engine, result.duration_s)
        return ann

    async def create_from_upload(
        self,
        title: str,
        path: Path,
        filename: str,
        area_id: str | None,
        author: str,
        category: ContentCategory = ContentCategory.local_news,
    ) -> Announcement:
        title = title.strip()
        if not title:
            raise Invalid("title is empty: give the recording a short title")
        try:
            result = await self.speech.ingest(path)
        except UploadRefused as exc:
            raise Invalid(
                f"the recording was refused ({exc.reason}): {exc.message}",
                code=f"upload_{exc.reason}",
            ) from exc
        ann = Announcement(
            title=title,
            text=f"[{filename[:150]}]",
            normalized_text="",
            media_sha256=result.sha256,
            media_size=result.size,
            duration_ms=int(result.duration_s * 1000),
            loudness_lufs=result.integrated_lufs,
            engine="upload",
            voice=result.source_format,
            area_id=area_id,
            created_by=author,
            source="upload",
            category=category,
        )
        with self.db.session() as session:
            session.add(ann)
            session.commit()
            session.refresh(ann)
        return ann

    async def create_schedule(
        self,
        announcement_id: int,
        starts_at: datetime,
        targets: Targets,
        priority: Priority,
        author: str = "",
        plan: Repetition | None = None,
        status: ScheduleStatus = ScheduleStatus.scheduled,
    ) -> Schedule:
        """Validate and store a schedule in one transaction; `starts_at` is the rule's DTSTART."""
        plan = plan or Repetition()
        exdates = parse_exdates(plan.exdates)
        rec = checked_recurrence(as_utc(starts_at), plan.rrule, exdates, plan.ends_on)
        if not targets.areas and not targets.nodes and not targets.groups:
            raise Invalid("no targets: give at least one area, group or node")
        now = self.clock.now_ms()
        with self.db.session() as session:
            ann = session.get(Announcement, announcement_id)
            if ann is None:
                raise NotFound(f"announcement {announcement_id} does not exist")
            ensure_targets_exist(session, targets)
            reached = list(targets.nodes)
            for group in members(session, targets.groups).values():
                reached += sorted(group - set(reached))
            schedule = Schedule(
                announcement_id=announcement_id,
                title=plan.title.strip(),
                starts_at=utc_datetime(rec.start_ms),
                rrule=rec.rule,
                exdates=exdates_json(exdates),
                ends_on=plan.ends_on,
                priority=priority,
                on_preempt=plan.on_preempt,
                status=status,
                created_by=author,
            )
            session.add(schedule)
            session.flush()
            assert schedule.id is not None
            add_targets(session, schedule.id, targets)
            # Checked before the commit: a refused schedule leaves nothing behind.
            ensure_fits(
                session,
                self.registry.area_tree(session),
                self.timelines.media_url,
                schedule,
                targets.areas,
                reached,
                now,
                self.timelines.horizon_ms,
            )
            session.commit()
            session.refresh(schedule)
            nodes = affected_nodes(session, self.registry, schedule.id)
        if status == ScheduleStatus.scheduled:
            await self.timelines.refresh(nodes)
        return schedule

    async def cancel_schedule(self, schedule_id: int) -> Schedule:
        with self.db.session() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None:
                raise NotFound(f"schedule {schedule_id} does not exist")
            schedule.status = ScheduleStatus.cancelled
            session.add(schedule)
            session.commit()
            nodes = affected_nodes(session, self.registry, schedule_id)
        await self.timelines.refresh(nodes)
        return schedule

    def target_areas(self, targets: Targets) -> list[str]:
        """The areas a set of targets touches: target areas, and the areas of target nodes."""
        with self.db.session() as session:
            areas = list(targets.areas)
            for node_id in targets.nodes:
                node = session.get(Node, node_id)
                areas.append(node.area_id if node is not None else f"unknown-node:{node_id}")
            for group_id in targets.groups:
                group = session.get(NodeGroup, group_id)
                areas.append(group.area_id if group is not None else f"unknown-group:{group_id}")
        return areas

    def targets_of(self, schedule_id: int) -> Targets:
        with self.db.session() as session:
            rows = session.exec(
                select(ScheduleTarget).where(ScheduleTarget.schedule_id == schedule_id)
            ).all()
        return Targets(
            areas=[t.target_id for t in rows if t.kind == "area"],
            nodes=[t.target_id for t in rows if t.kind == "node"],
            groups=[t.target_id for t in rows if t.kind == "group"],
        )
