"""Technicians' pages: the map of nodes coloured by state, the node table, and their live states."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console import pages
from api.console.pages import NODE_PAGE, ApiRefused, Console, ConsoleDep
from controller.core.events import NodeStatusChanged
from controller.health.fleet_view import STATES
from schedules import AreaTree

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_ROWS = 100  # nodes per page of the table
# Between changes, the stream re-reads states this often: a node going silent changes its
# state by the passing of time, with no report to announce it.
RECHECK_S = 5.0
# A stream ends after this long and the browser reconnects at once: an open stream would
# otherwise hold the server's graceful shutdown for as long as the page stays open.
STREAM_S = 30.0


def state_of(node: dict[str, Any]) -> str:
    """The API's health state where it gives one (e.g. flapping), else the raw status."""
    return str(node.get("state") or node["status"])


async def states(console: Console, ids: list[str], area: str | None = None) -> dict[str, str]:
    """The states of these nodes (when none are named: of every node the person may see in
    `area`, or everywhere)."""
    if not ids:
        return {n["id"]: state_of(n) for n in await console.all_nodes(area_id=area)}
    page = await console.get("/api/v1/nodes", id=ids, limit=len(ids))
    return {n["id"]: state_of(n) for n in page["items"]}


def event_state(event: NodeStatusChanged) -> str:
    """The state a change gives its node, as the API would show it."""
    if event.state is not None:
        return event.state
    return event.status if event.status in ("online", "unknown") else "offline"


@router.get("/map", response_class=HTMLResponse)
async def node_map(console: ConsoleDep, area: str = "") -> HTMLResponse:
    """The nodes of an area (default: all the person sees) on a map, if there are at most
    MAP_NODES of them; more are too many to draw at once, and the page asks for an area."""
    console.allow("map")
    areas = await console.areas()
    names = {a.id: a.name for a in areas}
    area_id = area[:64] if area[:64] in names else None
    drawn, counts = await console.nodes_to_draw(area_id)
    nodes = [
        {
            "id": n["id"],
            "name": n["name"],
            "area": names.get(n["area_id"], n["area_id"]),
            "lat": n["lat"],
            "lon": n["lon"],
            "status": state_of(n),
        }
        for n in drawn
    ]
    return console.render(
        "map.html",
        "map",
        placed=[n for n in nodes if n["lat"] is not None and n["lon"] is not None],
        unplaced=sum(1 for n in nodes if n["lat"] is None or n["lon"] is None),
        counts=counts,
        too_many=counts["nodes"] > pages.MAP_NODES,
        limit=pages.MAP_NODES,
        areas=areas,
        area=area_id or "",
        tile_url=console.service.settings.console_tile_url or "",
        statuses=STATES,
    )


