"""Service accounts for other systems: created, listed and revoked by an administrator."""

from __future__ import annotations

import json

from fastapi import APIRouter, status
from sqlmodel import col, select

from api.bulletin_schemas import ServiceAccountCreate, ServiceAccountCreated, ServiceAccountPublic
from api.deps import GuardDep, ServiceDep, SessionDep
from controller.auth.access import Permission
from controller.auth.service_accounts import ServiceAccountError, create_account, revoke
from controller.core.errors import Invalid, NotFound
from controller.core.models import ServiceAccount
from controller.core.time import as_utc, utc_datetime

router = APIRouter(prefix="/service-accounts", tags=["service accounts"])


def public(account: ServiceAccount) -> ServiceAccountPublic:
    assert account.id is not None
    return ServiceAccountPublic(
        id=account.id,
        name=account.name,
        description=account.description,
        prefix=account.prefix,
        areas=json.loads(account.areas),
        scopes=json.loads(account.scopes),
        expires_at=account.expires_at,
        revoked_at=account.revoked_at,
        revoked_by=account.revoked_by,
        last_used_at=account.last_used_at,
        last_used_ip=account.last_used_ip,
        uses=account.uses,
        created_by=account.created_by,
        created_at=account.created_at,
    )


@router.get("", response_model=list[ServiceAccountPublic])
def list_accounts(guard: GuardDep, session: SessionDep) -> list[ServiceAccountPublic]:
    guard.check(Permission.manage_users)
    rows = session.exec(select(ServiceAccount).order_by(col(ServiceAccount.name))).all()
    return [public(a) for a in rows]


@router.post("", response_model=ServiceAccountCreated, status_code=status.HTTP_201_CREATED)
def create(
    body: ServiceAccountCreate, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> ServiceAccountCreated:
    """The key is in this answer only: it is stored as a digest."""
    guard.check(Permission.manage_users)
    try:
        account, key = create_account(
            session,
            body.name,
            body.areas,
            body.scopes,
            None if body.expires_at is None else as_utc(body.expires_at),
            guard.user.username,
            body.description,
            now=utc_datetime(service.clock.now_ms()),
        )
    except ServiceAccountError as exc:
        raise Invalid(str(exc)) from None
    guard.audit(
        "service_account.create",
        account.name,
        {"areas": body.areas, "scopes": body.scopes, "prefix": account.prefix},
    )
    return ServiceAccountCreated(**public(account).model_dump(), key=key)


@router.post("/{name}/revoke", response_model=ServiceAccountPublic)
def revoke_account(
    name: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> ServiceAccountPublic:
    guard.check(Permission.manage_users)
    try:
        account = revoke(session, name, guard.user.username, utc_datetime(service.clock.now_ms()))
    except ServiceAccountError as exc:
        raise NotFound(str(exc)) from None
    guard.audit("service_account.revoke", name)
    return public(account)
