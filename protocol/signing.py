"""Signed controller-to-node messages: Ed25519 over canonical JSON, with expiry and sequence.

Every message the controller sends to nodes is an `Envelope`. Nodes accept it only when it is
signed by a key they trust (a root key for key announcements, a signing key in its validity
window for everything else), is within its validity window and is newer than the last message
they accepted on the same topic; everything else is dropped and counted by reason.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, Field, ValidationError

from protocol.keyset import (
    KEYS_KIND,
    MAX_FUTURE_SKEW_MS,
    KeySet,
    TrustedKey,
    key_id,
    load_public_key,
    public_key_b64,
)
from protocol.replay import ReplayState

__all__ = [
    "MAX_FUTURE_SKEW_MS",
    "Envelope",
    "RejectedMessage",
    "Signer",
    "Verifier",
    "canonical",
    "key_id",
    "load_private_key",
    "load_public_key",
    "new_private_key",
    "public_key_b64",
    "save_private_key",
]


class Envelope(BaseModel):
    v: int = 1
    kind: str = Field(max_length=32)
    id: str = Field(max_length=64)
    seq: int = Field(ge=0)
    iat: int = Field(ge=0)
    exp: int = Field(ge=0)
    kid: str = Field(max_length=64, description="id of the key that signed: sha256(raw key)[:16]")
    body: dict[str, Any]
    sig: str = Field(default="", max_length=200)


class RejectedMessage(ValueError):
    """Why a node dropped a message: malformed, unsigned, unknown_key, retired_key,
    key_not_yet_valid, bad_signature, expired, not_yet_valid, replayed, wrong_kind; `duplicate`
    is benign (a retained message seen again)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def save_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(path)


class Signer:
    """Signs envelopes. `seq` is wall-clock milliseconds, kept strictly increasing and never
    below `seq_floor` (what an earlier run issued), so it orders every message of a controller
    even across restarts and a clock set back. `switch` changes the key in place, so everything
    holding this signer signs with the new key from then on."""

    def __init__(self, key: Ed25519PrivateKey, seq_floor: int = 0) -> None:
        self._lock = threading.Lock()
        self._last_seq = seq_floor
        self.switch(key)

    def switch(self, key: Ed25519PrivateKey) -> None:
        with self._lock:
            self.key = key
            self.public_key = key.public_key()
            self.kid = key_id(self.public_key)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def _next_seq(self) -> int:
        with self._lock:
            seq = max(int(time.time() * 1000), self._last_seq + 1)
            self._last_seq = seq
            return seq

    def envelope(
        self, kind: str, body: dict[str, Any], now_ms: int, ttl_ms: int, seq: int | None = None
    ) -> Envelope:
        with self._lock:
            key, kid = self.key, self.kid
        env = Envelope(
            kind=kind,
            id=uuid.uuid4().hex,
            seq=self._next_seq() if seq is None else seq,
            iat=now_ms,
            exp=now_ms + ttl_ms,
            kid=kid,
            body=body,
        )
        unsigned = env.model_dump(exclude={"sig"})
        env.sig = base64.b64encode(key.sign(canonical(unsigned))).decode()
        return env

    def sign(self, kind: str, body: dict[str, Any], now_ms: int, ttl_ms: int) -> bytes:
        return self.envelope(kind, body, now_ms, ttl_ms).model_dump_json().encode()


# A message for a whole area reaches every node of an emulator process as the same bytes. Each
# real device checks it on its own processor, in parallel; an emulator running a thousand nodes
# on one core would check it a thousand times in a row. So a process remembers, for the last
# few messages it has verified, the exact bytes and the raw public key that verified them: the
# same bytes under the same key give the same answer, and anything else (another key, a
# byte changed) is verified in full. Freshness and replay stay per node. Shared envelopes are
# read-only. Small messages only, so that the memory stays bounded.
_VERIFIED_MAX = 32
_VERIFIED_MAX_BYTES = 320 * 1024  # an alert with its audio inside
_verified: collections.OrderedDict[tuple[bytes, str], tuple[bytes, Envelope]] = (
    collections.OrderedDict()
)
_verified_lock = threading.Lock()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _remembered(digest: bytes, kind: str) -> tuple[bytes, Envelope] | None:
    with _verified_lock:
        hit = _verified.get((digest, kind))
        if hit is not None:
            _verified.move_to_end((digest, kind))
        return hit


