"""The playback log: per broadcast and loudspeaker, what was planned and what was reported."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import col, select

from api.console.i18n import Words, language_of
from api.csv_export import FileFormat, table_response
from api.deps import GuardDep, ServiceDep, SessionDep
from api.programme_schemas import PlaybackRow
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import Area, Node
from controller.programme.programme import LogRow, check_day, playback_log
from schedules.localtime import as_local

router = APIRouter(prefix="/playback-log", tags=["programme"])
DayQuery = Annotated[date, Query(description="Local day, YYYY-MM-DD")]
# What a person reads first (time, title, loudspeaker and village, result), then the ids.
EXPORT_COLUMNS = (
    "planned_start",
    "title",
    "node_name",
    "village",
    "state",
    "started_at",
    "finished_at",
    "planned_duration_s",
    "detail",
    "schedule_id",
    "node_id",
    "item_id",
)


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


def _export(
    request: Request,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    day: date,
    fmt: FileFormat,
) -> Response:
    found = rows_for(guard, session, service, area_id, day)
    ids = {r.node_id for r in found}
    nodes = {n.id: n for n in session.exec(select(Node).where(col(Node.id).in_(ids))).all()}
    areas = {n.area_id for n in nodes.values()}
    names = {a.id: a.name for a in session.exec(select(Area).where(col(Area.id).in_(areas)))}
    words = Words(language_of(request))

    def row(r: PlaybackRow) -> list[object]:
        node = nodes.get(r.node_id)
        return [
            r.planned_start,
            r.title,
            node.name if node else "",
            names.get(node.area_id, node.area_id) if node else "",
            words(f"state.{r.state}"),
            r.started_at,
            r.finished_at,
            r.planned_duration_ms / 1000,
            r.detail,
            r.schedule_id,
            r.node_id,
            r.item_id,
        ]

    name = f"playback-{area_id}-{day.isoformat()}"
    return table_response(request, "playback", EXPORT_COLUMNS, map(row, found), name, fmt)


@router.get(".csv", response_class=Response)
def get_playback_log_csv(
    request: Request,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    date: DayQuery,
) -> Response:
    """Headers in the console's language (`?lang=`), times in Viet Nam time, with a BOM."""
    return _export(request, guard, session, service, area_id, date, "csv")


@router.get(".xlsx", response_class=Response)
def get_playback_log_xlsx(
    request: Request,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    date: DayQuery,
) -> Response:
    """The same table as an Excel workbook."""
    return _export(request, guard, session, service, area_id, date, "xlsx")
