"""What conflict rules work on: one planned playing on one node, and how it yields."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol import Priority
from schedules.errors import InvalidCandidate
from schedules.localtime import clock, label


class Policy(StrEnum):
    """What a schedule's occurrence does when a higher-priority item overlaps it."""

    preempt = "preempt"  # plays until the higher item starts; the rest is lost
    shift = "shift"  # moves after the higher item, if it still ends before its limit
    skip = "skip"  # does not play at all
    queue = "queue"  # like shift, and also waits behind an equal-priority item


@dataclass(frozen=True)
class Candidate:
    """One occurrence of a schedule on one node, before conflicts are resolved.

    `latest_end_ms` bounds how late a shifted or queued item may end; `order` breaks ties
    between equal-priority items that start together (the lower, e.g. the older schedule, wins).
    """

    item_id: str
    schedule_id: str
    start_ms: int
    duration_ms: int
    priority: Priority = Priority.normal
    title: str = ""
    on_preempt: Policy = Policy.preempt
    latest_end_ms: int | None = None
    order: int = 0
    first: bool = False  # placed before every other of its priority (a live broadcast)

    def __post_init__(self) -> None:
        if self.duration_ms < 0:
            raise InvalidCandidate(
                f"{self.name()} at {label(self.start_ms)} has a negative duration "
                f"({self.duration_ms} ms): give its length in milliseconds"
            )
        if not isinstance(self.on_preempt, Policy):
            raise InvalidCandidate(
                f"{self.name()}: '{self.on_preempt}' is not a policy, use one of "
                + ", ".join(p.value for p in Policy)
            )

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    @property
    def rank(self) -> int:
        return self.priority.rank

    def name(self) -> str:
        return f"'{self.title}'" if self.title else f"schedule {self.schedule_id}"

    def describe(self) -> str:
        """How officers read it: name, priority and local times, "HH:MM dd/mm/yyyy"."""
        until = clock(self.end_ms)
        return f"{self.name()} ({self.priority.value}) at {label(self.start_ms)} until {until}"


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Half-open intervals: an item ending at 06:10 and one starting at 06:10 only touch."""
    return a_start < b_end and b_start < a_end


def duration_text(ms: int) -> str:
    seconds = round(ms / 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
