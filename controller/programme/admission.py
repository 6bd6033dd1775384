"""Whether a schedule may go on air: a broadcast still to come, quiet hours, no equal clash."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from sqlmodel import Session, col, select

from controller.core.errors import Conflict, Invalid
from controller.core.models import Announcement, Node, Schedule
from controller.core.time import utc_ms
from controller.programme.occurrences import expand, quiet_map, scheduled_occurrences
from controller.programme.playlists import playlist_parts
from controller.programme.recurrences import next_start, recurrence_of
from schedules import (
    AreaTree,
    Candidate,
    Occurrence,
    QuietHoursViolation,
    ScheduleConflict,
    check_new_schedule,
    ensure_quiet,
)
from schedules.localtime import label

# A repeating schedule is checked at least this far past its next broadcast, so a clash on
# tomorrow's programme is caught when the schedule is written, not when it enters the horizon.
MIN_CHECK_MS = 7 * 24 * 3600 * 1000


def first_future_start(schedule: Schedule, now_ms: int) -> int:
    """The schedule's next broadcast; refused when there is none left."""
    start = utc_ms(schedule.starts_at)
    if schedule.rrule is None:
        if start <= now_ms:
            raise Invalid(
                f"starts_at {label(start)} (Asia/Ho_Chi_Minh) is in the past: choose a later time",
                code="time_in_past",
            )
        return start
    upcoming = next_start(recurrence_of(schedule), now_ms)
    if upcoming is None:
        raise Invalid(
            f"the rule {schedule.rrule} gives no broadcast after now: move the start or the end "
            "into the future",
            code="rule_no_future",
        )
    return upcoming


def ensure_fits(
    session: Session,
    tree: AreaTree,
    media_url: Callable[[str], str],
    schedule: Schedule,
    areas: list[str],
    nodes: list[str],
    now_ms: int,
    horizon_ms: int,
) -> None:
    """Refuse (422) normal broadcasts in a targeted area's quiet hours, and (409) overlaps with
    an item of the same priority on any loudspeaker it reaches, unless it queues."""
    ann = session.get(Announcement, schedule.announcement_id)
    assert ann is not None and schedule.id is not None
    upcoming = first_future_start(schedule, now_ms)
    if schedule.rrule is None:
        lo, hi = upcoming, upcoming + ann.duration_ms + 1
    else:
        lo, hi = now_ms, max(now_ms + horizon_ms, upcoming + MIN_CHECK_MS)
    parts = playlist_parts(session, [ann.id], media_url).get(ann.id, ()) if ann.id else ()
    mine = expand(schedule, media_url, ann, frozenset(areas), frozenset(nodes), lo, hi, parts)
    starts = sorted(o.start_ms for o in mine)
    gaps = [b - a for a, b in pairwise(starts)]
    if gaps and min(gaps) < ann.duration_ms:
        raise Invalid(
            f"{ann.title!r} lasts {ann.duration_ms / 60000:.1f} min but the rule repeats after "
            f"{min(gaps) / 60000:.1f} min: shorten the content or space the broadcasts further"
        )
    candidates = [o.candidate() for o in mine]
    live = select(Node.id, Node.area_id).where(col(Node.retired).is_(False))
    node_areas = dict(session.exec(live).all())
    target_areas = list(areas) + [node_areas[n] for n in nodes if n in node_areas]
    try:
        ensure_quiet(candidates, target_areas, tree, quiet_map(session))
    except QuietHoursViolation as exc:
        raise Invalid(str(exc)) from exc
    existing = scheduled_occurrences(session, media_url, lo, hi, exclude=schedule.id)
    reached = [
        (node_id, tree.lineage(area_id))
        for node_id, area_id in node_areas.items()
        if node_id in nodes or any(a in areas for a in tree.lineage(area_id))
    ]
    clashes = check_new_schedule(
        {n: _on_node(existing, n, lineage) for n, lineage in reached},
        {n: candidates for n, _ in reached},
    )
    if clashes:
        raise Conflict(str(ScheduleConflict(clashes)), code="schedule_clash")


def _on_node(
    occurrences: list[Occurrence], node_id: str, lineage: tuple[str, ...]
) -> list[Candidate]:
    return [o.candidate() for o in occurrences if o.targets(node_id, lineage)]
