"""Typed FastAPI dependencies: routes read like their contract."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from api.errors import CodedHTTPException
from api.session import cookie_user as console_user
from controller.auth.access import (
    Forbidden,
    Permission,
    has,
    in_scope,
    may_change_content,
    require,
    sees_content,
)
from controller.auth.security import InvalidToken, read_token
from controller.auth.service_accounts import Caller, KeyRefused, authenticate
from controller.auth.service_accounts import Scope as Scope_
from controller.core.models import User
from controller.core.time import utc_datetime
from controller.service import RadioService
from schedules import AreaTree

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function in its thread pool,
# and each hand-off there and back waits for a turn of the event loop, which under the nodes'
# reports costs more than the work. What reads the database (the caller's login) stays a
# plain function, off the loop.
async def get_service(request: Request) -> RadioService:
    service: RadioService = request.app.state.service
    return service


ServiceDep = Annotated[RadioService, Depends(get_service)]


async def get_session(service: ServiceDep) -> AsyncIterator[Session]:
    # Opening a session connects to nothing: that happens at its first statement, in the
    # route's thread. Closing one that did hands its connection back to the pool with a
    # rollback, a round trip to the database: in a thread too.
    with service.db.session() as session:
        try:
            yield session
        finally:
            if session.in_transaction():
                await asyncio.to_thread(session.close)


SessionDep = Annotated[Session, Depends(get_session)]


UNAUTHORIZED = "log in first: send 'Authorization: Bearer <access token>'"


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def user_of(request: Request, service: RadioService, session: Session) -> User | None:
    """The caller: an access token, else the console's session cookie (whose unsafe requests
    must carry its CSRF token: HTTPException 403 otherwise); None when neither is valid."""
    token = bearer_token(request)
    if not token:
        return console_user(request, service, session)
    try:
        claims = read_token(service.settings.secret_key, token, "access")
    except InvalidToken:
        return None
    user = session.get(User, claims.user_id)
    if user is None or not user.active:
        return None
    return user


def current_user(
    request: Request,
    service: ServiceDep,
    session: SessionDep,
    _token: Annotated[str | None, Depends(oauth2)],
) -> User:
    user = user_of(request, service, session)
    if user is None:
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    request.state.user = user
    return user


async def upload_caller(scope: Scope) -> tuple[int, str, str] | None:
    """Checked before an upload's body is read: None when the caller is logged in, else the
    refusal (status, detail, code). The route's own checks follow once the body is read.
    Uploads from other systems (`SERVICE_UPLOADS`) need a valid API key with the scope."""
    request = Request(scope)
    service: RadioService = request.app.state.service
    if scope["path"] in SERVICE_UPLOADS:
        scope_needed = SERVICE_UPLOADS[scope["path"]]

        def check_key() -> tuple[int, str, str] | None:
            try:
                caller = api_caller(request, service)
            except HTTPException as exc:
                return exc.status_code, str(exc.detail), getattr(exc, "code", "api_key_bad")
            if not caller.may(scope_needed):
                return 403, f"the API key lacks the scope {scope_needed.value}", "api_key_scope"
            return None

        return await run_in_threadpool(check_key)

    def check() -> tuple[int, str, str] | None:
        with service.db.session() as session:
            try:
                user = user_of(request, service, session)
            except HTTPException as exc:
                return exc.status_code, str(exc.detail), "csrf"
            if user is None:
                return 401, UNAUTHORIZED, "login_needed"
            needed = USER_UPLOADS.get(scope["path"])
            if needed is not None:
                try:  # the role's right, refused and recorded as a route does; it checks areas
                    Guard(request, user, session, service).check(needed)
                except CodedHTTPException as exc:
                    return exc.status_code, str(exc.detail), exc.code
        return None

    return await run_in_threadpool(check)


CurrentUser = Annotated[User, Depends(current_user)]

# --- Other systems: service accounts with `X-Api-Key` --------------------------------------

API_KEY_HEADER = "x-api-key"
KEY_SHAPE = re.compile(r"^rsk_[0-9a-f]{12}_")
API_KEY_NEEDED = "send the service account's key as 'X-Api-Key: rsk_…'"
# Upload routes for service accounts: the key (and its scope) is checked before the body.
SERVICE_UPLOADS: dict[str, Scope_] = {"/api/v1/bulletins/audio": Scope_.bulletins_push}
# Upload routes for people: the role's right is checked before the body, too.
USER_UPLOADS: dict[str, Permission] = {
    "/api/v1/announcements/upload": Permission.write_content,
    "/api/v1/firmware": Permission.manage_firmware,
}


def api_caller(request: Request, service: RadioService) -> Caller:
    """The service account of `X-Api-Key`; a refusal is recorded in the audit record."""
    key = request.headers.get(API_KEY_HEADER, "").strip()
    if not key:
        raise CodedHTTPException(401, API_KEY_NEEDED, "api_key_needed")
    now = utc_datetime(service.clock.now_ms())
    with service.db.session() as session:
        try:
            caller = authenticate(session, key, now, client_ip(request))
        except KeyRefused as exc:
            from controller.auth.audit import record

            record(
                session,
                "svc:?",
                "denied:api_key",
                request.url.path,
                # The key's public part only, and only when it has the shape of one.
                {"reason": str(exc), "prefix": key[:16] if KEY_SHAPE.match(key) else ""},
                role="service",
                ip=client_ip(request),
                outcome="denied",
            )
            raise CodedHTTPException(401, str(exc), exc.code) from None
    request.state.api_caller = caller
    return caller


class ServiceGuard:
    """What a service account may do: its scopes, in its areas; every use and every refusal
    goes to the audit record under `svc:<name>`."""

    def __init__(self, request: Request, caller: Caller, service: RadioService) -> None:
        self.request = request
        self.caller = caller
        self.service = service

    def check(self, scope: Scope_, area_ids: list[str]) -> None:
        if not self.caller.may(scope):
            reason = f"the API key lacks the scope {scope.value}"
            self.audit(f"denied:{scope.value}", ",".join(area_ids), {"reason": reason}, "denied")
            raise CodedHTTPException(403, reason, "api_key_scope")
        with self.service.db.session() as session:
            tree = self.service.registry.area_tree(session)
        outside = self.caller.outside(area_ids, tree)
        if outside:
            reason = (
                f"outside the key's areas ({', '.join(self.caller.areas)}): {', '.join(outside)}"
            )
            self.audit(f"denied:{scope.value}", ",".join(area_ids), {"reason": reason}, "denied")
            raise CodedHTTPException(403, reason, "api_key_area")

    def audit(
        self,
        action: str,
        target: str = "",
        detail: dict[str, Any] | None = None,
        outcome: str = "ok",
    ) -> None:
        from controller.auth.audit import record

        with self.service.db.session() as s:
            record(
                s,
                self.caller.actor,
                action,
                target,
                detail,
                role="service",
                ip=client_ip(self.request),
                outcome=outcome,
            )


def get_service_guard(request: Request, service: ServiceDep) -> ServiceGuard:
    return ServiceGuard(request, api_caller(request, service), service)


ServiceGuardDep = Annotated[ServiceGuard, Depends(get_service_guard)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


class Guard:
    """Checks a permission (and, when asked, areas) and records refusals in the audit record."""

    def __init__(self, request: Request, user: User, session: Session, service: RadioService):
        self.request = request
        self.user = user
        self.session = session
        self.service = service
        self._tree: AreaTree | None = None

    @property
    def tree(self) -> AreaTree:
        if self._tree is None:
            self._tree = self.service.registry.area_tree(self.session)
        return self._tree

    def check(self, permission: Permission, area_ids: list[str] | None = None) -> None:
        try:
            require(self.user, permission, area_ids, self.tree)
        except Forbidden as exc:
            self.audit(
                f"denied:{permission.value}",
                ",".join(area_ids or []),
                {"reason": str(exc)},
                outcome="denied",
            )
            code = "outside_area" if area_ids and has(self.user, permission) else "forbidden"
            raise CodedHTTPException(403, str(exc), code) from None

    def sees(self, area_id: str | None) -> bool:
        return in_scope(self.user, area_id, self.tree)

    def sees_content(self, content_area: str | None) -> bool:
        return sees_content(self.user, content_area, self.tree)

    def check_content_change(self, what: str, content_area: str | None) -> None:
        """Every route that changes or deletes content asks here (controller/auth/access.py says
        who may); a refusal is recorded like any other."""
        self.check(Permission.write_content)
        if not may_change_content(self.user, content_area, self.tree):
            reason = (
                f"{what} belongs to a higher level ({content_area or 'the whole system'}); "
                "only that level may change or delete it"
            )
            self.audit("denied:change_content", what, {"reason": reason}, outcome="denied")
            raise CodedHTTPException(403, reason, "content_of_higher_level")

    def concerns(self, areas: list[str]) -> bool:
        """Something aimed at these areas concerns the user when it targets their area, an
        area below it, or one above it (a province-wide bulletin reaches every commune)."""
        user_area = self.user.area_id
        return any(
            self.sees(a) or (user_area is not None and self.tree.contains(a, user_area))
            for a in areas
        )

    def audit(
        self,
        action: str,
        target: str = "",
        detail: dict[str, Any] | None = None,
        outcome: str = "ok",
    ) -> None:
        from controller.auth.audit import record

        with self.service.db.session() as s:
            record(
                s,
                self.user.username,
                action,
                target,
                detail,
                role=self.user.role,
                ip=client_ip(self.request),
                outcome=outcome,
            )


async def get_guard(
    request: Request, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> Guard:
    return Guard(request, user, session, service)


GuardDep = Annotated[Guard, Depends(get_guard)]
