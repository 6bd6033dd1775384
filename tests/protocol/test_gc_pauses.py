"""The garbage collector's pauses, timed by generation from its own callbacks."""

from __future__ import annotations

import gc

from protocol import gc_pauses


def test_each_collection_is_timed_in_its_generation_and_bucket():
    pauses = gc_pauses.install()
    assert gc_pauses.install() is pauses and gc.callbacks.count(pauses.on_gc) == 1
    before = pauses.summary()
    garbage = []
    for _ in range(1000):  # cycles only the collector frees
        a: list[object] = []
        a.append(a)
        garbage.append(a)
    del garbage, a
    gc.collect()  # the oldest generation
    gc.collect(0)
    after = pauses.summary()
    assert after["2"]["count"] >= before["2"]["count"] + 1
    assert after["0"]["count"] >= before["0"]["count"] + 1
    assert after["2"]["total_s"] > before["2"]["total_s"]
    assert 0 < after["2"]["longest_s"] <= after["2"]["total_s"]
    buckets = pauses.cumulative(2)
    assert buckets[-1] == ("+Inf", after["2"]["count"])
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)  # cumulative
