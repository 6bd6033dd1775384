"""The console's login session: an HttpOnly cookie, its CSRF token, and throttled password login."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, Request, Response
from sqlmodel import Session, select

from controller.auth.audit import record
from controller.auth.security import (
    DUMMY_HASH,
    InvalidToken,
    make_token,
    read_token,
    verify_password,
)
from controller.core.models import RefreshToken, User
from controller.service import RadioService

SESSION_COOKIE = "radio_session"
LOGIN_COOKIE = "radio_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# A working day: long enough not to interrupt a shift, short enough that a forgotten session on
# a shared commune computer does not last into the next day.
SESSION_TTL = timedelta(hours=8)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_COOKIE = 4000


@dataclass(frozen=True)
class ConsoleSession:
    user: User
    jti: str
    csrf: str


def _mac(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_for(secret: str, jti: str) -> str:
    """The CSRF token is derived from the session, so nothing more is stored."""
    return _mac(secret, "csrf", jti)


def read_session(request: Request, service: RadioService, db: Session) -> ConsoleSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > MAX_COOKIE:
        return None
    secret = service.settings.secret_key
    try:
        claims = read_token(secret, raw, "session")
    except InvalidToken:
        return None
    stored = db.get(RefreshToken, claims.jti)
    user = db.get(User, claims.user_id)
    if stored is None or stored.revoked or user is None or not user.active:
        return None
    return ConsoleSession(user, claims.jti, csrf_for(secret, claims.jti))


def csrf_ok(request: Request, session: ConsoleSession, form_value: str | None = None) -> bool:
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    return hmac.compare_digest(sent.encode(), session.csrf.encode())


def cookie_user(request: Request, service: RadioService, db: Session) -> User | None:
    """The user of a console session calling the JSON API; an unsafe method must carry the
    session's CSRF token in a header, which another site's page cannot read or send."""
    session = read_session(request, service, db)
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not csrf_ok(request, session):
        raise HTTPException(
            403,
            f"the console's CSRF token is missing or wrong: send the {CSRF_HEADER} header "
            "(reload the console page to get a new one)",
        )
    return session.user


def served_securely(request: Request, service: RadioService) -> bool:
    public = service.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def start_session(
    response: Response, request: Request, service: RadioService, db: Session, user: User
) -> None:
    assert user.id is not None
    token, claims = make_token(
        service.settings.secret_key, user.id, user.username, user.role, "session", SESSION_TTL
    )
    # Stored beside refresh tokens, so that logout (and a password change) can revoke it.
    db.add(RefreshToken(jti=claims.jti, user_id=user.id, expires_at=claims.expires))
    db.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=served_securely(request, service),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")


def end_session(response: Response, db: Session, session: ConsoleSession) -> None:
    stored = db.get(RefreshToken, session.jti)
    if stored is not None:
        stored.revoked = True
        db.add(stored)
        db.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")


# --- the login form --------------------------------------------------------------------------


def login_nonce(request: Request) -> tuple[str, bool]:
    """The login form's own cookie (before any session exists): (nonce, newly made)."""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if 16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum():
        return nonce, False
    return secrets.token_urlsafe(18), True


def login_token(secret: str, nonce: str) -> str:
    """Tied to the login cookie: a page on another site cannot log a victim into its account."""
    return _mac(secret, "login", nonce)


def set_login_cookie(
    response: Response, request: Request, service: RadioService, nonce: str
) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/console/login",
        httponly=True,
        samesite="strict",
        secure=served_securely(request, service),
    )


class LoginRefused(Exception):
    """Wrong credentials, or too many failures: `retry_after` seconds to wait (0: not throttled)."""

    def __init__(self, retry_after: int = 0) -> None:
        super().__init__("throttled" if retry_after else "wrong user name or password")
        self.retry_after = retry_after


def authenticate(
    service: RadioService,
    db: Session,
    username: str,
    password: str,
    ip: str,
    via: str | None = "console",
) -> User:
    """The one password login, for the API's token and the console's form: throttled (the
    attempt is counted before the password is checked) and recorded the same way."""
    detail = {"via": via} if via else None
    attempt = service.login_throttle.attempt(f"u:{username[:64]}", f"ip:{ip}")
    if attempt.wait > 0:
        raise LoginRefused(int(attempt.wait) + 1)
    user = None
    if len(username) <= 64 and len(password) <= 200:
        user = db.exec(select(User).where(User.username == username)).first()
    ok = verify_password(password[:200], user.password_hash if user else DUMMY_HASH)
    if not ok or user is None or not user.active:
        record(db, username[:64], "login", detail=detail, outcome="failed", ip=ip)
        raise LoginRefused()
    service.login_throttle.succeeded(attempt)
    record(db, user.username, "login", detail=detail, role=user.role, ip=ip)
    return user
