"""The live microphone page: an officer speaks into the browser, the chosen loudspeakers play it."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.pages import ConsoleDep
from controller.auth.access import Permission
from controller.core.models import DeliveryState

router = APIRouter(prefix="/console", include_in_schema=False)


def where(targets: dict[str, list[str]], names: dict[str, str]) -> str:
    """A broadcast's targets as people name them: areas, then groups, then single nodes."""
    return ", ".join(
        names.get(t, t) for kind in ("areas", "groups", "nodes") for t in targets.get(kind, [])
    )


def reason_key(reason: str) -> tuple[str, dict[str, str]]:
    """Why a broadcast ended, as a locale key (the controller records it in English); the same
    reading as microphone.js's reasonText."""
    by = re.fullmatch(r"stopped by (.+)", reason or "")
    if by:
        return "js.onair.reason_stopped", {"who": by[1]}
    for start, key in (
        ("its longest time", "reason_time"),
        ("no audio source", "reason_no_source"),
        ("the controller", "reason_controller"),
    ):
        if (reason or "").startswith(start):
            return f"js.onair.{key}", {}
    return "js.onair.reason_other", {}


@router.get("/live", response_class=HTMLResponse)
async def live_page(console: ConsoleDep) -> HTMLResponse:
    console.allow("live")
    # A live voice goes on air with no approval: the same trust as an emergency alert.
    if not console.may(Permission.alert):
        return console.render("forbidden.html", "live", 403)
    areas = await console.areas()
    groups: list[dict[str, Any]] = await console.get("/api/v1/groups")
    names = {a.id: a.name for a in areas} | {g["id"]: g["name"] for g in groups}
    broadcasts = (await console.get("/api/v1/live"))[:30]
    # What the page's script needs to name what the nodes report (their names come with it).
    page_data = {
        "states": {s.value: console.t(f"state.{s.value}") for s in DeliveryState},
    }
    return console.render(
        "live_broadcast.html",
        "live",
        areas=areas,
        groups=groups,
        broadcasts=broadcasts,
        where={b["id"]: where(b["targets"], names) for b in broadcasts},
        max_minutes=console.service.settings.live_max_minutes,
        page_data=page_data,
        reasons={
            b["id"]: console.t(k, **v)
            for b in broadcasts
            if b.get("end_reason")
            for k, v in [reason_key(b["end_reason"])]
        },
    )
