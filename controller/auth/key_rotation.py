"""Key rotation: the next signing key announced ahead of its time, the switch, the retirement.

`rotate` and `retire` run in the `radio keys` command, with the root key at hand; `KeyRollover`
runs in the service and carries out what the keyring says when it says it: it publishes the
announcement (retained), switches the signer when the next key's window opens, has every
retained message signed again, and deletes the files of retired keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.auth.keyring import Keyring, KeyringError
from controller.auth.keys import KeyringSigner
from controller.core.config import TIMEZONE
from controller.core.periodic import Periodic
from controller.mqtt.gateway import Gateway, NotConnected
from protocol import KeyEntry, Topics, key_id, public_key_b64
from protocol.clock import Clock
from protocol.signing import load_private_key, new_private_key, save_private_key

log = logging.getLogger(__name__)

CHECK_S = 1.0
REPUBLISH_S = 300.0  # heals a retained announcement cleared from the broker


def rotate(
    ring: Keyring,
    root: Ed25519PrivateKey,
    now_ms: int,
    switch_in_ms: int,
    retire_after_ms: int,
    compromised: bool = False,
) -> KeyEntry:
    """Announce a new signing key that takes over in `switch_in_ms`; the keys in use now are
    trusted `retire_after_ms` longer. `compromised`: every older key is retired at once."""
    ring.check_root(root)
    entries = ring.entries()
    pending = [e for e in entries if e.not_before > now_ms]
    if pending and not compromised:
        raise KeyringError(
            f"key {pending[0].kid} is already announced to take over at "
            f"{local_time(pending[0].not_before)}; rotate again after that (or --compromised)"
        )
    switch_at = now_ms if compromised else now_ms + switch_in_ms
    body = ring.body
    retired = list(body.retired) if body else []
    keep: list[KeyEntry] = []
    for e in entries:
        if compromised or (e.not_after is not None and e.not_after <= now_ms):
            retired.append(e.kid)
            continue
        until = switch_at + retire_after_ms
        until = min(e.not_after, until) if e.not_after is not None else until
        keep.append(KeyEntry.model_validate({**e.model_dump(), "not_after": until}))
    key = new_private_key()
    public = key.public_key()
    new = KeyEntry(kid=key_id(public), public_key=public_key_b64(public), not_before=switch_at)
    save_private_key(key, ring.key_file(new.kid))  # before announcing: the service must find it
    ring.announce(root, [*keep, new], retired, now_ms)
    return new


def retire(ring: Keyring, root: Ed25519PrivateKey, now_ms: int) -> list[str]:
    """Stop trusting, now, every key but the one signing now (ends a rotation's grace period)."""
    ring.check_root(root)
    entries = ring.entries()
    pending = [e for e in entries if e.not_before > now_ms]
    if pending:
        raise KeyringError(
            f"key {pending[0].kid} takes over at {local_time(pending[0].not_before)}; "
            "retire the old key after that"
        )
    current = ring.signing_entry(now_ms)
    others = [e.kid for e in entries if e.kid != current.kid]
    if not others:
        raise KeyringError(f"only key {current.kid} is trusted: nothing to retire")
    body = ring.body
    retired = [*(body.retired if body else []), *others]
    keep = KeyEntry.model_validate({**current.model_dump(), "not_after": None})
    ring.announce(root, [keep], retired, now_ms)
    return others


def local_time(ms: int) -> str:
    """An epoch-ms time as people here read it."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(TIMEZONE)).strftime("%Y-%m-%d %H:%M:%S %z")


class KeyRollover:
    """The service's side of rotation; `run()` until cancelled."""

    def __init__(
        self,
        signer: KeyringSigner,
        gateway: Gateway,
        topics: Topics,
        clock: Clock,
        resign: Callable[[], Awaitable[None]],
    ) -> None:
        self.signer = signer
        self.ring = signer.keyring
        self.gateway = gateway
        self.topics = topics
        self.clock = clock
        self.resign = resign
        self._stamp = self.ring.stamp()
        self._published = 0.0
        self._problem = ""

    async def publish(self) -> None:
        """The announcement, retained (nothing before the first rotation)."""
        announcement = self.ring.announcement
        if announcement is None:
            return
        try:
            await self.gateway.publish(self.topics.controller_keys, announcement.encode(), 1, True)
            self._published = time.monotonic()
        except NotConnected:
            log.warning("broker unavailable: the key announcement goes out on reconnect")

    async def run(self) -> None:
        await Periodic("key rollover check", CHECK_S, self.check).run()

    async def check(self) -> None:
        stamp = await asyncio.to_thread(self.ring.stamp)
        if stamp != self._stamp:
            self._stamp = stamp
            await asyncio.to_thread(self.ring.reload)
            log.info("keyring changed: key set %d", self.ring.serial)
            await self.publish()
        now = self.clock.now_ms()
        try:
            entry = await asyncio.to_thread(self.ring.signing_entry, now)
        except KeyringError as exc:
            if str(exc) != self._problem:
                self._problem = str(exc)
                log.error("%s; still signing with %s", exc, self.signer.kid)
            return
        self._problem = ""
        if entry.kid != self.signer.kid:
            key = await asyncio.to_thread(load_private_key, self.ring.key_file(entry.kid))
            old = self.signer.kid
            self.signer.switch(key)
            log.warning("signing with key %s (was %s); signing all again", entry.kid, old)
            await self.resign()
        for kid in await asyncio.to_thread(self.ring.discard_retired, now):
            log.warning("key %s retired: its private key file is deleted", kid)
        await asyncio.to_thread(self.signer.flush_seq)
        if self.gateway.connected.is_set() and time.monotonic() - self._published > REPUBLISH_S:
            await self.publish()
