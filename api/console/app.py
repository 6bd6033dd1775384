"""Mounts the console on the API's application: its pages, static files and error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.console import (
    audit,
    bulletins,
    calendar,
    content,
    devices,
    emergency,
    live,
    login,
    media,
    monitoring,
    playback,
    playlists,
    reports,
    schedules,
)
from api.console.pages import LoginNeeded, PageForbidden, login_url

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """The console lives under /console/; the site's root sends people there."""
    # devices before monitoring: /console/nodes/events before /console/nodes/{node_id}.
    pages = (
        login,
        media,
        content,
        playback,
        reports,
        playlists,
        calendar,
        schedules,
        emergency,
        live,
        devices,
        monitoring,
        bulletins,
        audit,
    )
    for module in pages:
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # Browsers ask for it on their own (before reading the page's <link rel="icon">).
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.exception_handler(LoginNeeded)
    async def to_login(_request: Request, exc: LoginNeeded) -> Response:
        return RedirectResponse(login_url(exc.back_to), status_code=303)

    @app.exception_handler(PageForbidden)
    async def forbidden(_request: Request, exc: PageForbidden) -> HTMLResponse:
        return exc.response
