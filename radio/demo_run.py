"""`radio demo`: controller, embedded broker, web server and 20 simulated nodes in one process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from sqlmodel import select

from controller.core.config import Settings
from controller.core.models import Delivery, Node, utcnow
from controller.programme.broadcasts import Targets
from protocol import Priority, SystemClock
from protocol.aio import quiet_closed_socket_races
from radio.demo import COMMUNE, DEMO_TEXT, DEMO_USERS, seed_demo, seed_demo_users
from radio.tools import open_registry

if TYPE_CHECKING:
    from controller.service import RadioService
    from firmware_sim.scenario import Scenario

log = logging.getLogger(__name__)

STOP_S = 15.0  # what the nodes and the server each have to stop, once told


async def run_demo(
    settings: Settings,
    lead_s: float,
    exit_when_done: bool,
    timeout_s: float,
    scenario: Scenario | None = None,
) -> int:
    import uvicorn

    from api.main import create_app, server_config
    from controller.service import RadioService
    from firmware_sim.config import NodeConfig
    from firmware_sim.fleet import Fleet

    t0 = time.perf_counter()
    quiet_closed_socket_races()  # nodes and controller share this loop and stop together
    registry = open_registry(settings)
    provs = await asyncio.to_thread(seed_demo, registry)
    password = await asyncio.to_thread(seed_demo_users, registry)
    registry.db.dispose()
    application = create_app(RadioService(settings))
    service = application.state.service
    server = uvicorn.Server(server_config(application, settings))
    server_task = asyncio.create_task(server.serve())
    fleet_task: asyncio.Task[None] | None = None
    try:
        await _wait(lambda: server.started and service.gateway.connected.is_set(), 30, server_task)
        fleet = Fleet([NodeConfig.model_validate(p) for p in provs], SystemClock())
        if scenario is not None:
            scenario.check([n.node_id for n in fleet.nodes])
        fleet_task = asyncio.create_task(fleet.run(display=False))
        await _wait(lambda: fleet.summary().connected == len(provs), 30, server_task)
        typer.echo(
            f"✔ broker, controller and {len(provs)} nodes up in {time.perf_counter() - t0:.1f} s"
        )
        if scenario is not None:
            faults = asyncio.create_task(scenario.run(fleet.nodes, SystemClock()))
            fleet_task.add_done_callback(lambda _t: faults.cancel())
            typer.echo(
                f"✔ fault scenario {scenario.source}: {len(scenario.faults)} fault(s); "
                f"alarms: {settings.base_url}/api/v1/alarms"
            )

        ann = await service.broadcasts.create_announcement("Thông báo tiêm chủng", DEMO_TEXT)
        starts = utcnow() + timedelta(seconds=lead_s)
        schedule = await service.broadcasts.create_schedule(
            ann.id, starts, Targets(areas=[COMMUNE[0]]), Priority.normal
        )
        scheduled_at = time.perf_counter()
        base = settings.base_url
        typer.echo(
            f"✔ announcement {ann.id} rendered ({ann.engine}, {ann.duration_ms / 1000:.1f} s), "
            f"scheduled to air in {lead_s:.0f} s on {COMMUNE[1]} (20 nodes, 3 villages)\n"
            f"  API and its documentation:  {base}/docs\n"
            f"  nodes:                      {base}/api/v1/nodes\n"
            f"  delivery state per node:    {base}/api/v1/schedules/{schedule.id}/deliveries\n"
            f"  log in as {', '.join(u[0] for u in DEMO_USERS)} with the password {password}\n"
            "  Press Ctrl-C to stop."
        )
        done_at = None
        last = ""
        deadline = time.perf_counter() + timeout_s
        while True:
            counts = await asyncio.to_thread(_counts, service, schedule.id)
            line = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            if line != last:
                typer.echo(f"  [{time.perf_counter() - scheduled_at:5.1f} s] {line}")
                last = line
            if done_at is None and counts.get("finished", 0) == len(provs):
                done_at = time.perf_counter()
                typer.echo(
                    f"✔ all {len(provs)} nodes played the announcement; "
                    f"{done_at - scheduled_at:.1f} s after scheduling "
                    f"(air time +{lead_s:.0f} s, duration {ann.duration_ms / 1000:.1f} s)"
                )
                if exit_when_done:
                    return 0
            if done_at is None and time.perf_counter() > deadline:
                typer.secho(f"✘ not every node played within {timeout_s:.0f} s: {line}", fg="red")
                if exit_when_done:
                    return 1
                deadline = float("inf")
            if server_task.done():
                # Stopped by Ctrl-C or SIGTERM (uvicorn sets should_exit): a clean end, not a
                # failure; otherwise the server died under the demo.
                return 0 if server.should_exit else 1
            await asyncio.sleep(1)
    finally:
        if fleet_task is not None:
            fleet_task.cancel()
            await _stopped(fleet_task, "the nodes")
        server.should_exit = True
        await _stopped(server_task, "the server")


async def _stopped(task: asyncio.Task[None], what: str) -> None:
    """Wait a bounded time for a task told to stop; say so if it has not (the process ends
    all the same)."""
    await asyncio.wait({task}, timeout=STOP_S)
    if not task.done():
        log.warning("%s did not stop within %.0f s", what, STOP_S)
    elif not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("%s stopped with an error: %r", what, exc)


def _counts(service: RadioService, schedule_id: int | None) -> Counter[str]:
    with service.db.session() as session:
        rows = session.exec(select(Delivery.state).where(Delivery.schedule_id == schedule_id)).all()
        online = session.exec(select(Node.id).where(Node.status == "online")).all()
    c = Counter(rows)
    c["nodes online"] = len(online)
    return c


async def _wait(cond: Callable[[], bool], timeout: float, guard: asyncio.Task[None]) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if guard.done():
            exc = guard.exception()
            raise RuntimeError(f"the server stopped: {exc}")
        if time.perf_counter() > deadline:
            raise TimeoutError("the system did not come up in time")
        await asyncio.sleep(0.1)
