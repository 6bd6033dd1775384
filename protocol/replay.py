"""Replay state of a receiver: the last accepted (seq, id) per topic, which survives a restart.

The controller's `seq` grows strictly on every message it signs, so a message whose `seq` is not
above the last one accepted on its topic is old news being played back. The state is small (one
entry per subscribed topic); a receiver records each accepted message on disk before acting.

After a restart the broker delivers the retained messages again (the timeline, active alerts, the
key announcement): the same envelope as the last one accepted on a retained topic is then taken
once more, because what it set up was lost with the restart. On a topic that is never retained
(commands) the same envelope after a restart is a replay.
"""

from __future__ import annotations

# Envelope kinds published retained: after a restart the broker legitimately delivers them again.
RETAINED_KINDS = frozenset({"timeline", "alert", "keys"})
MAX_TOPICS = 256


class ReplayState:
    def __init__(self, last: dict[str, tuple[int, str]] | None = None) -> None:
        self.last: dict[str, tuple[int, str]] = dict(last or {})
        # Topics whose entry came from disk and that have not delivered anything since.
        self.restored: set[str] = set()

    def duplicate(self, topic: str, env_id: str) -> bool:
        """The envelope last accepted on the topic, seen again in this run (benign)."""
        last = self.last.get(topic)
        return last is not None and last[1] == env_id and topic not in self.restored

    def refusal(self, topic: str, seq: int, env_id: str, kind: str) -> str | None:
        """`replayed` when the envelope is not newer than what the topic last accepted."""
        last = self.last.get(topic)
        if last is None:
            return None
        if env_id == last[1]:
            restored_retained = topic in self.restored and kind in RETAINED_KINDS
            return None if restored_retained else "replayed"
        return "replayed" if seq <= last[0] else None

    def record(self, topic: str, seq: int, env_id: str) -> None:
        self.last[topic] = (seq, env_id)
        self.restored.discard(topic)
        if len(self.last) > MAX_TOPICS:  # a node re-provisioned into other areas many times
            oldest = min(self.last, key=lambda t: self.last[t][0])
            del self.last[oldest]

    @classmethod
    def restore(cls, last: dict[str, tuple[int, str]]) -> ReplayState:
        """The state a previous run left: every topic is marked restored until it delivers."""
        state = cls(dict(list(last.items())[-MAX_TOPICS:]))
        state.restored = set(state.last)
        return state
