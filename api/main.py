"""The FastAPI application; its lifespan owns the controller service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import errors, live_audio, media, streams
from api.console.app import install as install_console
from api.routes import (
    alarms,
    alerts,
    announcements,
    areas,
    audit,
    auth,
    cap,
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
    schedules,
    speech,
    system,
)
from controller.config import Settings
from controller.service import RadioService
from protocol.clock import Clock

MAX_BODY = 2 * 1024 * 1024


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    service = RadioService(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Đài truyền thanh thông minh — Smart commune radio",
        version="1.0",
        lifespan=lifespan,
        docs_url="/docs",
    )
    app.state.service = service

    errors.install(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        limit = MAX_BODY
        if request.url.path == "/api/v1/announcements/upload":
            limit = int(settings.upload_max_mb * 1024 * 1024) + 64 * 1024
        elif request.url.path == "/api/v1/firmware":
            limit = int(settings.firmware_max_mb * 1024 * 1024) + 64 * 1024
        if length is not None and (not length.isdigit() or int(length) > limit):
            return JSONResponse(
                {"detail": f"request body too large (limit {limit} bytes)"}, status_code=413
            )
        return await call_next(request)

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
        speech.router,
        audit.router,
        system.router,
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
