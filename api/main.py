"""The FastAPI application; its lifespan owns the controller service."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from api import errors, live_audio, media, streams
from api.console.app import install as install_console
from api.deps import upload_caller
from api.middleware import (
    FORM_OVERHEAD,
    MAX_BODY,
    BodyLimit,
    SecurityHeaders,
    content_security_policy,
)
from api.routes import (
    alarms,
    alerts,
    announcements,
    areas,
    audit,
    auth,
    bulletins,
    cap,
    cap_feeds,
    commands,
    firmware,
    fleet,
    groups,
    live,
    metrics,
    nodes,
    playback,
    playlists,
    programme,
    quiet_hours,
    registry,
    reports,
    schedules,
    service_accounts,
    speech,
    system,
)
from controller.core.config import Settings
from controller.service import RadioService


def package_version() -> str:
    """The installed project's version (pyproject.toml), which the API reports as its own."""
    try:
        return importlib.metadata.version("commune-radio")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "0+unknown"


def create_app(service: RadioService) -> FastAPI:
    """The HTTP face of a controller service built by the composition root (`radio`); the app's
    lifespan starts and stops it."""
    settings = service.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Đài truyền thanh thông minh — Smart commune radio",
        version=package_version(),
        lifespan=lifespan,
        docs_url="/docs",
    )
    app.state.service = service

    errors.install(app)

    upload_limits = {
        "/api/v1/announcements/upload": int(settings.upload_max_mb * 1024 * 1024) + FORM_OVERHEAD,
        "/api/v1/firmware": int(settings.firmware_max_mb * 1024 * 1024) + FORM_OVERHEAD,
        "/api/v1/bulletins/audio": int(settings.upload_max_mb * 1024 * 1024) + FORM_OVERHEAD,
    }
    build_stack = app.build_middleware_stack

    def outer_stack() -> ASGIApp:
        # Outside FastAPI's own middleware, so that no error answer escapes them.
        inner = BodyLimit(build_stack(), MAX_BODY, upload_limits, upload_caller)
        return SecurityHeaders(inner, content_security_policy(settings.console_tile_url))

    app.build_middleware_stack = outer_stack  # type: ignore[method-assign]  # wrap it whole

    routers = (
        auth.router,
        cap.router,
        alerts.router,
        areas.router,
        nodes.router,
        registry.router,
        commands.router,
        firmware.router,
        alarms.router,
        fleet.router,
        announcements.router,
        playlists.router,
        groups.router,
        schedules.router,
        live.router,
        programme.router,
        quiet_hours.router,
        playback.router,
        reports.router,
        speech.router,
        audit.router,
        cap_feeds.router,
        system.router,
        service_accounts.router,
        bulletins.router,
    )
    for r in routers:
        app.include_router(r, prefix="/api/v1", responses=errors.ERROR_RESPONSES)
    app.include_router(media.router, responses=errors.ERROR_RESPONSES)
    app.include_router(streams.router, responses=errors.ERROR_RESPONSES)
    app.include_router(live_audio.router)
    app.include_router(firmware.files, responses=errors.ERROR_RESPONSES)
    app.include_router(metrics.router)
    install_console(app)
    return app


# How long an idle HTTP connection is kept: longer than clients keep one to reuse (httpx, which
# the nodes use, 5 s). A server that closes first races a client sending its next request on
# the connection at that moment, and the client gets a read error (uvicorn's default is 5 s).
KEEP_ALIVE_S = 30


# Seconds a stopping server waits for open requests (live pages' streams, a node's download)
# before closing them: without a bound, one browser tab would hold a shutdown (and a restart)
# for as long as it stays open.
SHUTDOWN_GRACE_S = 5
# The request line and headers read before a request is refused (uvicorn answers that with a
# plain-text 400, not the API's JSON): room for the longest `ids` a live view may name
# (api/routes/alerts.py, NAMED_CHARS; 3 bytes a character once percent-encoded) beside the
# other headers. uvicorn's default, 16 KiB, refused lists the API accepts.
REQUEST_HEAD_BYTES = 256 * 1024


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """How the controller is served. Forwarded headers (X-Forwarded-For/-Proto) are believed
    only from the proxies `trusted_proxies` names: uvicorn would otherwise take them from any
    local process, and a forged address would dodge the login throttle and mislead the audit."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or [],
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=REQUEST_HEAD_BYTES,
        **{"timeout_graceful_shutdown": SHUTDOWN_GRACE_S, **options},
    )
