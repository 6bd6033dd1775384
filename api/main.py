"""The FastAPI application; its lifespan owns the controller service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import media
from api.routes import announcements, areas, audit, auth, nodes, schedules, system
from controller.config import Settings
from controller.errors import DomainError
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

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse(
                {"detail": f"request body too large (limit {MAX_BODY} bytes)"}, status_code=413
            )
        return await call_next(request)

    routers = (
        auth.router,
        areas.router,
        nodes.router,
        announcements.router,
        schedules.router,
        audit.router,
        system.router,
    )
    for r in routers:
        app.include_router(r, prefix="/api/v1")
    app.include_router(media.router)
    return app
