"""Logging in and out of the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.i18n import Words, language_of
from api.console.pages import render
from api.deps import ServiceDep, SessionDep, client_ip
from api.session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LoginRefused,
    authenticate,
    csrf_ok,
    end_session,
    login_nonce,
    login_token,
    read_session,
    set_login_cookie,
    start_session,
)

router = APIRouter(prefix="/console", include_in_schema=False)
HOME = "/console/"


def safe_next(value: str | None) -> str:
    """Only back into the console: never to another site (`//host`, `https://…`)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


def login_page(
    request: Request,
    service: ServiceDep,
    back_to: str,
    error: str = "",
    status: int = 200,
    username: str = "",
) -> HTMLResponse:
    nonce, new = login_nonce(request)
    t = Words(language_of(request))
    response = render(
        request,
        "login.html",
        t,
        status,
        token=login_token(service.settings.secret_key, nonce),
        next=back_to,
        error=error,
        username=username,
    )
    if new:
        set_login_cookie(response, request, service, nonce)
    return response


@router.get("/login", response_class=HTMLResponse)
def show_login(
    request: Request, service: ServiceDep, db: SessionDep, next: str | None = None
) -> Response:
    if read_session(request, service, db) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return login_page(request, service, safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def log_in(
    request: Request,
    service: ServiceDep,
    db: SessionDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    login_form: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    t = Words(language_of(request))
    back_to = safe_next(next)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or login_form != login_token(service.settings.secret_key, nonce):
        return login_page(request, service, back_to, t("login.expired"), 400, username[:64])
    try:
        user = authenticate(service, db, username.strip(), password, client_ip(request))
    except LoginRefused as refused:
        if refused.retry_after:
            message = t("login.throttled", seconds=refused.retry_after)
            response = login_page(request, service, back_to, message, 429, username[:64])
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        return login_page(request, service, back_to, t("login.wrong"), 401, username[:64])
    redirect = RedirectResponse(back_to, status_code=303)
    start_session(redirect, request, service, db, user)
    return redirect


@router.post("/logout")
def log_out(
    request: Request,
    service: ServiceDep,
    db: SessionDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    session = read_session(request, service, db)
    if session is None:
        return RedirectResponse("/console/login", status_code=303)
    if not csrf_ok(request, session, csrf_token):
        t = Words(language_of(request))
        return HTMLResponse(t("error.csrf"), status_code=403)
    response = RedirectResponse("/console/login", status_code=303)
    end_session(response, db, session)
    return response
