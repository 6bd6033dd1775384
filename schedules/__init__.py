"""The scheduling domain: recurrences, conflicts, quiet hours, the calendar and node timelines.

Pure computation: no broker, no HTTP, no database.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from schedules.candidates import Candidate, Policy
from schedules.conflicts import (
    Adjustment,
    Change,
    Clash,
    Planned,
    Resolution,
    check_new_schedule,
    ensure_no_clash,
    resolve,
)
from schedules.errors import (
    InvalidCandidate,
    InvalidQuietHours,
    InvalidRecurrence,
    QuietHoursViolation,
    ScheduleConflict,
    ScheduleError,
)
from schedules.quiet import QuietHours, drop_quiet, ensure_quiet, quiet_hours_for, quiet_violations
from schedules.timeline import (
    KEPT_AFTER_END_MS,
    AreaTree,
    NodeTimeline,
    Occurrence,
    OccurrenceIndex,
    Part,
    node_timeline,
    occurrence_of,
    plan_node_timeline,
    timeline_digest,
)

if TYPE_CHECKING:
    from schedules.calendar import Broadcast, CalendarEntry, calendar_entries, to_ics
    from schedules.recurrence import Recurrence, occurrences, parse_rrule

# These need python-dateutil and icalendar; loading them on first use keeps the timeline
# (and so the controller) importable where only the core dependencies are installed.
_LAZY = {
    "Broadcast": "schedules.calendar",
    "CalendarEntry": "schedules.calendar",
    "calendar_entries": "schedules.calendar",
    "to_ics": "schedules.calendar",
    "Recurrence": "schedules.recurrence",
    "occurrences": "schedules.recurrence",
    "parse_rrule": "schedules.recurrence",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'schedules' has no attribute {name!r}")


__all__ = [
    "KEPT_AFTER_END_MS",
    "Adjustment",
    "AreaTree",
    "Broadcast",
    "CalendarEntry",
    "Candidate",
    "Change",
    "Clash",
    "InvalidCandidate",
    "InvalidQuietHours",
    "InvalidRecurrence",
    "NodeTimeline",
    "Occurrence",
    "OccurrenceIndex",
    "Part",
    "Planned",
    "Policy",
    "QuietHours",
    "QuietHoursViolation",
    "Recurrence",
    "Resolution",
    "ScheduleConflict",
    "ScheduleError",
    "calendar_entries",
    "check_new_schedule",
    "drop_quiet",
    "ensure_no_clash",
    "ensure_quiet",
    "node_timeline",
    "occurrence_of",
    "occurrences",
    "parse_rrule",
    "plan_node_timeline",
    "quiet_hours_for",
    "quiet_violations",
    "resolve",
    "timeline_digest",
    "to_ics",
]
