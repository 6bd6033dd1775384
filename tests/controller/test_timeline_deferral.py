"""Which begun occurrences keep the place a node was told (`TimelineService.deferred`), read
from its deliveries on a real database."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.core.db import Database
from controller.core.models import Announcement, Delivery, DeliveryState, Node, Schedule
from controller.core.time import utc_datetime
from controller.programme.timelines import TimelineService
from protocol import MediaRef
from schedules import KEPT_AFTER_END_MS, Occurrence, Part, Policy

MEDIA = MediaRef(url="http://x/m.mp3", sha256="0" * 64, size=1)
START = int(datetime(2026, 12, 14, 1, 0, tzinfo=UTC).timestamp() * 1000)
SHIFT = 60_000  # behind a one-minute bulletin
PARTS = (Part(0, 20_000, MEDIA), Part(20_000, 30_000, MEDIA))


def playlist() -> Occurrence:
    return Occurrence(
        item_id=f"s1@{START}",
        broadcast_id="1",
        start_ms=START,
        duration_ms=50_000,
        media=MEDIA,
        areas=frozenset({"xa"}),
        on_preempt=Policy.shift,
        parts=PARTS,
    )


def told(db: Database, states: tuple[DeliveryState, DeliveryState], shift_ms: int = SHIFT) -> None:
    """n1 was told to play the playlist's two parts `shift_ms` after its own start."""
    with db.session() as s:
        s.add(Node(id="n1", name="Loa 1", area_id="xa"))
        s.add(Announcement(id=1, title="t", text="t", media_sha256="0" * 64))
        s.flush()
        s.add(Schedule(id=1, announcement_id=1, starts_at=utc_datetime(START)))
        s.flush()
        for n, (part, state) in enumerate(zip(PARTS, states, strict=True)):
            s.add(
                Delivery(
                    item_id=f"s1@{START}#{n}",
                    schedule_id=1,
                    node_id="n1",
                    planned_start=utc_datetime(START + shift_ms + part.offset_ms),
                    planned_duration_ms=part.duration_ms,
                    state=state,
                )
            )
        s.commit()


def deferred(db: Database, now: int) -> dict[str, set[str]]:
    with db.session() as s:
        return TimelineService.deferred(s, None, [playlist()], now)


def test_a_shifted_playlist_keeps_its_place_while_a_later_part_is_to_play(commune_database):
    told(commune_database, (DeliveryState.finished, DeliveryState.downloaded))
    occurrence = playlist().item_id
    # Its first part has played at the shifted place; the second is still to come there.
    assert deferred(commune_database, START + SHIFT + 20_500) == {"n1": {occurrence}}
    # Ended a moment ago: a node may still be playing its last part late.
    end = START + SHIFT + 50_000
    assert deferred(commune_database, end + KEPT_AFTER_END_MS - 1) == {"n1": {occurrence}}
    assert deferred(commune_database, end + KEPT_AFTER_END_MS) == {}


def test_a_playlist_played_to_its_end_is_no_longer_deferred(commune_database):
    told(commune_database, (DeliveryState.finished, DeliveryState.finished))
    assert deferred(commune_database, START + SHIFT + 49_000) == {}


def test_a_playlist_at_its_own_start_is_not_deferred(commune_database):
    """Told to play at its own start, it is begun there: it can only be cut."""
    told(commune_database, (DeliveryState.finished, DeliveryState.downloaded), shift_ms=0)
    assert deferred(commune_database, START + 25_000) == {}
