"""Error answers: one documented shape, and no internals leaked."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.core.errors import DomainError, is_no_space

log = logging.getLogger(__name__)


class ErrorOut(BaseModel):
    detail: str
    code: str | None = None  # for the console to say it in the user's language


class CodedHTTPException(HTTPException):
    """An HTTP error with a code the console translates (locales: `js.code.<code>`)."""

    def __init__(
        self, status_code: int, detail: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.code = code


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Which field and why, never the value sent: an error must not echo a hostile body back."""
    return [
        {"type": str(e.get("type", "")), "loc": list(e.get("loc", ())), "msg": str(e.get("msg"))}
        for e in errors
    ]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "The request cannot be carried out as asked; `detail` says what to change"),
        (401, "Not logged in, or the token expired"),
        (403, "Logged in, but without the right for this action or area"),
        (404, "No such thing (or not in your area)"),
        (409, "Conflicts with the current state (a clash, an item in use)"),
        (413, "The request body is too large"),
        (429, "Too many failed logins; wait as Retry-After says"),
        (503, "The database is briefly unavailable; retry after Retry-After seconds"),
        (507, "No space left for media; nothing was saved"),
    )
}


# The code of an HTTP error raised without one (by the framework, or a plain 401 of ours).
HTTP_CODES = {
    401: "login_needed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    429: "too_many_requests",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def coded(_request: Request, exc: StarletteHTTPException) -> Response:
        if not is_body_allowed_for_status_code(exc.status_code):
            return Response(status_code=exc.status_code, headers=exc.headers)
        code = getattr(exc, "code", None) or HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            {"detail": exc.detail, "code": code},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": field_errors(exc.errors()), "code": "invalid_input"}, status_code=422
        )

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=exc.status)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        log.info("refused a value the database cannot hold: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "a number or text in the request is out of range", "code": "out_of_range"},
            status_code=400,
        )

    @app.exception_handler(StatementError)
    async def statement_failed(request: Request, exc: StatementError) -> JSONResponse:
        # A value the driver could not even send (a date past year 9999 once converted): the
        # same refusal as the database's own; anything else is ours.
        if isinstance(exc.orig, OverflowError | ValueError):
            return await out_of_range(request, exc)
        return await internal_error(request, exc)

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc.orig or exc).splitlines()[0][:200])
        return JSONResponse(
            {
                "detail": "the database is unavailable; nothing was changed, try again shortly",
                "code": "database_unavailable",
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(OSError)
    async def disk_error(_request: Request, exc: OSError) -> JSONResponse:
        if is_no_space(exc):
            log.error("storage full: %s", exc)
            return JSONResponse(
                {
                    "detail": "no space left for media; nothing was saved: free disk space",
                    "code": "storage_full",
                },
                status_code=507,
            )
        log.exception("I/O error")
        return JSONResponse(
            {"detail": "a storage error occurred; nothing was saved", "code": "storage_error"},
            500,
        )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        """A defect of ours: the server logs it with its traceback (the exception goes on to
        it after this answer). The connection is closed after the answer, as the server
        drops it; said here, a client does not send its next request on it."""
        return JSONResponse(
            {
                "detail": "an internal error occurred: the controller's log has the details",
                "code": "internal_error",
            },
            status_code=500,
            headers={"Connection": "close"},
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        # Our own 422s carry a plain message; FastAPI's carry a list of field errors.
        err = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if err is not None:
            detail = err["properties"]["detail"]
            err["properties"]["detail"] = {"anyOf": [detail, {"type": "string"}], "title": "Detail"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
