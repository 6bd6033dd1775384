"""Reports for the province: an area's figures for a period, as JSON, CSV and Excel, and the
log rows behind every figure (`/reports/sources`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.csv_export import csv_text
from api.deps import GuardDep, ServiceDep, SessionDep
from controller.auth.access import Permission
from controller.core.errors import Invalid
from controller.programme.programme import check_day
from controller.reports.periods import Period, window
from controller.reports.report import OWN, Report, build
from controller.reports.sources import Category
from controller.reports.tables import header, lines, xlsx
from schedules.localtime import as_local, from_ms

router = APIRouter(prefix="/reports", tags=["reports"])
DayQuery = Annotated[date, Query(description="A local day inside the period, YYYY-MM-DD")]
PeriodQuery = Annotated[
    Period, Query(description="day, week (Monday–Sunday), month, quarter, year")
]
LangQuery = Annotated[Literal["vi", "en"], Query(description="Headers: Vietnamese or English")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_for(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    period: Period,
    day: date,
) -> Report:
    guard.check(Permission.read, [area_id])
    check_day(day, "date")
    return build(session, guard.tree, area_id, window(period, day), service.clock.now_ms())


def _sources_url(area_id: str, period: Period, day: date, own: bool = False) -> str:
    url = f"/api/v1/reports/sources?area_id={area_id}&period={period.value}&date={day.isoformat()}"
    return url + "&own=true" if own else url


@router.get("")
def get_report(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    period: PeriodQuery = Period.month,
    date: DayQuery | None = None,
) -> dict[str, Any]:
    """The area's figures for the period containing `date` (today by default), per child area
    (and the area's own loudspeakers, `kind: own`), whose additive figures sum to the total.
    Each row names where its log rows are (`sources`)."""
    day = date or as_local_today(service)
    r = report_for(guard, session, service, area_id, period, day)
    return {
        "area": {"id": r.area_id, "name": r.name, "kind": r.kind},
        "period": period.value,
        "first_day": r.window.first.isoformat(),
        "last_day": r.window.last.isoformat(),
        "categories": [c.value for c in Category],
        "total": r.total.as_dict() | {"sources": _sources_url(area_id, period, day)},
        "rows": [
            {
                "area_id": row.area_id,
                "name": row.name,
                "kind": row.kind,
                **row.figures.as_dict(),
                "sources": _sources_url(row.area_id, period, day, own=row.kind == OWN),
            }
            for row in r.rows
        ],
        "daily_aired_s": [
            {"day": d.isoformat(), "aired_s": ms / 1000} for d, ms in r.daily_aired_ms
        ],
    }


def as_local_today(service: ServiceDep) -> date:
    return from_ms(service.clock.now_ms()).date()


@router.get("/sources")
def get_report_sources(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    period: PeriodQuery = Period.month,
    date: DayQuery | None = None,
    own: bool = False,
) -> dict[str, Any]:
    """The log rows the report's figures come from: plays (`delivery` rows are the playback
    log's, `alert_receipt` rows an alert's confirmations), alert targets, alarms and each
    node's time online with the ids of the state changes it was computed from. With `own`,
    only the loudspeakers registered on the area itself."""
    day = date or as_local_today(service)
    r = report_for(guard, session, service, area_id, period, day)
    src = r.sources

    def keep(area: str) -> bool:
        return area == area_id if own else True

    def t(dt: Any) -> str | None:
        return as_local(dt).isoformat() if dt is not None else None

    return {
        "plays": [
            {
                "source": p.source,
                "id": p.id,
                "node_id": p.node_id,
                "area_id": p.area_id,
                "category": p.category.value,
                "broadcast": p.broadcast,
                "item_id": p.item_id,
                "title": p.title,
                "planned_start": t(p.planned_start),
                "started_at": t(p.started_at),
                "ended_at": t(p.ended_at),
                "aired_s": None if p.aired_ms is None else p.aired_ms / 1000,
            }
            for p in src.plays
            if keep(p.area_id)
        ],
        "not_played": [
            {
                "id": n.id,
                "node_id": n.node_id,
                "area_id": n.area_id,
                "item_id": n.item_id,
                "planned_start": t(n.planned_start),
                "state": n.state,
            }
            for n in src.not_played
            if keep(n.area_id)
        ],
        "alerts": [
            {
                "alert_id": a.alert_id,
                "node_id": a.node_id,
                "area_id": a.area_id,
                "issued_at": t(a.issued_at),
                "receipt_id": a.receipt_id,
                "received_at": t(a.received_at),
                "confirm_s": None if a.delay_ms is None else a.delay_ms / 1000,
            }
            for a in src.alerts
            if keep(a.area_id)
        ],
        "faults": [
            {
                "alarm_id": f.alarm_id,
                "node_id": f.node_id,
                "area_id": f.area_id,
                "kind": f.kind,
                "raised_at": t(f.raised_at),
                "cleared_at": t(f.cleared_at),
                "repair_s": None if f.repair_ms is None else f.repair_ms / 1000,
            }
            for f in src.faults
            if keep(f.area_id)
        ],
        "uptime": [
            {
                "node_id": u.node_id,
                "area_id": u.area_id,
                "online_s": u.online_ms / 1000,
                "known_s": u.known_ms / 1000,
                "state_change_ids": list(u.change_ids),
            }
            for u in src.uptime
            if keep(u.area_id)
        ],
    }


def _filename(r: Report, period: Period, ext: str) -> str:
    return f"report-{r.area_id}-{period.value}-{r.window.first.isoformat()}.{ext}"


@router.get(".csv", response_class=Response)
def get_report_csv(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    period: PeriodQuery = Period.month,
    date: DayQuery | None = None,
    lang: LangQuery = "vi",
) -> Response:
    """UTF-8 with a byte-order mark (so Excel reads the Vietnamese), headers in Vietnamese
    unless `lang=en`; a line per child area, then the total."""
    r = report_for(guard, session, service, area_id, period, date or as_local_today(service))
    body = csv_text(header(lang), lines(r, lang), lang)  # the byte-order mark first
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(r, period, "csv")}"'},
    )


@router.get(".xlsx", response_class=Response)
def get_report_xlsx(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str,
    period: PeriodQuery = Period.month,
    date: DayQuery | None = None,
    lang: LangQuery = "vi",
) -> Response:
    """An Excel workbook: the figures (numbers as numbers) and every play counted, with its
    log row id, in Viet Nam time."""
    r = report_for(guard, session, service, area_id, period, date or as_local_today(service))
    if len(r.sources.plays) > 1_000_000:
        raise Invalid("the report has more than a million plays: ask for a shorter period")
    return Response(
        xlsx(r, lang),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{_filename(r, period, "xlsx")}"'},
    )
