"""What a node's processor spends on an emergency alert, the MQTT client aside: checking the
signed message (signature, freshness, replay), validating its body, accepting it, taking the
speaker and starting it, and queueing its two confirmations (`Inbound.on_alert`).

Three ways, each the median of several rounds of a template alert whose audio is held:
- a device: one node at a time, nothing shared (the signature checked in full each time);
- a device with its cache directory on disk (the replay journal and the outbox appended to);
- an emulator process: N nodes take the same message in turn, as when an area's alert reaches
  them; a process checks the same bytes under the same key once (`protocol/signing.py`).
The baseline, in the same run: the Ed25519 check of the signature alone.

Run: .venv/bin/python bench/bench_node_alert.py [N] [--rounds R]   (default 500 nodes, 7 rounds)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_sim.config import NodeConfig  # noqa: E402
from firmware_sim.node import Node  # noqa: E402
from protocol import SystemClock, Topics, signing  # noqa: E402
from protocol.heap import collect_less_often, freeze_long_lived  # noqa: E402
from protocol.signing import Signer, canonical, new_private_key, public_key_b64  # noqa: E402

AREA = "xa-1"
SHA = "ab" * 32


def alert(signer: Signer, n: int) -> bytes:
    now = SystemClock().now_ms()
    body = {
        "alert_id": f"a{n:019d}",
        "version": 1,
        "action": "play",
        "area": AREA,
        "title": "Cảnh báo lũ: sơ tán ngay",
        "media": {"url": f"http://127.0.0.1/media/{SHA}.mp3", "sha256": SHA, "size": 98304},
        "duration_ms": 16200,
        "repeat": 3,
        "pause_ms": 3000,
        "volume": 100,
        "test": True,
        "expires": now + 3_600_000,
        "play_by": now + 600_000,
    }
    return signer.sign("alert", body, now, 3_600_000)


def make_nodes(n: int, key: str, cache_dir: str | None) -> list[Node]:
    nodes = []
    for i in range(n):
        config = NodeConfig(
            node_id=f"loa-{i:05d}", areas=[AREA], controller_keys=[key], cache_dir=cache_dir
        )
        node = Node(config, SystemClock())
        node.media.verified[SHA] = 98304  # the audio is held: the alert sounds as it is taken
        nodes.append(node)
    return nodes


def take(nodes: list[Node], payload: bytes, alone: bool) -> float:
    """µs per node for each of `nodes` to take `payload`, then the alert is stopped (untimed)."""
    topic = Topics("radio").area_alert(AREA)
    spent = 0.0
    for node in nodes:
        if alone:
            signing._verified.clear()  # a device checks every message itself
        t = time.perf_counter()
        node.inbound.on_alert(topic, payload, AREA)
        spent += time.perf_counter() - t
        if node.alerts.active is None:
            raise SystemExit(f"{node.node_id} refused the alert: {dict(node.rejected)}")
    for node in nodes:
        for run in list(node.alerts.runs.values()):
            run.stop("bench")
    return spent / len(nodes) * 1e6


def verify_only(signer: Signer, payload: bytes) -> float:
    """The baseline: the Ed25519 check of the message's signature alone, µs."""
    env = signing.Envelope.model_validate_json(payload)
    sig, data = base64.b64decode(env.sig), canonical(env.model_dump(exclude={"sig"}))
    public = signer.public_key
    t = time.perf_counter()
    for _ in range(200):
        public.verify(sig, data)
    return (time.perf_counter() - t) / 200 * 1e6


async def measure(n: int, rounds: int) -> list[tuple[str, float, float]]:
    signer = Signer(new_private_key())
    key = public_key_b64(signer.public_key)
    with tempfile.TemporaryDirectory() as tmp:
        device, on_disk, fleet = (
            make_nodes(20, key, None),
            make_nodes(20, key, tmp),
            make_nodes(n, key, None),
        )
        collect_less_often()  # as an emulator process runs (firmware_sim/cli.py)
        freeze_long_lived()
        times: dict[str, list[float]] = {"device": [], "disk": [], "fleet": [], "verify": []}
        for r in range(rounds):
            times["device"].append(take(device, alert(signer, 3 * r), alone=True))
            times["disk"].append(take(on_disk, alert(signer, 3 * r + 1), alone=True))
            times["fleet"].append(take(fleet, alert(signer, 3 * r + 2), alone=False))
            times["verify"].append(verify_only(signer, alert(signer, 0)))
            await asyncio.sleep(0)  # the stopped runs' tasks end
        for node in device + on_disk + fleet:
            node.alerts.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return [
        ("a device, one alert", med["device"], med["verify"]),
        ("a device keeping its journal and outbox on disk", med["disk"], med["verify"]),
        (
            f"one of {n:,} nodes of an emulator process, the same message",
            med["fleet"],
            med["verify"],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", type=int, nargs="?", default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.nodes, args.rounds))
    print(f"\n{args.rounds} rounds, medians\n")
    print("| node | µs of CPU to take an alert | baseline: the signature check alone, µs |")
    print("|---|---:|---:|")
    for name, us, base in rows:
        print(f"| {name} | {us:.1f} | {base:.1f} |")


if __name__ == "__main__":
    main()
