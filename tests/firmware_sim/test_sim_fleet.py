"""A fleet: many nodes in one process on one clock of their own, sharing one HTTP client."""

from __future__ import annotations

import asyncio
import contextlib

from fwsim_support import Controller, MediaServer, broker_port, item, until

from firmware_sim import Fleet, NodeConfig
from protocol import SystemClock
from tests.clocks import SteppedClock

DATA = b"fleet" * 400


async def test_fleet_runs_nodes_and_summarises(
    prefix: str, controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = DATA
    configs = [
        NodeConfig(
            node_id=f"n{i}",
            mqtt_url=f"mqtt://127.0.0.1:{broker_port()}",
            topic_prefix=prefix,
            areas=["village-1"],
            client_id=f"{prefix}-n{i}",
            controller_keys=[controller.public_key],
        )
        for i in range(5)
    ]
    # Real speed, moved by hand: a scaled clock would shrink the nodes' late tolerance to a
    # fraction of a real second, which a busy machine overruns.
    clock = SteppedClock()
    fleet = Fleet(configs, clock=clock, stagger_s=0.01)
    task = asyncio.create_task(fleet.run(display=False))
    try:
        await until(lambda: fleet.summary().connected == 5, what="all nodes connected")
        start = clock.now_ms() + 60_000
        for i in range(5):
            await controller.push_timeline(
                f"n{i}", 1, [item("i1", start, media.url("a.mp3"), DATA, duration_ms=3_000)]
            )
        await until(
            lambda: all(controller.events(f"n{i}", "media_ready") for i in range(5)),
            10,
            "every node to hold the media",
        )
        assert fleet.summary().played == 0
        # A minute on, at once: a second before the item, which the nodes then wait for.
        clock.skip_to(start - 1_000)
        await until(lambda: fleet.summary().played == 5, timeout=10, what="all played")
        # Started at the planned time of the fleet clock (the system's is a minute behind).
        assert all(abs(n.played[0].start_ms - start) < 5_000 for n in fleet.nodes)
        summary = fleet.summary()
        assert summary.timeline_versions == {1: 5} and not summary.rejected
        assert "5/5 connected" in summary.line()
        assert SystemClock().now_ms() < start  # it really ran on the fleet's clock
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    await until(
        lambda: (
            sum(s.status == "offline" for n in range(5) for s in controller.states(f"n{n}")) == 5
        ),
        what="offline states",
    )
