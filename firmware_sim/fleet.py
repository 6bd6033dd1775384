"""Many simulated nodes in one process, with a shared HTTP client and a progress display."""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from firmware_sim.config import NodeConfig, NodeConfigError, load_config
from firmware_sim.node import Node
from protocol import Clock, SystemClock
from protocol.aio import cancel_and_wait

log = logging.getLogger(__name__)

PLAIN_REPORT_S = 10.0


@dataclass
class FleetSummary:
    nodes: int = 0
    connected: int = 0
    timeline_versions: collections.Counter[int] = field(default_factory=collections.Counter)
    played: int = 0
    events_pending: int = 0
    events_made: int = 0  # events the nodes put in their outboxes since start
    events_dropped: int = 0  # of those, dropped from a full outbox (never sent)
    prefetching: int = 0  # nodes still fetching media in advance (alert templates)
    last_report_at: float = 0.0  # wall-clock time the latest event went out (0: none yet)
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)

    def line(self) -> str:
        versions = ", ".join(f"v{v}:{n}" for v, n in sorted(self.timeline_versions.items()))
        rejected = ", ".join(f"{r}:{n}" for r, n in self.rejected.most_common()) or "none"
        return (
            f"nodes {self.connected}/{self.nodes} connected; timelines [{versions or '-'}]; "
            f"played {self.played}; events pending {self.events_pending}; rejected {rejected}"
        )

    def table(self) -> Table:
        table = Table(title="firmware_sim fleet", show_header=False)
        table.add_row("connected", f"{self.connected} / {self.nodes}")
        table.add_row(
            "timeline versions",
            ", ".join(f"v{v}: {n}" for v, n in sorted(self.timeline_versions.items())) or "-",
        )
        table.add_row("items played", str(self.played))
        table.add_row("events pending", str(self.events_pending))
        table.add_row(
            "rejected", ", ".join(f"{r}: {n}" for r, n in self.rejected.most_common()) or "none"
        )
        return table


class Fleet:
    """Runs one Node per config. Connects are staggered so a thousand nodes do not hit the
    broker in the same millisecond; all share one pooled HTTP client for media."""

    def __init__(
        self,
        configs: list[NodeConfig],
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        stagger_s: float = 0.005,
        clock_for: Callable[[NodeConfig], Clock] | None = None,
    ) -> None:
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=30,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        shared = clock or SystemClock()
        self.nodes = [
            Node(c, clock_for(c) if clock_for else shared, http=self.http) for c in configs
        ]
        self.stagger_s = stagger_s

    def summary(self) -> FleetSummary:
        s = FleetSummary(nodes=len(self.nodes))
        for node in self.nodes:
            s.connected += node.connected.is_set()
            s.timeline_versions[node.timeline_version] += 1
            s.played += node.playback.played_total
            s.events_pending += node.outbox_size
            s.events_made += node.outbox.pushed
            s.events_dropped += node.outbox.dropped
            s.prefetching += node.media.prefetching > 0
            s.last_report_at = max(s.last_report_at, node.last_report_at)
            s.rejected.update(node.rejected)
        return s

    async def run(self, display: bool | None = None) -> None:
        """Run every node until cancelled. `display` defaults to a live table on a terminal."""
        live = sys.stdout.isatty() if display is None else display
        tasks = [
            asyncio.create_task(self._start(node, i * self.stagger_s), name=node.node_id)
            for i, node in enumerate(self.nodes)
        ]
        reporter = asyncio.create_task(self._live() if live else self._plain())
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait([*tasks, reporter])
            if self._own_http:
                await self.http.aclose()
            log.info("fleet stopped: %s", self.summary().line())

    async def _start(self, node: Node, delay: float) -> None:
        await asyncio.sleep(delay)
        await node.run()

    async def _plain(self) -> None:
        while True:
            await asyncio.sleep(PLAIN_REPORT_S)
            log.info("%s", self.summary().line())

    async def _live(self) -> None:
        with Live(self.summary().table(), console=Console(), refresh_per_second=2) as display:
            while True:
                await asyncio.sleep(1.0)
                display.update(self.summary().table())


def load_fleet(provision_dir: Path) -> list[NodeConfig]:
    """Every `*.json` provisioning file in a directory, sorted by name; duplicates refused."""
    provision_dir = Path(provision_dir)
    if not provision_dir.is_dir():
        raise NodeConfigError(f"{provision_dir}: not a directory")
    configs = [load_config(p) for p in sorted(provision_dir.glob("*.json"))]
    if not configs:
        raise NodeConfigError(f"{provision_dir}: no *.json provisioning files")
    seen: dict[str, int] = collections.Counter(c.node_id for c in configs)
    dupes = sorted(node_id for node_id, n in seen.items() if n > 1)
    if dupes:
        raise NodeConfigError(f"{provision_dir}: node ids provisioned twice: {', '.join(dupes)}")
    return configs
