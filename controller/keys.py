"""The controller's signing key (Ed25519) and the node media tokens derived from its secret."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

from protocol import Signer, load_private_key, new_private_key, public_key_b64
from protocol.signing import save_private_key

log = logging.getLogger(__name__)


def load_or_create_signer(secrets_dir: Path) -> Signer:
    path = secrets_dir / "controller-ed25519.pem"
    if path.exists():
        return Signer(load_private_key(path))
    key = new_private_key()
    save_private_key(key, path)
    log.info("created the controller signing key %s", path)
    return Signer(key)


def trusted_keys(signer: Signer) -> list[str]:
    return [public_key_b64(signer.public_key)]


def media_token(secret: str, node_id: str) -> str:
    """A node's bearer token for media downloads: `node_id.hmac`, checkable without a lookup."""
    mac = hmac.new(secret.encode(), f"media:{node_id}".encode(), hashlib.sha256).hexdigest()
    return f"{node_id}.{mac[:40]}"


def check_media_token(secret: str, token: str) -> str | None:
    """The node id the token belongs to, or None."""
    node_id, _, _mac = token.partition(".")
    if not node_id or not _mac:
        return None
    return node_id if hmac.compare_digest(media_token(secret, node_id), token) else None
