"""The auditor's page: the audit record filtered by who, what, area and days; the chain's
check; the same selection exported as CSV or Excel."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.i18n import DEFAULT_LANGUAGE, catalogue
from api.console.pages import LOCAL, ApiRefused, ConsoleDep, day_from_text, day_text

router = APIRouter(prefix="/console", include_in_schema=False)
# What the record holds, by the action's first word (the API filters by prefix).
ACTIONS = (
    "login",
    "announcement.",
    "schedule.",
    "alert.",
    "live.",
    "command",
    "alarm.",
    "node.",
    "playlist.",
    "group.",
    "dictionary.",
    "area.",
    "quiet_hours.",
    "user.",
    "firmware.",
    "denied:",
)
SHOWN = 300


def action_key(action: str) -> str:
    """The locale key of an action's kind: `schedule.create` → `schedule`, `denied:x` →
    `denied`; the action code itself is shown beside it."""
    key = action
    for mark in (".", ":"):
        if mark in key:
            key = key.split(mark, 1)[0]
    return key if f"audit.kind.{key}" in catalogue(DEFAULT_LANGUAGE) else "other"


def detail_text(detail: dict[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, sort_keys=True)[:300] if detail else ""


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    console: ConsoleDep,
    actor: str = "",
    action: str = "",
    area: str = "",
    since: str = "",
    until: str = "",
) -> HTMLResponse:
    console.allow("audit")
    areas = await console.areas()
    first, last = day_from_text(since), day_from_text(until)
    error = ""
    if (since and first is None) or (until and last is None):
        error = console.t("audit.bad_day")
    elif first and last and last < first:
        error = console.t("audit.bad_range")
    query: dict[str, str] = {
        "actor": actor.strip()[:64],
        "action": action if action in ACTIONS else "",
        "area_id": area if any(a.id == area for a in areas) else "",
    }
    # Days are Viet Nam days: from the first's local midnight to the one after the last.
    if first:
        query["since"] = datetime.combine(first, time(), LOCAL).isoformat()
    if last:
        query["until"] = datetime.combine(last + timedelta(days=1), time(), LOCAL).isoformat()
    query = {k: v for k, v in query.items() if v}
    rows: list[dict[str, Any]] = []
    if not error:
        try:
            rows = await console.get("/api/v1/audit", limit=SHOWN, **query)
        except ApiRefused:
            error = console.t("audit.refused")
    export = urlencode({**query, "lang": console.lang})
    return console.render(
        "audit.html",
        "audit",
        rows=rows,
        shown=SHOWN,
        areas=areas,
        actions=ACTIONS,
        chosen={"actor": query.get("actor", ""), "action": action, "area": area},
        since=day_text(first) if first else since[:20],
        until=day_text(last) if last else until[:20],
        error=error,
        export=export,
        action_key=action_key,
        detail_text=detail_text,
    )
