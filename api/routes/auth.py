"""Log in (OAuth2 password flow), refresh, who am I; users are managed by administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from api.deps import CurrentUser, GuardDep, ServiceDep, SessionDep, client_ip
from api.schemas import ID_PATTERN, Strict
from api.session import LoginRefused, authenticate
from controller.auth.access import Permission
from controller.auth.security import (
    ACCESS_TTL,
    REFRESH_TTL,
    InvalidToken,
    make_token,
    read_token,
)
from controller.auth.users import UserError
from controller.auth.users import create_user as create
from controller.core.models import RefreshToken, Role, User
from controller.service import RadioService

router = APIRouter(tags=["auth"])


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshIn(Strict):
    refresh_token: str = Field(max_length=2000)


class UserPublic(BaseModel):
    id: int
    username: str
    full_name: str
    role: Role
    area_id: str | None
    active: bool


class UserCreate(Strict):
    username: str = Field(pattern=ID_PATTERN)
    full_name: str = Field(default="", max_length=200)
    password: str = Field(max_length=200)
    role: Role
    area_id: str | None = Field(default=None, pattern=ID_PATTERN)


def issue_tokens(service: RadioService, session: Session, user: User) -> TokenPair:
    assert user.id is not None
    secret = service.settings.secret_key
    access, _ = make_token(secret, user.id, user.username, user.role, "access", ACCESS_TTL)
    refresh, claims = make_token(secret, user.id, user.username, user.role, "refresh", REFRESH_TTL)
    session.add(RefreshToken(jti=claims.jti, user_id=user.id, expires_at=claims.expires))
    session.commit()
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(ACCESS_TTL.total_seconds())
    )


@router.post("/auth/token", response_model=TokenPair)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    service: ServiceDep,
    session: SessionDep,
) -> TokenPair:
    try:
        user = authenticate(
            service, session, form.username, form.password, client_ip(request), via=None
        )
    except LoginRefused as refused:
        if refused.retry_after:
            raise HTTPException(
                429,
                f"too many failed logins; try again in {refused.retry_after} s",
                headers={"Retry-After": str(refused.retry_after)},
            ) from None
        raise HTTPException(
            401, "wrong user name or password", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return issue_tokens(service, session, user)


@router.post("/auth/refresh", response_model=TokenPair)
def refresh(body: RefreshIn, service: ServiceDep, session: SessionDep) -> TokenPair:
    try:
        claims = read_token(service.settings.secret_key, body.refresh_token, "refresh")
    except InvalidToken:
        raise HTTPException(401, "the refresh token is invalid or expired; log in again") from None
    stored = session.get(RefreshToken, claims.jti)
    user = session.get(User, claims.user_id)
    if stored is None or stored.revoked or user is None or not user.active:
        raise HTTPException(401, "the refresh token was revoked; log in again")
    stored.revoked = True  # one use each: a stolen, replayed refresh token is useless
    session.add(stored)
    return issue_tokens(service, session, user)


@router.get("/auth/me", response_model=UserPublic)
def me(user: CurrentUser) -> User:
    return user


@router.get("/users", response_model=list[UserPublic])
def list_users(guard: GuardDep, session: SessionDep) -> list[User]:
    guard.check(Permission.manage_users)
    return list(session.exec(select(User).order_by(User.username)).all())


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, guard: GuardDep, session: SessionDep) -> User:
    guard.check(Permission.manage_users)
    try:
        user = create(
            session, body.username, body.password, body.role, body.area_id, body.full_name
        )
    except UserError as exc:
        raise HTTPException(422, str(exc)) from None
    guard.audit("user.create", body.username, {"role": body.role, "area_id": body.area_id})
    return user
