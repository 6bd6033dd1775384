"""Builders shared by the scheduling tests: local times as ms, candidates, occurrences, strategies."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

from protocol import MediaRef, Priority
from schedules import Candidate, Occurrence, Policy
from schedules.localtime import LOCAL_TZ

MIN = 60_000
BASE = 1_764_540_000_000  # 05:00 01/12/2025 in Vietnam
MEDIA = MediaRef(url="http://x/m.mp3", sha256="0" * 64, size=1)


def at(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2025) -> int:
    """Epoch ms of a Vietnamese local time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ).timestamp() * 1000)


def cand(
    name: str,
    start: int,
    minutes: float,
    priority: Priority = Priority.normal,
    policy: Policy = Policy.preempt,
    schedule: str | None = None,
    latest_end: int | None = None,
) -> Candidate:
    return Candidate(
        item_id=f"{name}@{start}",
        schedule_id=schedule or name,
        start_ms=start,
        duration_ms=int(minutes * MIN),
        priority=priority,
        title=name,
        on_preempt=policy,
        latest_end_ms=latest_end,
    )


def occ(
    name: str,
    start: int,
    minutes: float,
    areas: set[str],
    priority: Priority = Priority.normal,
    policy: Policy = Policy.preempt,
    schedule: str = "1",
) -> Occurrence:
    return Occurrence(
        item_id=f"{name}@{start}",
        broadcast_id=schedule,
        start_ms=start,
        duration_ms=int(minutes * MIN),
        media=MEDIA,
        priority=priority,
        title=name,
        areas=frozenset(areas),
        on_preempt=policy,
    )


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    start = BASE + draw(st.integers(0, 4 * 3600)) * 1000
    duration = draw(st.integers(0, 40 * 60)) * 1000
    limit = draw(st.none() | st.integers(0, 3 * 3600).map(lambda s: start + duration + s * 1000))
    return Candidate(
        item_id=f"i{draw(st.integers(0, 10_000))}",
        schedule_id=str(draw(st.integers(1, 20))),
        start_ms=start,
        duration_ms=duration,
        priority=draw(st.sampled_from(list(Priority))),
        on_preempt=draw(st.sampled_from(list(Policy))),
        latest_end_ms=limit,
    )
