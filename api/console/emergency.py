"""Emergency pages: the area's alerts, the page to issue one, the live view of confirmations."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.devices import PAGE_ROWS
from api.console.pages import ApiRefused, AreaChoice, ConsoleDep
from api.schemas import MAX_OFFSET
from controller.alerts.alert_templates import TEMPLATES
from controller.alerts.board import STATES
from controller.auth.access import Permission

router = APIRouter(prefix="/console", include_in_schema=False)
# The order in which the page offers them: the commonest dangers first.
TEMPLATE_ORDER = ("flood", "storm", "fire", "epidemic", "evacuation")


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(console: ConsoleDep) -> HTMLResponse:
    console.allow("alerts")
    rows = await console.get("/api/v1/alerts")
    names = {a.id: a.name for a in await console.areas()}
    return console.render(
        "alerts.html",
        "alerts",
        alerts=rows[:100],
        names=names,
        can_alert=console.may(Permission.alert),
    )


@router.get("/alerts/new", response_class=HTMLResponse)
async def new_alert(console: ConsoleDep) -> HTMLResponse:
    console.allow("alerts")
    if not console.may(Permission.alert):
        return console.render("forbidden.html", "alerts", 403)
    templates = [(k, *TEMPLATES[k]) for k in TEMPLATE_ORDER]
    areas = await console.areas()
    return console.render(
        "alert_new.html",
        "alerts",
        templates=templates,
        areas=areas,
        # A province's thousands of loudspeakers are too many to draw: then the areas only.
        places=places(areas, (await console.nodes_to_draw())[0]),
        tile_url=console.service.settings.console_tile_url or "",
    )


def places(areas: list[AreaChoice], nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the alert's map draws: each area offered with the placed nodes directly in it, and
    its parent, so that a ticked commune shows its villages as covered."""
    placed: dict[str, list[dict[str, Any]]] = {}
    for n in nodes:
        if n["lat"] is not None and n["lon"] is not None and not n["retired"]:
            placed.setdefault(n["area_id"], []).append(
                {"id": n["id"], "name": n["name"], "lat": n["lat"], "lon": n["lon"]}
            )
    return [
        {"id": a.id, "name": a.name, "parent": a.parent_id, "nodes": placed.get(a.id, [])}
        for a in areas
    ]


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
async def live(
    console: ConsoleDep, alert_id: str, state: str = "", page: str = "1"
) -> HTMLResponse:
    """An alert's confirmations: the counts of every state, each a filter, and the nodes a page
    of PAGE_ROWS at a time (an alert for a province reaches thousands), kept live by the
    alert's server-sent events for the same page."""
    console.allow("alerts")
    state = state if state in STATES else ""
    # A typed address may say anything: a page number is digits, and no page starts beyond
    # the deepest offset the API takes (then the last page is shown).
    deepest = MAX_OFFSET // PAGE_ROWS + 1
    if re.fullmatch(r"[0-9]+", page):
        page_no = min(max(int(page), 1) if len(page) <= 12 else deepest, deepest)
    else:
        page_no = 1
    path = f"/api/v1/alerts/{quote(alert_id[:40], safe='')}"
    asked = {"silent_after_s": 30, "limit": PAGE_ROWS, "state": state or None}
    try:
        v = await console.get(path, **asked, offset=(page_no - 1) * PAGE_ROWS)
        pages = max(1, -(-v["matched"] // PAGE_ROWS))
        if page_no > pages:  # a typed page past the end, or the list shrank: its last page
            page_no = pages
            v = await console.get(path, **asked, offset=(page_no - 1) * PAGE_ROWS)
    except ApiRefused:
        return console.render("missing.html", "alerts", 404)
    names = {a.id: a.name for a in await console.areas()}
    first = (page_no - 1) * PAGE_ROWS + 1

    def to(**more: Any) -> str:
        return urlencode({k: v for k, v in {"state": state, **more}.items() if v})

    return console.render(
        "alert_live.html",
        "alerts",
        alert=v["alert"],
        counts=v["counts"],
        total=sum(v["counts"].values()),
        matched=v["matched"],
        nodes=v["nodes"],
        states=STATES,
        state=state,
        names=names,
        can_alert=console.may(Permission.alert),
        first=first if v["nodes"] else 0,
        last=first + len(v["nodes"]) - 1,
        page=page_no,
        pages=pages,
        limit=PAGE_ROWS,
        here=to(page=page_no if page_no > 1 else None),
        links={
            "prev": to(page=page_no - 1) if page_no > 1 else None,
            "next": to(page=page_no + 1) if page_no < pages else None,
        },
    )
