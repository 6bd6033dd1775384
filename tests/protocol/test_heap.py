"""Long-lived objects leave the collector's sight; what is garbage is freed first."""

from __future__ import annotations

import gc
import weakref

from protocol.heap import freeze_long_lived


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freeze_collects_garbage_first_then_freezes_what_lives() -> None:
    keep = [Cycle() for _ in range(100)]
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage
    try:
        freeze_long_lived()
        assert gone() is None  # a cycle nobody holds was collected, not frozen
        assert gc.get_freeze_count() >= len(keep)
        assert not any(any(o is k for o in gc.get_objects()) for k in keep[:3])
    finally:
        gc.unfreeze()
    assert any(o is keep[0] for o in gc.get_objects())
