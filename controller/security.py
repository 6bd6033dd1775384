"""Passwords (argon2), password rules, JWT access and refresh tokens, and login throttling."""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=7)
_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """The password breaks the rules; the message says which."""


def check_password_rules(password: str, username: str = "") -> None:
    if len(password) < 10:
        raise WeakPassword("the password must have at least 10 characters")
    if len(password) > 200:
        raise WeakPassword("the password must have at most 200 characters")
    if not re.search(r"[^\W\d_]", password) or not re.search(r"\d", password):
        raise WeakPassword("the password must contain letters and digits")
    if username and username.lower() in password.lower():
        raise WeakPassword("the password must not contain the user name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so that timing does not tell.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass
class TokenClaims:
    user_id: int
    username: str
    role: str
    kind: str
    jti: str
    expires: datetime


class InvalidToken(ValueError):
    pass


def make_token(
    secret: str, user_id: int, username: str, role: str, kind: str, ttl: timedelta
) -> tuple[str, TokenClaims]:
    now = datetime.now(UTC)
    claims = TokenClaims(user_id, username, role, kind, secrets.token_hex(16), now + ttl)
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "name": username,
        "role": role,
        "typ": kind,
        "jti": claims.jti,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires.timestamp()),
    }
    return jwt.encode(payload, secret, algorithm="HS256"), claims


def read_token(secret: str, token: str, kind: str) -> TokenClaims:
    try:
        data = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if data.get("typ") != kind:
        raise InvalidToken(f"not a {kind} token")
    try:
        return TokenClaims(
            int(data["sub"]),
            str(data["name"]),
            str(data["role"]),
            kind,
            str(data["jti"]),
            datetime.fromtimestamp(int(data["exp"]), UTC),
        )
    except (KeyError, ValueError, TypeError):
        raise InvalidToken("malformed claims") from None


class LoginThrottle:
    """After 5 failures for one user name or one address, wait 30 s, doubling up to 15 min."""

    def __init__(self, free_failures: int = 5, base_s: float = 30, max_s: float = 900) -> None:
        self.free = free_failures
        self.base = base_s
        self.max = max_s
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        now = time.monotonic()
        with self._lock:
            waits = [self._failures.get(k, (0, 0.0))[1] - now for k in keys]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                count, _ = self._failures.get(k, (0, 0.0))
                count += 1
                until = 0.0
                if count >= self.free:
                    until = now + min(self.base * 2 ** (count - self.free), self.max)
                self._failures[k] = (count, until)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
