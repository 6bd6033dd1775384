"""The gate for controller messages: signature, freshness and replay checks, counted by reason;
and key announcements, which change the keys the gate trusts."""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING

import aiomqtt
from pydantic import ValidationError

from protocol import Envelope, EventType, KeySetBody, RejectedMessage
from protocol.keyset import KEYS_KIND
from protocol.replay import RETAINED_KINDS

if TYPE_CHECKING:
    from firmware_sim.node import Node

log = logging.getLogger(__name__)

# At most this many message_rejected events per window, so a flood of junk cannot push
# real playback events out of the bounded outbox (the counters still see everything).
REJECT_EVENTS_PER_WINDOW = 20
REJECT_WINDOW_S = 60.0
# Refusals that a key announcement arriving later may cure.
_KEY_REASONS = frozenset({"unknown_key", "key_not_yet_valid"})


class Rejections:
    """Dropped-message counters by reason, plus a budget for reporting them as events."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._window_start = 0.0
        self._reported = 0

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


def verify(node: Node, topic: str, payload: bytes, kind: str) -> Envelope | None:
    """The envelope if it is signed, fresh and new; None (counted unless benign) otherwise.

    An accepted envelope is recorded on disk before the caller acts on it, so that a restart
    cannot make the node take it (or anything older) again.
    """
    try:
        env = node.verifier.verify(topic, payload, kind=kind, now_ms=node.clock.now_ms())
    except RejectedMessage as exc:
        if exc.reason == "duplicate":
            log.debug("%s: retained message seen again on %s", node.node_id, topic)
            return None
        if exc.reason in _KEY_REASONS and kind in RETAINED_KINDS and kind != KEYS_KIND:
            # Perhaps signed with a key announced in a message not yet received.
            node.trust.refused_retained = True
        node.reject(exc.reason, str(exc).removeprefix(exc.reason).lstrip(": "), topic)
    except Exception as exc:  # e.g. RecursionError from absurdly nested JSON
        node.reject("malformed", type(exc).__name__, topic)
    else:
        node.trust.accepted(topic)
        node.clock_watch.issued(env.iat)
        return env
    return None


async def on_keys(node: Node, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
    """A key announcement: adopted if a root key signed it and its serial is newer."""
    env = verify(node, topic, payload, KEYS_KIND)
    if env is None:
        return
    try:
        body = KeySetBody.model_validate(env.body)
    except ValidationError as exc:
        node.reject("invalid_body", summarise(exc), topic)
        return
    keys = node.verifier.keys
    if body.serial < keys.serial:
        node.reject("stale", f"key set {body.serial} < {keys.serial}", topic)
        return
    if not keys.adopt(body):
        log.debug("%s: key set %d already held", node.node_id, body.serial)
        return
    node.trust.save_announcement(payload)
    kids = ", ".join(e.kid for e in body.keys)
    log.info("%s: now trusting key set %d (%s)", node.node_id, body.serial, kids)
    node.emit(EventType.keys_applied, detail=f"serial {body.serial}: {kids}")
    if node.trust.refused_retained:
        node.trust.refused_retained = False
        await refetch_retained(node, client)


async def refetch_retained(node: Node, client: aiomqtt.Client) -> None:
    """Subscribe again, so the broker sends the retained timeline and alerts once more."""
    t = node.topics
    topics = [t.timeline(node.node_id), *(t.area_alert(a) for a in node.config.areas)]
    await client.unsubscribe(topics)
    await client.subscribe([(topic, 1) for topic in topics])


def summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]
    )[:300]
