"""Our nodes for the kit to grade, run in the test's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from firmware_sim import Node, NodeConfig
from firmware_sim.config import load_config
from protocol import SystemClock


class InProcessNode:
    """Our simulated node (or a broken variant built by `make`) run in the kit's event loop;
    a restart is a new `Node` over the same cache directory, as a process restart would be."""

    def __init__(self, make: Callable[[NodeConfig], Node] | None = None) -> None:
        self.make = make or (lambda config: Node(config, SystemClock()))
        self.node: Node | None = None
        self.task: asyncio.Task[None] | None = None
        self.starts = 0

    async def start(self, provision: Path, cache_dir: Path) -> None:
        config = load_config(provision).model_copy(update={"cache_dir": str(cache_dir)})
        self.node = self.make(NodeConfig.model_validate(config.model_dump()))
        self.task = asyncio.create_task(self.node.run())
        self.starts += 1

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