def _remember(digest: bytes, kind: str, raw: bytes, env: Envelope) -> None:
    with _verified_lock:
        _verified[(digest, kind)] = (raw, env)
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)


class Verifier:
    """Checks envelopes on a node: root keys for key announcements, the current key set for the
    rest, and the last accepted (seq, id) per topic against replays."""

    def __init__(
        self,
        trusted: Mapping[str, Ed25519PublicKey | TrustedKey] | KeySet,
        roots: Mapping[str, Ed25519PublicKey] | None = None,
        replay: ReplayState | None = None,
    ) -> None:
        if isinstance(trusted, KeySet):
            self.keys = trusted
        else:
            self.keys = KeySet(
                {k: v if isinstance(v, TrustedKey) else TrustedKey(v) for k, v in trusted.items()}
            )
        self.roots = dict(roots or {})
        self.replay = replay or ReplayState()

    @property
    def trusted(self) -> dict[str, TrustedKey]:
        return self.keys.keys

    @classmethod
    def from_b64(cls, keys: list[str], roots: list[str] | None = None, serial: int = 0) -> Verifier:
        publics = [load_public_key(k) for k in roots or []]
        return cls(KeySet.from_b64(keys, serial), {key_id(p): p for p in publics})

    def authentic(self, payload: bytes, kind: str) -> Envelope:
        """The envelope if a key trusted for `kind` signed it, fresh or not."""
        digest = None
        if len(payload) <= _VERIFIED_MAX_BYTES:
            digest = hashlib.sha256(payload).digest()
            hit = _remembered(digest, kind)
            if hit is not None and _raw(self._public_key(hit[1].kid, kind)) == hit[0]:
                return hit[1]
        try:
            data = json.loads(payload)
            env = Envelope.model_validate(data)
        except (ValueError, UnicodeDecodeError, ValidationError):
            raise RejectedMessage("malformed") from None
        if not env.sig:
            raise RejectedMessage("unsigned")
        public = self._public_key(env.kid, kind)
        try:
            public.verify(base64.b64decode(env.sig), canonical(env.model_dump(exclude={"sig"})))
        except (InvalidSignature, ValueError):
            raise RejectedMessage("bad_signature") from None
        if env.kind != kind:
            raise RejectedMessage("wrong_kind", env.kind)
        if digest is not None:
            _remember(digest, kind, _raw(public), env)
        return env

    def verify(self, topic: str, payload: bytes, kind: str, now_ms: int) -> Envelope:
        """The envelope if it is authentic, fresh and newer than the topic's last; it is then
        recorded as the topic's last."""
        env = self.authentic(payload, kind)
        if self.replay.duplicate(topic, env.id):
            raise RejectedMessage("duplicate")
        if now_ms >= env.exp:
            raise RejectedMessage("expired")
        if env.iat > now_ms + MAX_FUTURE_SKEW_MS:
            raise RejectedMessage("not_yet_valid")
        if kind != KEYS_KIND and (reason := self.keys.refusal(env.kid, now_ms)):
            raise RejectedMessage(reason, env.kid)
        if reason := self.replay.refusal(topic, env.seq, env.id, kind):
            last = self.replay.last[topic][0]
            raise RejectedMessage(reason, f"seq {env.seq} <= {last}")
        self.replay.record(topic, env.seq, env.id)
        return env

    def _public_key(self, kid: str, kind: str) -> Ed25519PublicKey:
        # Root keys sign key announcements and nothing else; signing keys never sign those.
        if kind == KEYS_KIND:
            root = self.roots.get(kid)
            if root is None:
                raise RejectedMessage("unknown_key", f"{kid} is not a root key")
            return root
        trusted = self.keys.get(kid)
        if trusted is None:
            raise RejectedMessage(self.keys.refusal(kid, 0) or "unknown_key", kid)
        return trusted.public
