"""The playback log: per broadcast and loudspeaker, what was planned and what was reported."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.csv_export import csv_response
from api.deps import GuardDep, ServiceDep, SessionDep
from api.programme_schemas import PlaybackRow
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import Area
from controller.programme.programme import LogRow, check_day, playback_log
from schedules.localtime import as_local

router = APIRouter(prefix="/playback-log", tags=["programme"])
DayQuery = Annotated[date, Query(description="Local day, YYYY-MM-DD")]
COLUMNS = list(PlaybackRow.model_fields)


def rows_for(
    guard: GuardDep, session: SessionDep, service: ServiceDep, area_id: str, day: date
) -> list[PlaybackRow]:
    guard.check(Permission.read, [area_id])
    check_day(day, "date")
    if session.get(Area, area_id) is None:
        raise NotFound(f"area {area_id!r} does not exist")
    found = playback_log(session, guard.tree, area_id, day, service.clock.now_ms())
    return [_public(r) for r in found]


def _local(dt: datetime) -> datetime:
    # Stored times are UTC; a database that drops the offset still means UTC.
    return as_local(dt if dt.tzinfo else dt.replace(tzinfo=UTC))


def _public(r: LogRow) -> PlaybackRow:
    return PlaybackRow(
        item_id=r.item_id,
        schedule_id=r.schedule_id,
        title=r.title,
        node_id=r.node_id,
        planned_start=_local(r.planned_start),
        planned_duration_ms=r.planned_duration_ms,
        state=r.state,
        started_at=_local(r.started_at) if r.started_at else None,
        finished_at=_local(r.finished_at) if r.finished_at else None,
        detail=r.detail,
    )


@router.get("", response_model=list[PlaybackRow])
def get_playback_log(
    guard: GuardDep, session: SessionDep, service: ServiceDep, area_id: str, date: DayQuery
) -> list[PlaybackRow]:
    """Deliveries to the area's loudspeakers that day; unreported past broadcasts are missed."""
    return rows_for(guard, session, service, area_id, date)


@router.get(".csv", response_class=Response)
def get_playback_log_csv(
    guard: GuardDep, session: SessionDep, service: ServiceDep, area_id: str, date: DayQuery
) -> Response:
    rows = (
        [data[c] for c in COLUMNS]
        for data in (
            row.model_dump(mode="json") for row in rows_for(guard, session, service, area_id, date)
        )
    )
    return csv_response(COLUMNS, rows, f"playback-{area_id}-{date.isoformat()}.csv")
