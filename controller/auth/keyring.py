"""The controller's signing keys over time, and the root-signed key announcements that tell nodes.

In the secrets directory:

- `keyring.json`: the root public keys and the latest key announcement (a signed envelope whose
  body lists every signing key with its validity window); nothing secret.
- `controller-ed25519.pem`: the first signing key; later ones are `controller-ed25519-<kid>.pem`.
  A key's file is deleted once its window has closed.
- `root-ed25519.pem`: the root key, created with the keyring. It signs key announcements only,
  the running service never reads it, and it belongs offline (`radio keys rotate --root-key`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from controller.mqtt.broker_access import write_atomic
from protocol import (
    Envelope,
    KeyEntry,
    KeySetBody,
    Signer,
    key_id,
    load_public_key,
    public_key_b64,
)
from protocol.keyset import KEYS_KIND, MAX_RETIRED
from protocol.signing import load_private_key, new_private_key, save_private_key

log = logging.getLogger(__name__)

KEYRING_FILE = "keyring.json"
FIRST_KEY_FILE = "controller-ed25519.pem"
ROOT_KEY_FILE = "root-ed25519.pem"
# Announcements stay retained for years; their serial, not their expiry, stops replays.
ANNOUNCEMENT_TTL_MS = 10 * 365 * 24 * 3600 * 1000


class KeyringError(ValueError):
    """A key operation that cannot be done; the message says why and what to do."""


@dataclass
class Keyring:
    dir: Path
    roots: list[str]
    announcement: str | None = None
    _first_kid: str | None = field(default=None, repr=False)

    @classmethod
    def open(cls, secrets_dir: Path) -> Keyring:
        """The keyring of this controller; created (with a first key and a root key) if new."""
        path = secrets_dir / KEYRING_FILE
        if path.exists():
            try:
                data = json.loads(path.read_text())
                ring = cls(secrets_dir, list(data["roots"]), data.get("announcement"))
                _ = ring.body  # refuse a keyring whose announcement does not parse
                return ring
            except (ValueError, KeyError, TypeError) as exc:
                raise KeyringError(f"{path} is damaged ({exc}); restore it from a backup") from None
        first = secrets_dir / FIRST_KEY_FILE
        if not first.exists():
            save_private_key(new_private_key(), first)
            log.info("created the controller signing key %s", first)
        root = new_private_key()
        save_private_key(root, secrets_dir / ROOT_KEY_FILE)
        ring = cls(secrets_dir, [public_key_b64(root.public_key())])
        ring.save()
        log.warning(
            "created the root key %s: it signs key rotations only; move it off this machine "
            "and keep it safe (radio keys rotate --root-key PATH)",
            secrets_dir / ROOT_KEY_FILE,
        )
        return ring

    def reload(self) -> None:
        """Take what another process (the `radio keys` command) wrote."""
        fresh = Keyring.open(self.dir)
        self.roots, self.announcement = fresh.roots, fresh.announcement

    def save(self) -> None:
        data = {"roots": self.roots, "announcement": self.announcement}
        write_atomic(self.dir / KEYRING_FILE, json.dumps(data, indent=2))

    def stamp(self) -> tuple[int, int]:
        """Changes when another process (the `radio keys` command) rewrote the keyring."""
        st = (self.dir / KEYRING_FILE).stat()
        return st.st_mtime_ns, st.st_size

    @property
    def body(self) -> KeySetBody | None:
        if self.announcement is None:
            return None
        try:
            return KeySetBody.model_validate(Envelope.model_validate_json(self.announcement).body)
        except ValidationError as exc:
            raise ValueError(f"announcement does not parse: {exc.error_count()} errors") from None

    @property
    def serial(self) -> int:
        body = self.body
        return body.serial if body else 0

    @property
    def root_kids(self) -> list[str]:
        return [_kid(r) for r in self.roots]

    def entries(self) -> list[KeyEntry]:
        """Every signing key with its window: the announced set, or the first key alone."""
        body = self.body
        if body is not None:
            return list(body.keys)
        public = load_private_key(self.dir / FIRST_KEY_FILE).public_key()
        return [KeyEntry(kid=key_id(public), public_key=public_key_b64(public))]

    def key_file(self, kid: str) -> Path:
        first = self.dir / FIRST_KEY_FILE
        if self._first_kid is None:
            self._first_kid = key_id(load_private_key(first).public_key()) if first.exists() else ""
        return first if kid == self._first_kid else self.dir / f"controller-ed25519-{kid}.pem"

    def signing_entry(self, now_ms: int) -> KeyEntry:
        """The key to sign with now: the newest whose window is open and whose file is here."""
        usable = [e for e in self.entries() if _open(e, now_ms) and self.key_file(e.kid).exists()]
        if not usable:
            raise KeyringError(
                f"no signing key of {self.dir} is valid now and present; "
                "issue a new one with `radio keys rotate --compromised`"
            )
        return max(usable, key=lambda e: e.not_before)

    def trusted(self, now_ms: int) -> list[str]:
        """Public keys for provisioning files: every key not yet retired."""
        return [e.public_key for e in self.entries() if e.not_after is None or now_ms < e.not_after]

    def next_change(self, now_ms: int) -> int | None:
        """When the signing key changes or a key retires next."""
        times = [t for e in self.entries() for t in (e.not_before, e.not_after) if t is not None]
        later = [t for t in times if t > now_ms]
        return min(later) if later else None

    def discard_retired(self, now_ms: int) -> list[str]:
        """Delete the files of keys whose window has closed: a later theft finds nothing."""
        gone = []
        for e in self.entries():
            if e.not_after is not None and now_ms >= e.not_after:
                path = self.key_file(e.kid)
                if path.exists():
                    path.unlink()
                    gone.append(e.kid)
        return gone

    def check_root(self, root: Ed25519PrivateKey) -> None:
        if key_id(root.public_key()) not in self.root_kids:
            raise KeyringError(
                f"that is not this controller's root key (root key ids: "
                f"{', '.join(self.root_kids)}); give the file created as {ROOT_KEY_FILE}"
            )

    def announce(
        self, root: Ed25519PrivateKey, keys: list[KeyEntry], retired: list[str], now_ms: int
    ) -> KeySetBody:
        """Sign and store the next key set with the root key."""
        self.check_root(root)
        retired = list(dict.fromkeys(retired))[-MAX_RETIRED:]
        body = KeySetBody(serial=self.serial + 1, keys=keys, retired=retired)
        # seq = serial: announcements may be signed on another machine with another clock.
        env = Signer(root).envelope(
            KEYS_KIND, body.model_dump(mode="json"), now_ms, ANNOUNCEMENT_TTL_MS, seq=body.serial
        )
        self.announcement = env.model_dump_json()
        self.save()
        return body


def _kid(public_b64: str) -> str:
    return key_id(load_public_key(public_b64))


def _open(entry: KeyEntry, now_ms: int) -> bool:
    return entry.not_before <= now_ms and (entry.not_after is None or now_ms < entry.not_after)
