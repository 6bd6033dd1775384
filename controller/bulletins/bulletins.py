"""A bulletin received: its content made an announcement, then either scheduled by the rules
officers set or left waiting for their approval."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dateutil.rrule import rrulestr
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controller.core.errors import Conflict, Invalid
from controller.core.models import Announcement, Area, Bulletin, BulletinRule, ScheduleStatus
from controller.core.time import LOCAL, as_utc, utc_datetime
from controller.fleet.registry import Registry
from controller.programme.broadcasts import Broadcasts, Repetition, Targets
from protocol import Priority
from protocol.clock import Clock
from schedules import AreaTree, Policy

log = logging.getLogger(__name__)

# A bulletin waiting for approval is proposed this long after it arrives (or its validity
# starts), so that an officer has time to hear it first.
APPROVAL_LEAD = timedelta(minutes=10)
# A rule never schedules sooner than this: the nodes need time to fetch the audio.
RULE_LEAD = timedelta(minutes=1)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CATEGORY = re.compile(r"^[a-z0-9_-]{0,40}$")


@dataclass
class BulletinIn:
    """What an upper level sends with the content."""

    external_id: str
    title: str
    category: str = ""
    areas: list[str] = field(default_factory=list)
    priority: Priority = Priority.priority
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    starts_at: datetime | None = None  # the time asked for; otherwise soon after arrival


@dataclass
class Received:
    bulletin: Bulletin
    new: bool


def check_rule(
    area_id: str, at_time: str, weekdays: str, targets: list[str], tree: AreaTree
) -> str:
    """The rule's weekdays, normalised; Invalid says what is wrong."""
    if not HHMM.match(at_time):
        raise Invalid("time: give the local time as HH:MM (e.g. 06:00)")
    days = [d.strip().upper() for d in weekdays.split(",") if d.strip()]
    bad = [d for d in days if d not in WEEKDAYS]
    if bad:
        raise Invalid(f"weekdays: use MO, TU, WE, TH, FR, SA, SU (not {', '.join(bad)})")
    if not targets:
        raise Invalid("targets: give at least one area to relay the bulletins to")
    outside = [t for t in targets if t not in tree.parents or not tree.contains(area_id, t)]
    if outside:
        raise Invalid(f"targets outside the rule's area ({area_id}): {', '.join(outside)}")
    return ",".join(d for d in WEEKDAYS if d in days)


def next_slot(rule: BulletinRule, after: datetime, until: datetime | None) -> datetime | None:
    """The rule's first local time at or after `after`, before `until`; None when there is none."""
    local_after = after.astimezone(LOCAL)
    hour, minute = (int(x) for x in rule.at_time.split(":"))
    start = local_after.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if start < local_after:
        start += timedelta(days=1)
    spec = "FREQ=DAILY" + (f";BYDAY={rule.weekdays}" if rule.weekdays else "")
    slot = rrulestr(spec, dtstart=start.replace(tzinfo=None)).after(
        start.replace(tzinfo=None) - timedelta(seconds=1), inc=True
    )
    if slot is None:
        return None
    when = as_utc(slot)
    if until is not None and when >= until:
        return None
    return when


