"""Technicians' pages: the map of nodes coloured by state, the node table, and their live states."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console.pages import ApiRefused, Console, ConsoleDep
from controller.core.events import AlarmChanged, NodeStatusChanged

router = APIRouter(prefix="/console", include_in_schema=False)
STATUSES = ("online", "offline", "lost", "unknown")
# Between changes, the stream re-reads states this often: a node going silent changes its
# state by the passing of time, with no report to announce it.
RECHECK_S = 5.0
# A stream ends after this long and the browser reconnects at once: an open stream would
# otherwise hold the server's graceful shutdown for as long as the page stays open.
STREAM_S = 30.0


def state_of(node: dict[str, Any]) -> str:
    """The API's health state where it gives one (e.g. flapping), else the raw status."""
    return str(node.get("state") or node["status"])


async def states(console: Console) -> dict[str, str]:
    return {n["id"]: state_of(n) for n in await console.get("/api/v1/nodes")}


@router.get("/map", response_class=HTMLResponse)
async def node_map(console: ConsoleDep) -> HTMLResponse:
    console.allow("map")
    names = {a.id: a.name for a in await console.areas()}
    nodes = [
        {
            "id": n["id"],
            "name": n["name"],
            "area": names.get(n["area_id"], n["area_id"]),
            "lat": n["lat"],
            "lon": n["lon"],
            "status": state_of(n),
        }
        for n in await console.get("/api/v1/nodes")
    ]
    shown = sorted({n["status"] for n in nodes} | set(STATUSES), key=_order)
    return console.render(
        "map.html",
        "map",
        nodes=nodes,
        placed=[n for n in nodes if n["lat"] is not None and n["lon"] is not None],
        tile_url=console.service.settings.console_tile_url or "",
        statuses=shown,
    )


def _order(status: str) -> tuple[int, str]:
    return (STATUSES.index(status) if status in STATUSES else len(STATUSES), status)


@router.get("/nodes", response_class=HTMLResponse)
async def node_table(
    console: ConsoleDep, status: str = "", area: str = "", q: str = ""
) -> HTMLResponse:
    console.allow("nodes")
    areas = await console.areas()
    nodes = await console.get("/api/v1/nodes", area_id=area[:64] or None)
    known = sorted({state_of(n) for n in nodes} | set(STATUSES), key=_order)
    status = status if status in known else ""
    needle = q.strip().lower()[:100]
    rows = [
        n
        for n in nodes
        if (not status or state_of(n) == status)
        and (not needle or needle in n["id"].lower() or needle in n["name"].lower())
    ]
    return console.render(
        "nodes.html",
        "nodes",
        rows=rows,
        state_of=state_of,
        names={a.id: a.name for a in areas},
        areas=areas,
        statuses=known,
        status=status,
        area=area,
        q=q[:100],
    )


@router.get("/nodes/events")
async def node_events(console: ConsoleDep, request: Request) -> StreamingResponse:
    """Server-sent events: the state of every node the person may see, again at each change."""
    service = console.service
    wake = asyncio.Event()

    def on_change(_event: NodeStatusChanged | AlarmChanged) -> None:
        wake.set()

    async def stream() -> AsyncIterator[str]:
        last: dict[str, str] | None = None
        ends = asyncio.get_running_loop().time() + STREAM_S
        with service.changes.subscribe(
            (NodeStatusChanged, AlarmChanged), on_change, "console node states"
        ):
            yield "retry: 1000\n\n"
            while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
                wake.clear()
                try:
                    now = await states(console)
                except ApiRefused:
                    return  # logged out meanwhile
                if now != last:
                    last = now
                    yield f"event: nodes\ndata: {json.dumps(now)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), RECHECK_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
