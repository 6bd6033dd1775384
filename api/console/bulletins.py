"""Bulletins from upper levels in the console: the administrator's service accounts, and the
officers' relay rules and followed feeds."""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.i18n import Words
from api.console.pages import ConsoleDep

router = APIRouter(prefix="/console", include_in_schema=False)

SCOPES = ["bulletins:push"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]

# How the last poll of a feed went, as the controller records it (controller/bulletins/
# feeds.py), and its key in the reader's language; what no pattern knows is not shown.
POLL_STATUSES = [
    (re.compile(r"ok$"), "bull.poll_ok"),
    (re.compile(r"not modified$"), "bull.poll_unchanged"),
    (re.compile(r"HTTP (\d{3})$"), "bull.poll_http"),
    (re.compile(r"refused: "), "bull.poll_refused"),
    (re.compile(r"feed too large"), "bull.poll_too_large"),
    (re.compile(r"not an RSS or Atom feed"), "bull.poll_not_a_feed"),
    (re.compile(r"unreachable: "), "bull.poll_unreachable"),
    (re.compile(r"error$"), "bull.poll_error"),
]


def poll_status(status: str | None, t: Words) -> str:
    for pattern, key in POLL_STATUSES:
        if m := pattern.match(status or ""):
            return t(key, code=m[1] if m.groups() else "")
    return ""


@router.get("/service-accounts", response_class=HTMLResponse)
async def service_accounts(console: ConsoleDep) -> HTMLResponse:
    console.allow("service_accounts")
    accounts = await console.get("/api/v1/service-accounts")
    areas = await console.areas()
    return console.render(
        "service_accounts.html",
        "service_accounts",
        accounts=accounts,
        areas=areas,
        names={a.id: a.name for a in areas},
        scopes=SCOPES,
    )


@router.get("/bulletin-rules", response_class=HTMLResponse)
async def bulletin_rules(console: ConsoleDep) -> HTMLResponse:
    console.allow("bulletin_rules")
    rules = await console.get("/api/v1/bulletin-rules")
    feeds = await console.get("/api/v1/bulletin-feeds")
    bulletins = await console.get("/api/v1/bulletins")
    areas = await console.areas()
    return console.render(
        "bulletin_rules.html",
        "bulletin_rules",
        rules=rules,
        feeds=feeds,
        bulletins=bulletins[:50],
        areas=areas,
        names={a.id: a.name for a in areas},
        weekdays=WEEKDAYS,
        home=console.home_area(areas) or "",
        poll_status={f["id"]: poll_status(f.get("last_status"), console.t) for f in feeds},
    )
