"""The controller's signer (the keyring's current key, a sequence that never goes back) and the
node media tokens derived from its secret."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from pathlib import Path

from controller.auth.keyring import Keyring
from controller.mqtt.broker_access import write_atomic
from protocol import Signer, load_private_key, public_key_b64

log = logging.getLogger(__name__)

SEQ_FILE = "signer-seq"
SEQ_SAVE_EVERY_S = 1.0
# What may have been issued after the last save (seq is milliseconds: one second of them).
SEQ_RESTART_MARGIN_MS = 1000


class KeyringSigner(Signer):
    """Signs with the keyring's current key. The highest sequence issued is saved (at most once a
    second, and on `flush_seq`), so that after a restart with the clock set back (a controller
    without a battery-backed clock, an NTP step) nodes do not take new messages for replays."""

    def __init__(self, keyring: Keyring, now_ms: int) -> None:
        self.keyring = keyring
        self._seq_path = keyring.dir / SEQ_FILE
        self._saved_seq = _read_seq(self._seq_path)
        self._saved_at = 0.0
        self._save_lock = threading.Lock()
        entry = keyring.signing_entry(now_ms)
        floor = self._saved_seq + SEQ_RESTART_MARGIN_MS if self._saved_seq else 0
        super().__init__(load_private_key(keyring.key_file(entry.kid)), seq_floor=floor)

    def _next_seq(self) -> int:
        seq = super()._next_seq()
        if time.monotonic() - self._saved_at >= SEQ_SAVE_EVERY_S:
            self.flush_seq()
        return seq

    def flush_seq(self) -> None:
        with self._save_lock:
            seq = self.last_seq
            if seq <= self._saved_seq:
                return
            try:
                write_atomic(self._seq_path, str(seq))
            except OSError as exc:
                log.error("cannot save the signing sequence in %s: %s", self._seq_path, exc)
                return
            self._saved_seq, self._saved_at = seq, time.monotonic()


def _read_seq(path: Path) -> int:
    try:
        return max(0, int(path.read_text().strip()))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.error("ignoring unreadable %s (%s): sequences restart from the clock", path, exc)
        return 0


def load_or_create_signer(secrets_dir: Path) -> KeyringSigner:
    return KeyringSigner(Keyring.open(secrets_dir), int(time.time() * 1000))


def trusted_keys(signer: Signer) -> list[str]:
    """The signing keys a newly provisioned node trusts: every key not yet retired."""
    if isinstance(signer, KeyringSigner):
        return signer.keyring.trusted(int(time.time() * 1000))
    return [public_key_b64(signer.public_key)]


def root_keys(signer: Signer) -> list[str]:
    """The keys whose signature a node needs on a key announcement."""
    return list(signer.keyring.roots) if isinstance(signer, KeyringSigner) else []


def key_serial(signer: Signer) -> int:
    """The key set the keys in a provisioning file belong to."""
    return signer.keyring.serial if isinstance(signer, KeyringSigner) else 0


def media_token(secret: str, node_id: str, credential: str, expires_s: int) -> str:
    """A node's bearer token for media, streams and firmware: `node_id.expires.hmac`.

    The HMAC covers the node's current broker credential (its password hash), so a token dies
    when the node is retired (no credential) or provisioned again (a new one), and `expires`
    (epoch seconds), so a copied token dies on its own; nodes get fresh ones with their broker
    password (`POST /media/token`)."""
    message = f"media:{node_id}:{expires_s}:{credential}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{node_id}.{expires_s}.{mac[:40]}"


def media_token_parts(token: str) -> tuple[str, int] | None:
    """The node id and expiry (epoch seconds) a token claims, unchecked; None if malformed."""
    node_id, _, rest = token.rpartition(".")  # node ids may contain dots; the rest do not
    node_id, _, expires = node_id.rpartition(".")
    if not node_id or not rest or not expires.isdigit() or len(expires) > 12:
        return None
    return node_id, int(expires)


def check_media_token(secret: str, token: str, credential: str | None, now_s: float) -> bool:
    """Whether `token` is valid now for a node whose current credential is `credential`
    (None or empty: unknown or retired node)."""
    parts = media_token_parts(token)
    if parts is None or not credential:
        return False
    node_id, expires_s = parts
    if expires_s <= now_s:
        return False
    return hmac.compare_digest(media_token(secret, node_id, credential, expires_s), token)
