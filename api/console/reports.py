"""The province's reports in the console: an area's figures for a period, with charts (hours
aired per day and per category), the child areas side by side, and the files to download."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.content import today
from api.console.monitoring import chart
from api.console.pages import LOCAL, ApiRefused, ConsoleDep, day_from_text
from controller.reports.periods import Period

router = APIRouter(prefix="/console", include_in_schema=False)
CATEGORIES = ("policy_law", "local_news", "emergency", "relay", "live")
BAR_WIDTH = 600


def number(value: float | None, lang: str, digits: int = 1) -> str:
    """A figure as people read it: comma decimals in Vietnamese, "–" when unknown."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}" if digits else f"{value:,.0f}"
    if lang == "vi":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def figures(f: dict[str, Any], lang: str) -> dict[str, str]:
    rate, avail = f["confirmation_rate"], f["availability"]
    return {
        "plays": number(f["plays_total"], lang, 0),
        "hours": number(f["aired_s_total"] / 3600, lang),
        "alerts": number(f["alerts"], lang, 0),
        "confirmed": number(f["alert_confirmed"], lang, 0)
        + "/"
        + number(f["alert_targets"], lang, 0),
        "rate": "–" if rate is None else number(rate * 100, lang) + " %",
        "confirm_median": number(f["confirm_median_s"], lang),
        "confirm_max": number(f["confirm_max_s"], lang),
        "availability": "–" if avail is None else number(avail * 100, lang) + " %",
        "faults": f"{number(f['faults_cleared'], lang, 0)}/{number(f['faults'], lang, 0)}",
        "repair_median": number(
            None if f["repair_median_s"] is None else f["repair_median_s"] / 3600, lang
        ),
    }


def bars(total: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """Hours aired per category, as bars on one scale (the longest fills the width)."""
    hours = {c: total["aired_s"][c] / 3600 for c in CATEGORIES}
    top = max(hours.values()) or 1.0
    return [
        {
            "category": c,
            "hours": number(hours[c], lang),
            "plays": number(total["plays"][c], lang, 0),
            "width": round(hours[c] / top * BAR_WIDTH, 1),
        }
        for c in CATEGORIES
    ]


@router.get("/reports", response_class=HTMLResponse)
async def reports(
    console: ConsoleDep, area: str | None = None, period: str = "month", day: str | None = None
) -> HTMLResponse:
    console.allow("reports")
    areas = await console.areas()
    area_id = area or console.home_area(areas)
    error, chosen = "", today()
    chosen_period = period if period in Period.__members__ else Period.month.value
    if day:  # typed dd/mm/yyyy (links carry yyyy-mm-dd); a slip is named and kept
        typed = day_from_text(day)
        if typed is None:
            error = console.t("playback.bad_day")
        else:
            chosen = typed
    report: dict[str, Any] | None = None
    if area_id is not None and not error:
        try:
            report = await console.get(
                "/api/v1/reports", area_id=area_id, period=chosen_period, date=chosen.isoformat()
            )
        except ApiRefused:
            error = console.t("error.area")
    ctx: dict[str, Any] = {}
    if report is not None:
        lang = console.lang
        points = [
            {
                "ts": datetime.combine(date.fromisoformat(d["day"]), time(12), LOCAL).isoformat(),
                "hours": d["aired_s"] / 3600,
            }
            for d in report["daily_aired_s"]
        ]
        query = urlencode(
            {"area_id": area_id, "period": chosen_period, "date": chosen.isoformat(), "lang": lang}
        )
        ctx = {
            "total": figures(report["total"], lang),
            "bars": bars(report["total"], lang),
            "daily": chart(points, "hours", lang),
            "rows": [
                {"id": r["area_id"], "name": r["name"], "kind": r["kind"]} | figures(r, lang)
                for r in report["rows"]
            ],
            "first": date.fromisoformat(report["first_day"]),
            "last": date.fromisoformat(report["last_day"]),
            "csv": f"/api/v1/reports.csv?{query}",
            "xlsx": f"/api/v1/reports.xlsx?{query}",
            "sources": report["total"]["sources"],
        }
    return console.render(
        "reports.html",
        "reports",
        areas=areas,
        area_id=area_id,
        period=chosen_period,
        periods=[p.value for p in Period],
        day=chosen,
        day_typed=(day or "")[:10] if error else chosen.strftime("%d/%m/%Y"),
        error=error,
        report=report,
        **ctx,
    )
