"""The playback log: what each loudspeaker played on a day, by name and village, kept up to date
live (server-sent events at every delivery report, and every few seconds for missed ones)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console.content import today
from api.console.device_words import play_detail
from api.console.devices import RECHECK_S, STREAM_S
from api.console.pages import ApiRefused, Console, ConsoleDep, day_from_text, local
from api.console.repetition import names_of
from controller.core.events import DeliveryChanged

router = APIRouter(prefix="/console", include_in_schema=False)
# A broadcast to a whole province brings its reports in bursts: the log is read again at most
# this often, however many reports wake it.
MIN_GAP_S = 1.0


async def log_of(console: Console, area_id: str, day: date) -> dict[str, Any]:
    """The day's rows as the page shows them (times in Viet Nam time, loudspeakers by name and
    village), and the count of each result."""
    rows = await console.get("/api/v1/playback-log", area_id=area_id, date=day.isoformat())
    names = await names_of(console, await console.areas(), (r["node_id"] for r in rows))
    shown = []
    for r in rows:
        node, village = r["node_id"], names["node_areas"].get(r["node_id"], "")
        shown.append(
            {
                "schedule_id": r["schedule_id"],
                "planned": local(r["planned_start"], "%H:%M:%S"),
                "title": r["title"],
                "node": node,
                "place": " · ".join(
                    p for p in (names["nodes"].get(node, node), names["areas"].get(village)) if p
                ),
                "state": r["state"],
                "state_label": console.t(f"state.{r['state']}"),
                "detail": play_detail(r["detail"], console.t),
                "started": local(r["started_at"], "%H:%M:%S"),
                "finished": local(r["finished_at"], "%H:%M:%S"),
            }
        )
    counts = Counter(r["state"] for r in rows)
    return {
        "rows": shown,
        "summary": console.t("log.summary", n=len(rows)),
        "states": [[s, console.t(f"state.{s}"), n] for s, n in sorted(counts.items())],
    }


@router.get("/playback", response_class=HTMLResponse)
async def playback(
    console: ConsoleDep, area: str | None = None, day: str | None = None
) -> HTMLResponse:
    console.allow("playback")
    areas = await console.areas()
    area_id = area or console.home_area(areas)
    error, chosen = "", today()
    log: dict[str, Any] = {"rows": [], "summary": console.t("log.summary", n=0), "states": []}
    if day:
        picked = day_from_text(day)
        if picked is None:
            error = console.t("playback.bad_day")
        else:
            chosen = picked
    if area_id is not None and not error:
        try:
            log = await log_of(console, area_id, chosen)
        except ApiRefused:
            error = console.t("error.area")
    return console.render(
        "playback.html",
        "playback",
        areas=areas,
        area_id=area_id,
        day=chosen,
        error=error,
        log=log,
        live=bool(area_id) and not error,
    )


@router.get("/playback/events")
async def playback_events(
    console: ConsoleDep, request: Request, area: str, day: date
) -> StreamingResponse:
    """Server-sent events: the day's log again whenever a node reports a delivery."""
    console.allow("playback")
    chosen = day
    wake = asyncio.Event()

    def on_change(_delivery: DeliveryChanged) -> None:
        wake.set()

    async def stream() -> AsyncIterator[str]:
        last: dict[str, Any] | None = None
        ends = asyncio.get_running_loop().time() + STREAM_S
        with console.service.changes.subscribe(DeliveryChanged, on_change, "console playback log"):
            yield "retry: 1000\n\n"
            while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
                wake.clear()
                try:
                    now = await log_of(console, area, chosen)
                except ApiRefused:
                    return  # logged out meanwhile, or not this person's area
                if now != last:
                    last = now
                    yield f"event: log\ndata: {json.dumps(now)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), RECHECK_S)
                await asyncio.sleep(MIN_GAP_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
