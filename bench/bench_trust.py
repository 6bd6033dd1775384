"""What keeping the replay state on disk costs a fleet: one signed timeline checked by each of N
nodes in one process, without a cache directory and with the replay journal appended to before
acting; then the fsync that follows in a worker thread, and a restart that reloads every journal.

Run: .venv/bin/python bench/bench_trust.py [nodes] [items]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from firmware_sim.config import NodeConfig
from firmware_sim.trust_store import TrustStore
from protocol import Signer, new_private_key, public_key_b64


def timeline(node_id: str, items: int, now: int) -> dict[str, object]:
    media = {"url": "http://127.0.0.1/media/" + "a" * 64 + ".mp3", "sha256": "a" * 64, "size": 1}
    return {
        "node_id": node_id,
        "version": 2,
        "generated_at": now,
        "horizon_end": now + 86_400_000,
        "items": [
            {
                "item_id": f"s{i}@{now + i}",
                "broadcast_id": str(i),
                "start": now + i * 60_000,
                "duration_ms": 20_000,
                "priority": "normal",
                "title": "Thông báo lịch tiêm chủng",
                "media": media,
            }
            for i in range(items)
        ],
    }


APPENDS: list[float] = []


def stores(nodes: int, key: str, cache: Path | None) -> list[TrustStore]:
    for i in range(nodes if cache else 0):
        (cache / f"n{i}").mkdir(parents=True, exist_ok=True)  # type: ignore[operator]
    return [
        TrustStore(NodeConfig(node_id=f"n{i}", controller_keys=[key]), cache and cache / f"n{i}")
        for i in range(nodes)
    ]


def fan_out(fleet: list[TrustStore], signer: Signer, items: int) -> tuple[float, list[float]]:
    """Every node checks and records its own timeline, as after one publish to all; the time of
    the journal appends alone goes to APPENDS."""
    now = int(time.time() * 1000)
    payloads = [
        signer.sign("timeline", timeline(s.node_id, items, now), now, 60_000) for s in fleet
    ]
    each: list[float] = []
    began = time.perf_counter()
    for store, payload in zip(fleet, payloads, strict=True):
        t0 = time.perf_counter()
        topic = f"radio/v1/node/{store.node_id}/timeline"
        store.verifier.verify(topic, payload, "timeline", now)
        t1 = time.perf_counter()
        store.accepted(topic)
        APPENDS.append(time.perf_counter() - t1)
        each.append(time.perf_counter() - t0)
    return time.perf_counter() - began, each


def line(label: str, total: float, each: list[float] | None = None) -> str:
    text = f"{label:38s} total {total * 1000:7.1f} ms"
    if each:
        p95 = statistics.quantiles(each, n=20)[18] * 1e6
        text += f"; per node p50 {statistics.median(each) * 1e6:5.0f} µs, p95 {p95:5.0f} µs"
    return text


async def main(nodes: int, items: int) -> None:
    signer = Signer(new_private_key())
    key = public_key_b64(signer.public_key)
    print(f"{nodes} nodes, one signed timeline of {items} items each")
    print(
        line("check only (no cache directory)", *fan_out(stores(nodes, key, None), signer, items))
    )
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        fleet = stores(nodes, key, Path(tmp))
        print(line("check + append, first (creates journal)", *fan_out(fleet, signer, items)))
        APPENDS.clear()
        print(line("check + append, next timeline", *fan_out(fleet, signer, items)))
        print(line("  of which the journal append", sum(APPENDS), APPENDS))
        t0 = time.perf_counter()
        for store in fleet:
            assert store.journal is not None
            store.journal.close()  # the fsync the worker thread would do a second later
        print(line("fsync of every journal (worker thread)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        fleet = stores(nodes, key, Path(tmp))
        print(line("restart: load every journal", time.perf_counter() - t0))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    asyncio.run(main(n, k))
