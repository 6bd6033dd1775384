"""The gate for controller messages: signature, freshness and replay checks, counted by reason."""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from protocol import Envelope, RejectedMessage

if TYPE_CHECKING:
    from firmware_sim.node import Node

log = logging.getLogger(__name__)

# At most this many message_rejected events per window, so a flood of junk cannot push
# real playback events out of the bounded outbox (the counters still see everything).
REJECT_EVENTS_PER_WINDOW = 20
REJECT_WINDOW_S = 60.0


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
    """The envelope if it is signed, fresh and new; None (counted unless benign) otherwise."""
    try:
        return node.verifier.verify(topic, payload, kind=kind, now_ms=node.clock.now_ms())
    except RejectedMessage as exc:
        if exc.reason == "duplicate":
            log.debug("%s: retained message seen again on %s", node.node_id, topic)
            return None
        node.reject(exc.reason, str(exc).removeprefix(exc.reason).lstrip(": "), topic)
    except Exception as exc:  # e.g. RecursionError from absurdly nested JSON
        node.reject("malformed", type(exc).__name__, topic)
    return None


def summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]
    )[:300]
