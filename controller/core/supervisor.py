"""One owner for every long-lived task of the controller: a task that crashes (or is killed from
outside) is logged, counted, restarted with back-off and reported (`/api/v1/ready`, `/metrics`);
stopping the service cancels them all and waits for each to end."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protocol.aio import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class TaskHealth:
    """How one supervised task is doing."""

    restarts: int = 0
    running: bool = False
    last_error: str | None = None


class Supervisor:
    def __init__(self, backoff_min_s: float = 0.5, backoff_max_s: float = 30.0) -> None:
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.health: dict[str, TaskHealth] = {}
        self.current: dict[str, asyncio.Task[None]] = {}  # the running attempt of each task
        self._keepers: list[asyncio.Task[None]] = []

    def start(
        self, name: str, work: Callable[[], Awaitable[None]], *, restart: bool = True
    ) -> None:
        """Run `work()` until the service stops; again after a crash when `restart` (a one-off
        job that finishes is done; one that crashes is logged and, with `restart`, retried)."""
        if name in self.health:
            raise ValueError(f"a task named {name!r} is already supervised")
        self.health[name] = TaskHealth()
        self._keepers.append(asyncio.create_task(self._keep(name, work, restart), name=name))

    def failing(self) -> list[str]:
        """Tasks that crashed and wait for their restart."""
        return sorted(n for n, h in self.health.items() if not h.running and h.last_error)

    async def _keep(self, name: str, work: Callable[[], Awaitable[None]], restart: bool) -> None:
        health = self.health[name]
        failures = 0
        while True:
            attempt = asyncio.create_task(_call(work), name=f"{name}#{health.restarts}")
            self.current[name] = attempt
            health.running = True
            try:
                await attempt
                health.running = False
                if not restart:
                    return
                log.warning("background task %s returned; starting it again", name)
                failures = 0
                why = "returned"
            except asyncio.CancelledError:
                health.running = False
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    attempt.cancel()
                    raise  # the service is stopping
                why = "killed (cancelled from outside)"
            except Exception as exc:
                health.running = False
                why = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("background task %s crashed", name)
            if why != "returned":
                failures += 1
                health.restarts += 1
                health.last_error = why
                log.error("background task %s %s; restart %d", name, why, health.restarts)
                if not restart:
                    return
            delay = min(self.backoff_min_s * 2 ** max(failures - 1, 0), self.backoff_max_s)
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))

    async def stop(self) -> None:
        await cancel_and_wait(self._keepers)
        await cancel_and_wait(list(self.current.values()))
        self._keepers.clear()
        self.current.clear()


async def _call(work: Callable[[], Awaitable[None]]) -> None:
    await work()
