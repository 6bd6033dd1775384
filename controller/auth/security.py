"""Passwords (argon2), password rules, JWT access and refresh tokens, and login throttling."""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class LoginAttempt:
    """One login attempt, counted before its password is checked. `wait` > 0: refused unchecked
    (seconds to wait). `undo`: per key, the lock before this attempt and the one it set."""

    account: str
    address: str
    wait: float
    undo: dict[str, tuple[float, float]] = field(default_factory=dict)


class LoginThrottle:
    """After 5 failures for one user name or one address, wait 30 s, doubling up to 15 min.

    Each attempt is counted on both keys *before* its password is checked, under one lock, so
    attempts sent in parallel are counted as they come and the ones past the limit are refused
    unchecked. A success clears the account's own failures and takes back only its own attempt
    from the address: the address's failures for other accounts stay."""

    def __init__(self, free_failures: int = 5, base_s: float = 30, max_s: float = 900) -> None:
        self.free = free_failures
        self.base = base_s
        self.max = max_s
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def attempt(self, account: str, address: str) -> LoginAttempt:
        now = time.monotonic()
        with self._lock:
            waits = [self._failures.get(k, (0, 0.0))[1] - now for k in (account, address)]
            wait = max([0.0, *waits])
            if wait > 0:
                return LoginAttempt(account, address, wait)
            undo = {}
            for k in (account, address):
                count, before = self._failures.get(k, (0, 0.0))
                count += 1
                until = before
                if count >= self.free:
                    until = now + min(self.base * 2 ** (count - self.free), self.max)
                self._failures[k] = (count, until)
                undo[k] = (before, until)
            return LoginAttempt(account, address, 0.0, undo)

    def succeeded(self, attempt: LoginAttempt) -> None:
        with self._lock:
            self._failures.pop(attempt.account, None)
            if attempt.address not in self._failures:
                return
            count, until = self._failures[attempt.address]
            before, set_by_it = attempt.undo.get(attempt.address, (until, until))
            if until == set_by_it:
                until = before  # the lock this attempt's count set, not a later one
            if count <= 1:
                self._failures.pop(attempt.address, None)
            else:
                self._failures[attempt.address] = (count - 1, until)

    def clear(self, *keys: str) -> None:
        """Forget every failure of these keys (an administrator's reset)."""
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