class BulletinDesk:
    """Receives bulletins and turns them into schedules."""

    def __init__(self, broadcasts: Broadcasts, registry: Registry, clock: Clock) -> None:
        self.broadcasts = broadcasts
        self.registry = registry
        self.clock = clock
        self.db = broadcasts.db

    def now(self) -> datetime:
        return utc_datetime(self.clock.now_ms())

    def existing(self, source: str, external_id: str) -> Bulletin | None:
        with self.db.session() as session:
            return session.exec(
                select(Bulletin).where(
                    Bulletin.source == source, Bulletin.external_id == external_id
                )
            ).first()

    def check(self, data: BulletinIn) -> BulletinIn:
        """Invalid names the first thing wrong, before any audio is rendered or stored."""
        data.title = data.title.strip()
        if not data.title:
            raise Invalid("title is empty: give the bulletin a short title")
        if not data.external_id.strip() or len(data.external_id) > 300:
            raise Invalid("id: give the bulletin's own id in your system (1 to 300 characters)")
        if not CATEGORY.match(data.category):
            raise Invalid("category: lowercase letters, digits, '-' or '_' (max 40)")
        if data.priority not in (Priority.normal, Priority.priority):
            raise Invalid("priority: normal or priority; emergencies go through alerts")
        if not data.areas:
            raise Invalid("areas: give at least one target area")
        with self.db.session() as session:
            for area_id in data.areas:
                if session.get(Area, area_id) is None:
                    raise Invalid(f"area {area_id!r} does not exist")
        for name in ("valid_from", "valid_until", "starts_at"):
            value = getattr(data, name)
            if value is not None:
                setattr(data, name, as_utc(value))
        now = self.now()
        if data.valid_until is not None:
            if data.valid_until <= now:
                raise Invalid("valid_until has passed: the bulletin would never be aired")
            if data.valid_from is not None and data.valid_from >= data.valid_until:
                raise Invalid("valid_from must come before valid_until")
        if data.starts_at is not None:
            if data.starts_at <= now:
                raise Invalid("starts_at has passed: give a time in the future or none")
            if data.valid_until is not None and data.starts_at >= data.valid_until:
                raise Invalid("starts_at is after valid_until")
        return data

    def claim(self, data: BulletinIn, source: str) -> Received:
        """The bulletin's row, made before anything is rendered: the unique (source, id) lets
        one of two simultaneous sends of the same bulletin through; the other gets the row."""
        bulletin = Bulletin(
            source=source,
            external_id=data.external_id,
            title=data.title,
            category=data.category,
            priority=data.priority.value,
            areas=json.dumps(data.areas),
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            received_at=self.now(),
        )
        with self.db.session() as session:
            session.add(bulletin)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                known = self.existing(source, data.external_id)
                if known is None:
                    raise
                return Received(known, False)
            session.refresh(bulletin)
        return Received(bulletin, True)

    def forget(self, bulletin: Bulletin) -> None:
        """A bulletin that could not be received leaves no row: the sender may send it again."""
        with self.db.session() as session:
            row = session.get(Bulletin, bulletin.id)
            if row is not None:
                session.delete(row)
                session.commit()

    async def place(
        self, data: BulletinIn, bulletin: Bulletin, announcement: Announcement
    ) -> Bulletin:
        """Schedule the bulletin: by each matching rule, else one draft per area for approval.
        All or nothing: when a draft is refused, the schedules made so far are cancelled."""
        assert announcement.id is not None
        source = bulletin.source
        now = self.now()
        placed: list[dict[str, object]] = []
        made: list[int] = []
        with self.db.session() as session:
            tree = self.registry.area_tree(session)
            rules = matching_rules(session, tree, source, data.category, data.areas)
        covered: set[str] = set()
        # Beside a broadcast of the same priority, a bulletin waits its turn instead of clashing.
        plan = Repetition(title=data.title[:200], on_preempt=Policy.queue)
        try:
            for rule in rules:
                after = max(now + RULE_LEAD, data.valid_from or now)
                slot = next_slot(rule, after, data.valid_until)
                targets = json.loads(rule.targets)
                if slot is None:
                    placed.append({"rule_id": rule.id, "areas": targets, "outcome": "no_slot"})
                    continue
                try:
                    schedule = await self.broadcasts.create_schedule(
                        announcement.id,
                        slot,
                        Targets(areas=targets),
                        data.priority,
                        author=f"rule:{rule.id}",
                        plan=plan,
                        status=ScheduleStatus.scheduled,
                    )
                except (Invalid, Conflict) as exc:
                    # The rule's slot is in quiet hours or taken: officers decide instead.
                    log.info("bulletin rule %s could not schedule: %s", rule.id, exc)
                    placed.append({"rule_id": rule.id, "areas": targets, "outcome": str(exc)[:200]})
                    continue
                assert schedule.id is not None
                made.append(schedule.id)
                placed.append({"schedule_id": schedule.id, "rule_id": rule.id, "areas": targets})
                covered.add(rule.area_id)
            waiting = [a for a in data.areas if not any(tree.contains(c, a) for c in covered)]
            # One draft per area, so that each area's officers approve their own.
            start = data.starts_at or max(now + APPROVAL_LEAD, data.valid_from or now)
            for area_id in waiting:
                schedule = await self.broadcasts.create_schedule(
                    announcement.id,
                    start,
                    Targets(areas=[area_id]),
                    data.priority,
                    author=source[:64],
                    plan=plan,
                    status=ScheduleStatus.pending,
                )
                assert schedule.id is not None
                made.append(schedule.id)
                placed.append({"schedule_id": schedule.id, "rule_id": None, "areas": [area_id]})
        except BaseException:
            for schedule_id in made:
                await self.broadcasts.cancel_schedule(schedule_id)
            raise
        with self.db.session() as session:
            row = session.get(Bulletin, bulletin.id)
            assert row is not None
            row.announcement_id = announcement.id
            row.schedules = json.dumps(placed)
            session.add(row)
            session.commit()
            session.refresh(row)
        return row

    async def receive_text(self, data: BulletinIn, source: str, text: str) -> Received:
        known = self.existing(source, data.external_id)
        if known is not None:
            return Received(known, False)
        data = self.check(data)
        claimed = self.claim(data, source)
        if not claimed.new:
            return claimed
        try:
            ann = await self.broadcasts.create_announcement(
                data.title, text, area_id=content_area(data), author=source[:64]
            )
            return Received(await self.place(data, claimed.bulletin, ann), True)
        except BaseException:
            self.forget(claimed.bulletin)
            raise

    async def receive_audio(
        self, data: BulletinIn, source: str, path: Path, filename: str
    ) -> Received:
        known = self.existing(source, data.external_id)
        if known is not None:
            return Received(known, False)
        data = self.check(data)
        claimed = self.claim(data, source)
        if not claimed.new:
            return claimed
        try:
            ann = await self.broadcasts.create_from_upload(
                data.title, path, filename, content_area(data), source[:64]
            )
            return Received(await self.place(data, claimed.bulletin, ann), True)
        except BaseException:
            self.forget(claimed.bulletin)
            raise


def matching_rules(
    session: Session, tree: AreaTree, source: str, category: str, areas: list[str]
) -> list[BulletinRule]:
    """Active rules for this source and category whose area the bulletin reaches (one of its
    target areas is the rule's area or above it)."""
    rules = session.exec(
        select(BulletinRule)
        .where(col(BulletinRule.active).is_(True))
        .order_by(col(BulletinRule.id))
    ).all()
    return [
        r
        for r in rules
        if r.source in ("", source)
        and r.category in ("", category)
        and any(tree.contains(a, r.area_id) for a in areas)
    ]


def content_area(data: BulletinIn) -> str | None:
    """A bulletin for one area is that area's content (seen there, above and below it); one for
    several belongs to the upper level, seen everywhere."""
    return data.areas[0] if len(data.areas) == 1 else None
