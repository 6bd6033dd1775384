"""Bulletins from upper levels in the console: the administrator's service accounts, and the
officers' relay rules and followed feeds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.console.pages import ConsoleDep

router = APIRouter(prefix="/console", include_in_schema=False)

SCOPES = ["bulletins:push"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


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
    )
