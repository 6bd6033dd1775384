"""Scheduling errors whose messages tell a district officer exactly what to change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schedules.conflicts import Clash
    from schedules.quiet import QuietViolation

# The API shows these messages as they are; past this many items a list stops being read.
MAX_LISTED = 5


class ScheduleError(ValueError):
    """A schedule cannot be accepted as given; `str(err)` says what to fix."""


class InvalidRecurrence(ScheduleError):
    """The repetition rule is malformed, unsupported, empty or too dense."""


class InvalidQuietHours(ScheduleError):
    """Quiet hours are not two "HH:MM" times."""


class InvalidCandidate(ScheduleError):
    """An occurrence has an impossible duration or policy."""


class ScheduleConflict(ScheduleError):
    """The new schedule overlaps an item of the same priority on at least one loudspeaker."""

    def __init__(self, clashes: Sequence[Clash]) -> None:
        self.clashes = list(clashes)
        super().__init__(_conflict_message(self.clashes))


class QuietHoursViolation(ScheduleError):
    """A normal-priority occurrence falls in the quiet hours of an area it targets."""

    def __init__(self, violations: Sequence[QuietViolation]) -> None:
        self.violations = list(violations)
        super().__init__(_quiet_message(self.violations))


def _more(total: int) -> str:
    return f"; and {total - MAX_LISTED} more" if total > MAX_LISTED else ""


def _conflict_message(clashes: Sequence[Clash]) -> str:
    # One pair usually clashes on every loudspeaker of a commune: name each pair once.
    nodes: dict[tuple[str, str], set[str]] = {}
    for c in clashes:
        nodes.setdefault((c.new.item_id, c.existing.item_id), set()).add(c.node_id)
    first = {(c.new.item_id, c.existing.item_id): c for c in clashes}
    parts = []
    for key, clash in list(first.items())[:MAX_LISTED]:
        count = len(nodes[key])
        where = f"on loudspeaker {clash.node_id}" if count == 1 else f"on {count} loudspeakers"
        parts.append(f"{clash.new.describe()} overlaps {clash.existing.describe()} {where}")
    return (
        "; ".join(parts)
        + _more(len(first))
        + ". Both have the same priority: choose another time, shorten the announcement, "
        "or let the new schedule queue after the existing one."
    )


def _quiet_message(violations: Sequence[QuietViolation]) -> str:
    parts = [v.describe() for v in violations[:MAX_LISTED]]
    return (
        "; ".join(parts)
        + _more(len(violations))
        + ". Normal announcements may not play in quiet hours: choose a time outside them, "
        "or raise the priority if the announcement is urgent."
    )