@router.get("/nodes", response_class=HTMLResponse)
async def node_table(
    console: ConsoleDep,
    status: str = "",
    area: str = "",
    q: str = "",
    page: str = "1",
    after: str = "",
    before: str = "",
    last: str = "",
) -> HTMLResponse:
    """The node table, a page of PAGE_ROWS at a time (the API filters and counts). The links
    go from page to page by the ids at its ends, which the database finds through its index
    however deep the page; the page's number rides along for display. A typed `page` alone
    counts rows from the start."""
    console.allow("nodes")
    areas = await console.areas()
    status = status if status in STATES else ""
    text = q.strip()[:100]
    filters = {"area_id": area[:64] or None, "q": text or None, "state": status or None}
    # A typed address may say anything: a page number is at most six plain digits.
    page_no = max(int(page) if re.fullmatch(r"[0-9]{1,6}", page) else 1, 1)
    if last == "1":
        where: dict[str, Any] = {"last": True}
    elif before:
        where = {"before": before[:64]}
    elif after:
        where = {"after": after[:64]}
    else:
        where = {"offset": (page_no - 1) * PAGE_ROWS}
    found = await console.get("/api/v1/nodes", **filters, **where, limit=PAGE_ROWS)
    if not found["items"] and found["total"]:
        # Nothing there any more (the list changed since the link was made, or a typed page
        # past the end): going back, the first page; else the last.
        start = {"offset": 0} if "before" in where else {"last": True}
        found = await console.get("/api/v1/nodes", **filters, **start, limit=PAGE_ROWS)
    rows, total = found["items"], found["total"]
    page_count = max(1, -(-total // PAGE_ROWS))
    if found["prev_before"] is None:  # the start of the list, whatever the address said
        page_no, first_row = 1, 1
    elif found["next_after"] is None:  # its end
        page_no, first_row = page_count, total - len(rows) + 1
    else:  # between: the number the link carried, within what the total allows
        page_no = min(max(page_no, 2), max(page_count - 1, 2))
        first_row = min(max((page_no - 1) * PAGE_ROWS + 1, 2), total - len(rows))
    link = {k: v for k, v in {"status": status, "area": area[:64], "q": text}.items() if v}

    def to(**more: Any) -> str:
        return urlencode({**link, **more})

    return console.render(
        "nodes.html",
        "nodes",
        rows=rows,
        state_of=state_of,
        names={a.id: a.name for a in areas},
        areas=areas,
        statuses=STATES,
        counts=found["counts"],
        total=total,
        first=first_row if rows else 0,
        last=first_row + len(rows) - 1,
        page=page_no,
        pages=page_count,
        links={
            "first": to() if found["prev_before"] else None,
            "prev": to(before=found["prev_before"], page=page_no - 1)
            if found["prev_before"]
            else None,
            "next": to(after=found["next_after"], page=page_no + 1)
            if found["next_after"]
            else None,
            "last": to(last=1) if found["next_after"] else None,
        },
        status=status,
        area=area,
        q=text,
    )


@router.get("/nodes/events")
async def node_events(
    console: ConsoleDep, request: Request, ids: str = "", area: str = ""
) -> StreamingResponse:
    """Server-sent events: node states as `{id: state}`. First the states of the nodes named
    in `ids` (comma-separated, the rows of a page; none: every node the person may see in
    `area`, or everywhere), then
    each change as the controller's events tell it (pushed, not re-read), and every RECHECK_S
    a re-read of those nodes for what no event of this instance tells (a change ingested by
    another instance; a flapping node calming down)."""
    service = console.service
    wanted = [i for i in ids.split(",") if i][:NODE_PAGE]
    watched = set(wanted)
    # The areas whose nodes the person sees (for a change when no nodes are named).
    visible: set[str] = set()
    within = area[:64] or None
    if not watched:
        with contextlib.suppress(ApiRefused):  # logged out: the stream's first read ends it
            mine = await console.areas()
            tree = AreaTree({a.id: a.parent_id for a in mine})
            visible = {a.id for a in mine if within is None or tree.contains(within, a.id)}
    pending: dict[str, str] = {}
    wake = asyncio.Event()

    def on_change(event: NodeStatusChanged) -> None:
        if (event.node_id in watched) if watched else (event.area_id in visible):
            pending[event.node_id] = event_state(event)
            wake.set()

    async def stream() -> AsyncIterator[str]:
        known: dict[str, str] = {}
        ends = asyncio.get_running_loop().time() + STREAM_S
        next_read = 0.0
        with service.changes.subscribe(NodeStatusChanged, on_change, "console node states"):
            yield "retry: 1000\n\n"
            while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
                wake.clear()
                now = dict(pending)
                pending.clear()
                if asyncio.get_running_loop().time() >= next_read:
                    try:
                        now |= await states(console, wanted, within)
                    except ApiRefused:
                        return  # logged out meanwhile
                    next_read = asyncio.get_running_loop().time() + RECHECK_S
                changed = {k: v for k, v in now.items() if known.get(k) != v}
                if changed:
                    known |= changed
                    yield f"event: nodes\ndata: {json.dumps(changed)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), RECHECK_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
