"""Signed controller-to-node messages: Ed25519 over canonical JSON, with expiry and sequence.

Every message the controller sends to nodes is an `Envelope`. Nodes accept it only when it is
signed by a key they trust, is within its validity window and is newer than the last message
they accepted on the same topic; everything else is dropped and counted by reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, Field, ValidationError

MAX_FUTURE_SKEW_MS = 5 * 60 * 1000


class Envelope(BaseModel):
    v: int = 1
    kind: str = Field(max_length=32)
    id: str = Field(max_length=64)
    seq: int = Field(ge=0)
    iat: int = Field(ge=0)
    exp: int = Field(ge=0)
    kid: str = Field(max_length=64)
    body: dict[str, Any]
    sig: str = Field(default="", max_length=200)


class RejectedMessage(ValueError):
    """Why a node dropped a message: malformed, unsigned, unknown_key, bad_signature, expired,
    not_yet_valid, replayed, wrong_kind; `duplicate` is benign (a retained message seen again)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


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
    """Signs envelopes. `seq` is wall-clock milliseconds, kept strictly increasing, so that it
    survives restarts without being stored and orders messages from one controller."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.public_key = key.public_key()
        self.kid = key_id(self.public_key)
        self._last_seq = 0
        self._lock = threading.Lock()

    def _next_seq(self) -> int:
        with self._lock:
            seq = max(int(time.time() * 1000), self._last_seq + 1)
            self._last_seq = seq
            return seq

    def envelope(self, kind: str, body: dict[str, Any], now_ms: int, ttl_ms: int) -> Envelope:
        env = Envelope(
            kind=kind,
            id=uuid.uuid4().hex,
            seq=self._next_seq(),
            iat=now_ms,
            exp=now_ms + ttl_ms,
            kid=self.kid,
            body=body,
        )
        unsigned = env.model_dump(exclude={"sig"})
        env.sig = base64.b64encode(self.key.sign(canonical(unsigned))).decode()
        return env

    def sign(self, kind: str, body: dict[str, Any], now_ms: int, ttl_ms: int) -> bytes:
        return self.envelope(kind, body, now_ms, ttl_ms).model_dump_json().encode()


class Verifier:
    """Checks envelopes on a node. Keeps the last accepted (seq, id) per topic."""

    def __init__(self, trusted: dict[str, Ed25519PublicKey]) -> None:
        self.trusted = dict(trusted)
        self.last: dict[str, tuple[int, str]] = {}

    @classmethod
    def from_b64(cls, keys: list[str]) -> Verifier:
        pubs = [load_public_key(k) for k in keys]
        return cls({key_id(p): p for p in pubs})

    def verify(self, topic: str, payload: bytes, kind: str, now_ms: int) -> Envelope:
        try:
            data = json.loads(payload)
            env = Envelope.model_validate(data)
        except (ValueError, UnicodeDecodeError, ValidationError):
            raise RejectedMessage("malformed") from None
        if not env.sig:
            raise RejectedMessage("unsigned")
        key = self.trusted.get(env.kid)
        if key is None:
            raise RejectedMessage("unknown_key", env.kid)
        try:
            key.verify(base64.b64decode(env.sig), canonical(env.model_dump(exclude={"sig"})))
        except (InvalidSignature, ValueError):
            raise RejectedMessage("bad_signature") from None
        if env.kind != kind:
            raise RejectedMessage("wrong_kind", env.kind)
        last = self.last.get(topic)
        if last is not None and last[1] == env.id:
            raise RejectedMessage("duplicate")
        if now_ms >= env.exp:
            raise RejectedMessage("expired")
        if env.iat > now_ms + MAX_FUTURE_SKEW_MS:
            raise RejectedMessage("not_yet_valid")
        if last is not None and env.seq <= last[0]:
            raise RejectedMessage("replayed", f"seq {env.seq} <= {last[0]}")
        self.last[topic] = (env.seq, env.id)
        return env
