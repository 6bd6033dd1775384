"""Which controller keys a node trusts: signing keys with validity windows, changed only by a key
announcement that a root key signed.

A root key (its public half is in every node's provisioning file) signs nothing but key
announcements; the controller's daily signing keys sign everything else. An announcement carries
the whole set of signing keys to trust from now on, with a `serial` that only grows, so a node
that missed several rotations catches up from the newest one alone and an old announcement can
never be replayed to bring back a retired key.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, Field, model_validator

MAX_FUTURE_SKEW_MS = 5 * 60 * 1000
KEYS_KIND = "keys"
MAX_RETIRED = 64


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))


class KeyEntry(BaseModel):
    """One signing key as announced: its signatures count from `not_before` (less the allowed
    clock skew) until `not_after` (none: until a later announcement says otherwise)."""

    kid: str = Field(max_length=64)
    public_key: str = Field(max_length=100, description="base64 of the raw Ed25519 public key")
    not_before: int = Field(default=0, ge=0, description="epoch ms")
    not_after: int | None = Field(default=None, ge=0, description="epoch ms")

    @model_validator(mode="after")
    def _consistent(self) -> KeyEntry:
        try:
            public = load_public_key(self.public_key)
        except ValueError:
            raise ValueError("public_key is not a base64 Ed25519 public key") from None
        if key_id(public) != self.kid:
            raise ValueError(f"kid {self.kid} is not the id of public_key")
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError(f"key {self.kid}: not_after must be later than not_before")
        return self


class KeySetBody(BaseModel):
    """Body of a `keys` envelope (`{prefix}/v1/controller/keys`, retained, signed by a root key):
    every signing key nodes trust from now on. Keys left out, and those in `retired`, are no
    longer trusted."""

    serial: int = Field(ge=1)
    keys: list[KeyEntry] = Field(min_length=1, max_length=8)
    retired: list[str] = Field(default_factory=list, max_length=MAX_RETIRED)

    @model_validator(mode="after")
    def _distinct(self) -> KeySetBody:
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise ValueError("a key is listed twice")
        if set(kids) & set(self.retired):
            raise ValueError("a key is both listed and retired")
        return self


@dataclass(frozen=True)
class TrustedKey:
    public: Ed25519PublicKey
    not_before: int = 0
    not_after: int | None = None


@dataclass
class KeySet:
    """The signing keys a node trusts and the serial of the key set they belong to. Keys from a
    provisioning file carry the serial current when it was written but no windows, so the
    announcement of that same serial is still taken (for its windows)."""

    keys: dict[str, TrustedKey]
    serial: int = 0
    retired: set[str] = field(default_factory=set)
    announced: bool = False

    @classmethod
    def from_b64(cls, keys: list[str], serial: int = 0) -> KeySet:
        publics = [load_public_key(k) for k in keys]
        return cls({key_id(p): TrustedKey(p) for p in publics}, serial)

    def get(self, kid: str) -> TrustedKey | None:
        return self.keys.get(kid)

    def refusal(self, kid: str, now_ms: int) -> str | None:
        """Why a signature by `kid` does not count now (None: it does)."""
        key = self.keys.get(kid)
        if key is None:
            return "retired_key" if kid in self.retired else "unknown_key"
        if key.not_after is not None and now_ms >= key.not_after:
            return "retired_key"
        if key.not_before > now_ms + MAX_FUTURE_SKEW_MS:
            return "key_not_yet_valid"
        return None

    def adopt(self, body: KeySetBody) -> bool:
        """Replace the set with a newer announcement's; False (nothing changed) if not newer."""
        if body.serial < self.serial or (body.serial == self.serial and self.announced):
            return False
        keys = {
            e.kid: TrustedKey(load_public_key(e.public_key), e.not_before, e.not_after)
            for e in body.keys
        }
        # Keys that leave the set are remembered as retired, so their use is reported as such.
        retired = (self.retired | set(self.keys) | set(body.retired)) - set(keys)
        self.keys, self.serial, self.announced = keys, body.serial, True
        self.retired = set(sorted(retired)[:MAX_RETIRED]) if len(retired) > MAX_RETIRED else retired
        return True
