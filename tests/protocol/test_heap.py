"""Long-lived objects leave the collector's sight; what is garbage is freed first."""

from __future__ import annotations

import gc
import weakref

from protocol.heap import (
    YOUNG_THRESHOLD,
    collect_less_often,
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


def test_young_collections_come_less_often_and_still_free_garbage_cycles() -> None:
    before = gc.get_threshold()
    gc.collect()
    try:
        collect_less_often()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        garbage = Cycle()
        gone = weakref.ref(garbage)
        del garbage
        # A Cycle is one or two tracked objects (its instance, perhaps its __dict__).
        made = [Cycle() for _ in range(YOUNG_THRESHOLD // 4)]
        assert gone() is not None  # not yet: fewer new objects than the threshold
        made += [Cycle() for _ in range(YOUNG_THRESHOLD)]
        assert gone() is None  # the collector ran by itself and freed the cycle nobody held
    finally:
        gc.set_threshold(*before)


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
