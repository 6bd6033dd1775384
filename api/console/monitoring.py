"""Technicians' pages over the device-health API: the alarm list and one node's page."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.device_words import alarm_detail, event_words
from api.console.devices import state_of
from api.console.pages import ApiRefused, ConsoleDep
from controller.auth.access import Permission

router = APIRouter(prefix="/console", include_in_schema=False)
ALARM_STATES = ("active", "open", "acknowledged", "cleared")
# What a node page draws, from each heartbeat (or each hour's average on longer ranges).
CHARTS = (("temperature_c", "°C"), ("signal_dbm", "dBm"), ("volume", "%"), ("battery_pct", "%"))
COMMANDS = ("test_tone", "stop", "resync", "reboot")


@router.get("/alarms", response_class=HTMLResponse)
async def alarm_list(console: ConsoleDep, state: str = "active", kind: str = "") -> HTMLResponse:
    console.allow("alarms")
    state = state if state in (*ALARM_STATES, "all") else "active"
    try:
        rows = await console.get(
            "/api/v1/alarms", state=None if state == "all" else state, kind=kind or None
        )
    except ApiRefused:
        rows, kind = [], ""
    return console.render(
        "alarms.html",
        "alarms",
        alarms=rows,
        state=state,
        kind=kind,
        states=ALARM_STATES,
        can_ack=console.may(Permission.manage_nodes),
        alarm_text=lambda a: alarm_detail(a["kind"], a["detail"], console.t),
    )


def _number(value: float, lang: str) -> str:
    """An axis value as people read one: two decimals below 10, one below 100, none above
    (0,01 hours, 36,5 °C, -67 dBm, 1234 MB), without trailing zeros."""
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    return text.replace(".", ",") if lang == "vi" else text


def chart(
    points: list[dict[str, Any]], field: str, lang: str = "vi", width: int = 600, height: int = 120
) -> dict[str, Any]:
    """An SVG line of one measure over time, with its axes: the values at the top, middle and
    bottom lines (with the unit) and the times under it; drawn by the server, so no chart
    library is needed. Points are placed by their time, so a gap in the reports shows."""
    raw = [
        (p["ts"] if "ts" in p else p.get("hour"), p.get(field, p.get(f"{field}_avg")))
        for p in points
    ]
    values = [(datetime.fromisoformat(t), float(v)) for t, v in raw if v is not None and t]
    if len(values) < 2:
        return {"field": field, "points": "", "count": len(values)}
    values.sort(key=lambda tv: tv[0])
    lo, hi = min(v for _, v in values), max(v for _, v in values)
    span = (hi - lo) or 1.0
    t0, t1 = values[0][0], values[-1][0]
    duration = (t1 - t0).total_seconds() or 1.0
    line = " ".join(
        f"{(t - t0).total_seconds() / duration * width:.1f},"
        f"{height - 8 - (v - lo) / span * (height - 16):.1f}"
        for t, v in values
    )
    middle = t0 + (t1 - t0) / 2
    return {
        "field": field,
        "points": line,
        "count": len(values),
        "low": _number(lo, lang),
        "mid": _number((lo + hi) / 2, lang),
        "high": _number(hi, lang),
        "last": _number(values[-1][1], lang),
        "first_ts": t0.isoformat(),
        "mid_ts": middle.isoformat(),
        "last_ts": t1.isoformat(),
        "gridlines": (8, height / 2, height - 8),
    }


@router.get("/nodes/{node_id}", response_class=HTMLResponse)
async def node_page(console: ConsoleDep, node_id: str) -> HTMLResponse:
    console.allow("nodes")
    path = f"/api/v1/nodes/{quote(node_id[:64], safe='')}"
    try:
        node = await console.get(path)
    except ApiRefused:
        return console.render("missing.html", "nodes", 404)
    telemetry = await console.get(f"{path}/telemetry")
    events = await console.get(f"{path}/events", limit=50)
    alarms = await console.get("/api/v1/alarms", node_id=node["id"], state="active")
    names = {a.id: a.name for a in await console.areas()}
    return console.render(
        "node.html",
        "nodes",
        node=node,
        state=state_of(node),
        area=names.get(node["area_id"], node["area_id"]),
        charts=[(chart(telemetry["points"], f, console.lang), unit) for f, unit in CHARTS],
        resolution=telemetry["resolution"],
        events=[(e, *event_words(e, console.t)) for e in events],
        alarms=alarms,
        alarm_text=lambda a: alarm_detail(a["kind"], a["detail"], console.t),
        reported_volume=(node.get("telemetry") or {}).get("volume"),
        can_ack=console.may(Permission.manage_nodes),
        can_command=console.may(Permission.command),
        commands=COMMANDS,
    )
