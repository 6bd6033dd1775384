"""The node's clock measured against the controller's, through the protocol itself.

Each live controller message carries the controller's time when it was issued (an envelope's
`iat`, the controller state's `ts`). On arrival, (local receive time − issue time) is this
clock's offset from the controller's plus the delay on the way (network, broker, queues), which
is never negative. The smallest of the recent samples is therefore the best upper bound on the
offset, and the one least spoiled by delay (the minimum filter of NTP). The controller measures
the other direction from heartbeats and combines the two (docs/protocol.md, "Clock offset").

Retained messages are not samples: the broker may have held them for days.
"""

from __future__ import annotations

import collections
import time

# The minimum of this many recent samples, none older than MAX_AGE_S (a stepped clock or a
# changed route must not be remembered for ever).
SAMPLES = 16
MAX_AGE_S = 6 * 3600.0


class ClockWatch:
    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=SAMPLES)
        self._arrived_ms: int | None = None

    def arrived(self, received_ms: int, live: bool) -> None:
        """A message has arrived (before it is checked); retained ones are not timed."""
        self._arrived_ms = received_ms if live else None

    def issued(self, issued_ms: int) -> None:
        """The message that arrived last was checked and carries this issue time."""
        if self._arrived_ms is None:
            return
        self._samples.append((time.monotonic(), self._arrived_ms - issued_ms))
        self._arrived_ms = None

    def delay_ms(self) -> int | None:
        """min(receive − issue) over the recent samples; None when there is none."""
        cutoff = time.monotonic() - MAX_AGE_S
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()
        if not self._samples:
            return None
        return max(-86_400_000, min(86_400_000, min(d for _, d in self._samples)))
