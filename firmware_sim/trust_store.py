"""What a node keeps of its trust across restarts: the last key announcement and the replay state.

Both live in the node's cache directory (nothing is kept without one). The key announcement is
rare and written atomically (temporary file, fsync, rename), so a power cut leaves the old or
the new file, never half of one; the replay state is a journal (see `replay_journal`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from firmware_sim.config import NodeConfig
from firmware_sim.replay_journal import ReplayJournal, write_atomic
from protocol import KeySetBody, RejectedMessage, Verifier
from protocol.keyset import KEYS_KIND

log = logging.getLogger(__name__)

KEYS_FILE = "keys.json"
REPLAY_FILE = "replay.log"


class TrustStore:
    """The node's verifier, loaded from the provisioning file and the cache directory."""

    def __init__(self, config: NodeConfig, cache_dir: Path | None) -> None:
        self.node_id = config.node_id
        self.verifier = Verifier.from_b64(
            config.controller_keys, config.root_keys, config.key_serial
        )
        self.dir = cache_dir
        self.write_failures = 0
        # A retained message was refused for its key: fetch retained messages again once a key
        # announcement changes the keys.
        self.refused_retained = False
        self.journal: ReplayJournal | None = None
        if cache_dir is not None:
            self._load_announcement(cache_dir / KEYS_FILE)
            self.journal = ReplayJournal(cache_dir / REPLAY_FILE, self.node_id)
            try:
                self.verifier.replay = self.journal.load()
            except OSError as exc:
                # Starting empty keeps the node working; what it loses is protection against
                # replays of what it accepted before this start (logged, for the technician).
                log.error("%s: replay state unreadable (%s); it starts empty", self.node_id, exc)

    def _load_announcement(self, path: Path) -> None:
        """The key set last adopted, checked again against the root keys (a file edited on the
        device is not trusted)."""
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("%s: cannot read %s: %s", self.node_id, path, exc)
            return
        try:
            env = self.verifier.authentic(payload, KEYS_KIND)
            body = KeySetBody.model_validate(env.body)
        except (RejectedMessage, ValidationError) as exc:
            log.warning("%s: ignoring stored key announcement %s: %s", self.node_id, path, exc)
            return
        self.verifier.keys.adopt(body)
        log.info("%s: trusting key set %d from %s", self.node_id, body.serial, path)

    def accepted(self, topic: str) -> None:
        """Record the envelope just accepted on `topic`, before the node acts on it."""
        if self.journal is None:
            return
        try:
            self.journal.append(self.verifier.replay, topic)
        except OSError as exc:  # a full or failing card must not stop the loudspeaker
            self.write_failures += 1
            log.error("%s: cannot record accepted message: %s", self.node_id, exc)

    def save_announcement(self, payload: bytes) -> None:
        if self.dir is None:
            return
        try:
            write_atomic(self.dir / KEYS_FILE, payload)
        except OSError as exc:
            self.write_failures += 1
            log.error("%s: cannot keep the key announcement: %s", self.node_id, exc)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
