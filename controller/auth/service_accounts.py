"""Service accounts: API keys for one system to call another (a provincial platform pushing
bulletins), apart from people's logins.

A key is `rsk_<prefix>_<secret>`: the prefix finds the account, the secret (32 random bytes)
is compared with its stored SHA-256 digest in constant time. A slow password hash would add
nothing against a 256-bit random secret and would cost every call; people's passwords keep
argon2. A key may do only what its scopes name, only in its areas (and below), only until it
expires or is revoked; each use stamps the account's last use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, select

from controller.core.models import Area, ServiceAccount
from protocol import valid_id
from schedules import AreaTree

KEY_START = "rsk_"


class Scope(StrEnum):
    bulletins_push = "bulletins:push"  # push bulletins for the key's areas


class ServiceAccountError(ValueError):
    """An account that cannot be created or changed; the message says why."""


class KeyRefused(Exception):
    """A key that does not open the door; `code` is the API's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Caller:
    """An authenticated service account, as the routes see it."""

    id: int
    name: str
    areas: tuple[str, ...]
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"svc:{self.name}"

    def may(self, scope: Scope) -> bool:
        return scope.value in self.scopes

    def outside(self, area_ids: list[str], tree: AreaTree) -> list[str]:
        """The areas not within the key's areas."""
        return [a for a in area_ids if not any(tree.contains(top, a) for top in self.areas)]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_account(
    session: Session,
    name: str,
    areas: list[str],
    scopes: list[str],
    expires_at: datetime | None,
    created_by: str,
    description: str = "",
    now: datetime | None = None,
) -> tuple[ServiceAccount, str]:
    """The new account and its key, which is never stored nor shown again."""
    if not valid_id(name):
        raise ServiceAccountError("name: lowercase letters, digits, '-', '_' or '.' (max 64)")
    if not areas:
        raise ServiceAccountError("give at least one area the account may act for")
    for area_id in areas:
        if session.get(Area, area_id) is None:
            raise ServiceAccountError(f"area {area_id!r} does not exist")
    known = {s.value for s in Scope}
    unknown = [s for s in scopes if s not in known]
    if unknown or not scopes:
        raise ServiceAccountError(
            f"scopes: give one or more of {', '.join(sorted(known))}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    if expires_at is not None and now is not None and expires_at <= now:
        raise ServiceAccountError("the expiry is in the past: give a later date")
    if session.exec(select(ServiceAccount).where(ServiceAccount.name == name)).first():
        raise ServiceAccountError(f"service account {name!r} already exists")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    account = ServiceAccount(
        name=name,
        description=description[:200],
        prefix=prefix,
        key_hash=digest(secret),
        areas=json.dumps(sorted(set(areas))),
        scopes=json.dumps(sorted(set(scopes))),
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(account)
    session.commit()
    session.refresh(account)
    return account, f"{KEY_START}{prefix}_{secret}"


def authenticate(session: Session, key: str, now: datetime, ip: str = "") -> Caller:
    """The caller a key belongs to; its last use is stamped (committed). KeyRefused otherwise."""
    prefix, _, secret = key.removeprefix(KEY_START).partition("_")
    if not key.startswith(KEY_START) or not prefix or not secret:
        raise KeyRefused("the API key is malformed: send the key as it was shown", "api_key_bad")
    account = session.exec(select(ServiceAccount).where(ServiceAccount.prefix == prefix)).first()
    if account is None or not hmac.compare_digest(account.key_hash, digest(secret)):
        raise KeyRefused("the API key is not valid", "api_key_bad")
    if account.revoked_at is not None:
        raise KeyRefused(f"the API key of {account.name!r} was revoked", "api_key_revoked")
    if account.expires_at is not None and as_aware(account.expires_at) <= now:
        raise KeyRefused(f"the API key of {account.name!r} has expired", "api_key_expired")
    account.last_used_at, account.last_used_ip = now, ip[:64]
    account.uses += 1
    session.add(account)
    session.commit()
    assert account.id is not None
    return Caller(
        id=account.id,
        name=account.name,
        areas=tuple(json.loads(account.areas)),
        scopes=frozenset(json.loads(account.scopes)),
    )


def revoke(session: Session, name: str, by: str, now: datetime) -> ServiceAccount:
    account = session.exec(select(ServiceAccount).where(ServiceAccount.name == name)).first()
    if account is None:
        raise ServiceAccountError(f"service account {name!r} does not exist")
    if account.revoked_at is None:
        account.revoked_at, account.revoked_by = now, by
        session.add(account)
        session.commit()
        session.refresh(account)
    return account


def as_aware(when: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    from datetime import UTC

    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
