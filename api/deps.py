"""Typed FastAPI dependencies: routes read like their contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from api.console.session import cookie_user as console_user
from controller.access import Forbidden, Permission, in_scope, require
from controller.models import User
from controller.security import InvalidToken, read_token
from controller.service import RadioService
from schedules import AreaTree

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_service(request: Request) -> RadioService:
    service: RadioService = request.app.state.service
    return service


ServiceDep = Annotated[RadioService, Depends(get_service)]


def get_session(service: ServiceDep) -> Iterator[Session]:
    with service.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_user(
    request: Request,
    service: ServiceDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2)],
) -> User:
    unauthorized = HTTPException(
        401,
        "log in first: send 'Authorization: Bearer <access token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if not token:
        # The web console sends its session cookie instead (and a CSRF header when it writes).
        cookie_user = console_user(request, service, session)
        if cookie_user is None:
            raise unauthorized
        request.state.user = cookie_user
        return cookie_user
    try:
        claims = read_token(service.settings.secret_key, token, "access")
    except InvalidToken:
        raise unauthorized from None
    user = session.get(User, claims.user_id)
    if user is None or not user.active:
        raise unauthorized
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


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
            raise HTTPException(403, str(exc)) from None

    def sees(self, area_id: str | None) -> bool:
        return in_scope(self.user, area_id, self.tree)

    def concerns(self, areas: list[str]) -> bool:
        """Something aimed at these areas concerns the user when it targets their area, an
        area below it, or one above it (a province-wide bulletin reaches every commune)."""
        user_area = self.user.area_id
        return any(
            self.sees(a) or (user_area is not None and self.tree.contains(a, user_area))
            for a in areas
        )

    def audit(
        self, action: str, target: str = "", detail: dict | None = None, outcome: str = "ok"
    ) -> None:
        from controller.audit import record

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


def get_guard(
    request: Request, user: CurrentUser, session: SessionDep, service: ServiceDep
) -> Guard:
    return Guard(request, user, session, service)


GuardDep = Annotated[Guard, Depends(get_guard)]
