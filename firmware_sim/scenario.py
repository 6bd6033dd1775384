"""Fault scenarios: a TOML file of timed faults per node, played against a running fleet so
that every alarm can be shown happening.

```toml
# Times are seconds of node time after the scenario starts; without `duration` a fault stays.
[[fault]]
nodes = ["loa-01"]
kind = "speaker"            # speaker, amplifier, mains_lost, over_temperature, storage_full,
at = 10                     # offline, flap, hang, media_corrupt, silent
duration = 120

[[fault]]
node = "loa-02"
kind = "mains_lost"
battery_pct = 40            # when mains is lost
drain_pct_per_min = 10      # how fast the battery empties
```
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_sim.health import cut_link, restore_link
from protocol import Clock

if TYPE_CHECKING:
    from firmware_sim.node import Node

log = logging.getLogger(__name__)

FaultKind = Literal[
    "speaker",
    "amplifier",
    "mains_lost",
    "over_temperature",
    "storage_full",
    "offline",
    "flap",
    "hang",
    "media_corrupt",
    "silent",
]
# However fast a scaled clock runs, loops inside a fault wait at least this much real time.
MIN_STEP_REAL_S = 0.2


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message names the file and the fault."""


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    nodes: list[str] = Field(default_factory=list)
    node: str | None = None
    at: float = Field(default=0, ge=0, description="seconds after the start")
    duration: float | None = Field(default=None, gt=0)
    battery_pct: int = Field(default=60, ge=0, le=100)
    drain_pct_per_min: float = Field(default=5, ge=0, le=100)
    temperature_c: float = Field(default=85, ge=-40, le=150)
    period: float = Field(default=20, gt=0, description="flap: seconds between drops")

    @model_validator(mode="after")
    def _targets(self) -> Fault:
        if self.node:
            self.nodes = [*self.nodes, self.node]
        if not self.nodes:
            raise ValueError('name the node(s): node = "loa-01" or nodes = ["loa-01", …]')
        return self


class Scenario:
    def __init__(self, faults: list[Fault], source: str = "scenario") -> None:
        self.faults = faults
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
        unknown = set(data) - {"fault"}
        if unknown:
            raise ScenarioError(f"{path}: unknown keys {sorted(unknown)}; use [[fault]] tables")
        faults = []
        for i, raw in enumerate(data.get("fault", []), start=1):
            try:
                faults.append(Fault.model_validate(raw))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'fault'}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ScenarioError(f"{path}: fault {i}: {problems}") from None
        if not faults:
            raise ScenarioError(f"{path}: no [[fault]] entries")
        return cls(faults, str(path))

    def check(self, node_ids: Sequence[str]) -> None:
        """Every node a fault names must be in the fleet."""
        known = set(node_ids)
        missing = sorted({n for f in self.faults for n in f.nodes} - known)
        if missing:
            raise ScenarioError(f"{self.source}: nodes not in the fleet: {', '.join(missing)}")

    async def run(self, nodes: Sequence[Node], clock: Clock) -> None:
        """Play every fault at its time; returns when all have ended (or runs until cancelled
        when some stay)."""
        self.check([n.node_id for n in nodes])
        by_id = {n.node_id: n for n in nodes}
        start = clock.now_ms()
        jobs = [
            play(by_id[node_id], fault, clock, start)
            for fault in self.faults
            for node_id in fault.nodes
        ]
        await asyncio.gather(*jobs)


async def play(node: Node, fault: Fault, clock: Clock, start_ms: int) -> None:
    await clock.sleep_until(start_ms + int(fault.at * 1000))
    end = start_ms + int((fault.at + fault.duration) * 1000) if fault.duration else None
    log.warning("%s: fault %s begins", node.node_id, fault.kind)
    await FAULTS[fault.kind](node, fault, clock, end)
    log.warning("%s: fault %s ends", node.node_id, fault.kind)


async def _until(clock: Clock, end: int | None) -> None:
    if end is None:
        await asyncio.Event().wait()  # stays until the scenario is cancelled
    else:
        await clock.sleep_until(end)


async def _step(clock: Clock, seconds: float) -> None:
    await asyncio.gather(clock.sleep(int(seconds * 1000)), asyncio.sleep(MIN_STEP_REAL_S))


async def speaker(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    node.health.speaker_ok = False
    await _until(clock, end)
    node.health.speaker_ok = True


async def amplifier(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    node.health.amplifier_ok = False
    await _until(clock, end)
    node.health.amplifier_ok = True


async def mains_lost(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    h = node.health
    h.power, h.battery_pct, level = "battery", fault.battery_pct, float(fault.battery_pct)
    while end is None or clock.now_ms() < end:
        await _step(clock, 10)
        level = max(0.0, level - fault.drain_pct_per_min / 6)
        h.battery_pct = int(level)
    h.power, h.battery_pct = "mains", None


async def over_temperature(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    before, node.health.temperature_c = node.health.temperature_c, fault.temperature_c
    await _until(clock, end)
    node.health.temperature_c = before


async def storage_full(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    before, node.health.storage_free_mb = node.health.storage_free_mb, 12
    await _until(clock, end)
    node.health.storage_free_mb = before


async def offline(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    cut_link(node)
    await _until(clock, end)
    restore_link(node)


async def flap(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    while end is None or clock.now_ms() < end:
        cut_link(node)
        await _step(clock, fault.period / 2)
        restore_link(node)
        await _step(clock, fault.period / 2)


async def hang(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    node.health.hung = True
    await _until(clock, end)
    node.health.hung = False


async def media_corrupt(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    node.media.corrupt = True
    await _until(clock, end)
    node.media.corrupt = False


async def silent(node: Node, fault: Fault, clock: Clock, end: int | None) -> None:
    node.playback.stalled = True
    await _until(clock, end)
    node.playback.stalled = False


FAULTS: dict[str, Callable[[Node, Fault, Clock, int | None], Awaitable[None]]] = {
    "speaker": speaker,
    "amplifier": amplifier,
    "mains_lost": mains_lost,
    "over_temperature": over_temperature,
    "storage_full": storage_full,
    "offline": offline,
    "flap": flap,
    "hang": hang,
    "media_corrupt": media_corrupt,
    "silent": silent,
}
