"""The gate for controller messages: signature, freshness and replay checks, counted by reason;
and key announcements, which change the keys the gate trusts."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

import aiomqtt
from pydantic import ValidationError

from firmware_sim.clock_watch import ClockWatch
from firmware_sim.outbox import Emit
from firmware_sim.trust_store import TrustStore
from protocol import Clock, Envelope, EventType, KeySetBody, RejectedMessage
from protocol.keyset import KEYS_KIND
from protocol.replay import RETAINED_KINDS

log = logging.getLogger(__name__)

# At most this many message_rejected events per window, so a flood of junk cannot push
# real playback events out of the bounded outbox (the counters still see everything).
REJECT_EVENTS_PER_WINDOW = 20
REJECT_WINDOW_S = 60.0
# Refusals that a key announcement arriving later may cure.
_KEY_REASONS = frozenset({"unknown_key", "key_not_yet_valid"})

Reject = Callable[[str, str, str], None]
"""Drop a message: (reason, detail, topic)."""


class Rejections:
    """Dropped messages: counted by reason, logged, and reported as events unless a flood of
    them would push real reports out of the outbox."""

    def __init__(self, node_id: str = "", emit: Emit | None = None) -> None:
        self.node_id = node_id
        self.emit = emit
        self.counts: collections.Counter[str] = collections.Counter()
        self._window_start = 0.0
        self._reported = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def record(self, reason: str) -> bool:
        """Count one; True when it should also be reported as an event."""
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self._window_start > REJECT_WINDOW_S:
            self._window_start, self._reported = now, 0
        if self._reported >= REJECT_EVENTS_PER_WINDOW:
            return False
        self._reported += 1
        return True

    def reject(self, reason: str, detail: str, topic: str) -> None:
        """Count and log a dropped message; report it unless reports are being flooded."""
        leaf = topic.rsplit("/", 1)[-1]
        log.warning("%s: rejected message on %s: %s %s", self.node_id, leaf, reason, detail)
        if self.record(reason) and self.emit is not None:
            self.emit(EventType.message_rejected, detail=f"{reason} on {leaf}: {detail}"[:500])


class Gate:
    """Lets through controller messages that are signed, fresh and new."""

    def __init__(
        self,
        node_id: str,
        clock: Clock,
        store: TrustStore,
        clock_watch: ClockWatch,
        reject: Reject,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.store = store
        self.clock_watch = clock_watch
        self.reject = reject

    def verify(self, topic: str, payload: bytes, kind: str) -> Envelope | None:
        """The envelope if it is signed, fresh and new; None (counted unless benign) otherwise.

        An accepted envelope is recorded on disk before the caller acts on it, so that a restart
        cannot make the node take it (or anything older) again.
        """
        try:
            env = self.store.verifier.verify(topic, payload, kind=kind, now_ms=self.clock.now_ms())
        except RejectedMessage as exc:
            if exc.reason == "duplicate":
                log.debug("%s: retained message seen again on %s", self.node_id, topic)
                return None
            if exc.reason in _KEY_REASONS and kind in RETAINED_KINDS and kind != KEYS_KIND:
                # Perhaps signed with a key announced in a message not yet received.
                self.store.refused_retained = True
            self.reject(exc.reason, str(exc).removeprefix(exc.reason).lstrip(": "), topic)
        except Exception as exc:  # e.g. RecursionError from absurdly nested JSON
            self.reject("malformed", type(exc).__name__, topic)
        else:
            self.store.accepted(topic)
            self.clock_watch.issued(env.iat)
            return env
        return None


class KeyAnnouncements:
    """Key announcements: adopted if a root key signed them and their serial is newer; then
    the retained messages refused for an unknown key are asked for again."""

    def __init__(
        self,
        node_id: str,
        gate: Gate,
        store: TrustStore,
        emit: Emit,
        reject: Reject,
        retained_topics: list[str],
    ) -> None:
        self.node_id = node_id
        self.gate = gate
        self.store = store
        self.emit = emit
        self.reject = reject
        self.retained_topics = retained_topics  # the timeline's and the areas' alerts

    async def on_keys(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        env = self.gate.verify(topic, payload, KEYS_KIND)
        if env is None:
            return
        try:
            body = KeySetBody.model_validate(env.body)
        except ValidationError as exc:
            self.reject("invalid_body", summarise(exc), topic)
            return
        keys = self.store.verifier.keys
        if body.serial < keys.serial:
            self.reject("stale", f"key set {body.serial} < {keys.serial}", topic)
            return
        if not keys.adopt(body):
            log.debug("%s: key set %d already held", self.node_id, body.serial)
            return
        self.store.save_announcement(payload)
        kids = ", ".join(e.kid for e in body.keys)
        log.info("%s: now trusting key set %d (%s)", self.node_id, body.serial, kids)
        self.emit(EventType.keys_applied, detail=f"serial {body.serial}: {kids}")
        if self.store.refused_retained:
            self.store.refused_retained = False
            await self.refetch_retained(client)

    async def refetch_retained(self, client: aiomqtt.Client) -> None:
        """Subscribe again, so the broker sends the retained timeline and alerts once more."""
        await client.unsubscribe(self.retained_topics)
        await client.subscribe([(topic, 1) for topic in self.retained_topics])


def summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]
    )[:300]
