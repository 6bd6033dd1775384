"""Long-lived objects leave the collector's sight; what is garbage is freed first."""

from __future__ import annotations

import gc
import weakref

from protocol import gc_pauses
from protocol.heap import (
    FREEZE_AGAIN_AFTER_S,
    FREEZE_EVERY_S,
    SLOW_FULL_COLLECTION_S,
    FreezeWatch,
    freeze_long_lived,
    give_back_free_memory,
    limit_arenas,
)


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


def test_arenas_are_capped_unless_the_operator_chose(monkeypatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert limit_arenas() is True  # glibc (Debian) takes the cap
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False  # the operator's setting stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
    assert limit_arenas() is False  # in either form


def test_freed_memory_goes_back_to_the_system() -> None:
    # 40 MB in blocks below glibc's mmap threshold come from the heap; freed, they stay
    # with the allocator until trimmed.
    blocks = [bytearray(64 * 1024) for _ in range(640)]
    del blocks
    assert give_back_free_memory() is True


def test_a_slow_full_collection_brings_the_next_freeze_forward() -> None:
    pauses = gc_pauses.GcPauses()
    watch = FreezeWatch(pauses, now=0.0)
    assert not watch.due(FREEZE_AGAIN_AFTER_S + 1)  # nothing slow: wait for the period
    pauses.record(2, SLOW_FULL_COLLECTION_S / 2)  # a full collection, quick enough
    pauses.record(1, 5.0)  # a slow younger one says nothing of the frozen heap
    assert not watch.due(FREEZE_AGAIN_AFTER_S + 1)
    pauses.record(2, SLOW_FULL_COLLECTION_S * 3)
    assert not watch.due(FREEZE_AGAIN_AFTER_S - 1)  # not again so soon after the last
    assert watch.due(FREEZE_AGAIN_AFTER_S + 1)
    watch.frozen(FREEZE_AGAIN_AFTER_S + 1)  # the slow one is accounted for
    assert not watch.due(2 * FREEZE_AGAIN_AFTER_S + 2)
    assert watch.due(FREEZE_AGAIN_AFTER_S + 1 + FREEZE_EVERY_S)  # the period still holds
