"""The first real broadcast: text → speech → timeline → every node → reports, on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import func, select

from controller.core.models import NodeEventRecord
from firmware_sim.config import NodeConfig
from firmware_sim.fleet import Fleet
from firmware_sim.node import Node
from protocol import SystemClock
from protocol.clock import Clock
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for

SHORT_TEXT = "UBND xã thông báo: 7h30 sáng mai họp dân tại nhà văn hóa."


async def make_commune(ctl: RunningController, nodes: int) -> list[NodeConfig]:
    for body in (
        {"id": "xa-a", "name": "Xã A", "kind": "commune"},
        {"id": "thon-1", "name": "Thôn 1", "kind": "village", "parent_id": "xa-a"},
        {"id": "thon-2", "name": "Thôn 2", "kind": "village", "parent_id": "xa-a"},
    ):
        r = await ctl.api("POST", "/areas", json=body)
        assert r.status_code == 201, r.text
    configs = []
    for i in range(nodes):
        village = "thon-1" if i % 2 == 0 else "thon-2"
        r = await ctl.api(
            "POST", "/nodes", json={"id": f"n{i}", "name": f"Loa {i}", "area_id": village}
        )
        assert r.status_code == 201, r.text
        configs.append(NodeConfig.model_validate(r.json()["provisioning"]))
    return configs


@contextlib.asynccontextmanager
async def fleet_of(configs: list[NodeConfig], clock: Clock | None = None) -> AsyncIterator[Fleet]:
    """The simulated nodes running (on `clock`, the system's by default) until the block ends."""
    fleet = Fleet(configs, clock or SystemClock())
    task = asyncio.create_task(fleet.run(display=False))
    try:
        yield fleet
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def announce(ctl: RunningController, text: str = SHORT_TEXT) -> dict[str, Any]:
    r = await ctl.api("POST", "/announcements", json={"title": "Họp dân", "text": text})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def schedule(
    ctl: RunningController, ann_id: int, in_s: float, **targets: list[str]
) -> dict[str, Any]:
    return await schedule_at(ctl, ann_id, datetime.now(UTC) + timedelta(seconds=in_s), **targets)


async def schedule_at(
    ctl: RunningController, ann_id: int, starts: datetime | int, **targets: list[str]
) -> dict[str, Any]:
    """Schedule at `starts` (a datetime, or epoch ms: e.g. `clock.now_ms() + 4000`)."""
    if isinstance(starts, int):
        starts = datetime.fromtimestamp(starts / 1000, UTC)
    r = await ctl.api(
        "POST",
        "/schedules",
        json={"announcement_id": ann_id, "starts_at": starts.isoformat(), "targets": targets},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliveries(ctl: RunningController, schedule_id: int) -> dict[str, Any]:
    r = await ctl.api("GET", f"/schedules/{schedule_id}/deliveries")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def all_finished(ctl: RunningController, schedule_id: int, n: int) -> bool:
    d = await deliveries(ctl, schedule_id)
    return d["counts"].get("finished", 0) == n


async def hold_media(nodes: list[Node], sha256: str, timeout: float = 60) -> None:
    """Wait until every one of `nodes` holds the media, verified."""
    await wait_for(
        lambda: all(n.media.is_ready(sha256) for n in nodes), timeout, "the nodes to hold the media"
    )


def started_events(ctl: RunningController) -> int:
    with ctl.service.db.session() as s:
        return int(
            s.exec(
                select(func.count())
                .select_from(NodeEventRecord)
                .where(NodeEventRecord.type == "playback_started")
            ).one()
        )


@pytest.mark.slow
async def test_announcement_plays_on_every_node_and_reports_back(make_settings, database_url):
    settings = make_settings(database_url=database_url)
    clock = SteppedClock()
    async with running_controller(settings, clock) as ctl:
        configs = await make_commune(ctl, 6)
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 6, 20, "nodes to connect")
            ann = await announce(ctl)
            assert ann["duration_s"] > 1
            assert "ủy ban nhân dân" in ann["normalized_text"].lower()
            # Held still until every node holds the media: a loaded machine cannot make one late.
            clock.pause()
            sched = await schedule_at(ctl, ann["id"], clock.now_ms() + 4000, areas=["xa-a"])
            await hold_media(fleet.nodes, ann["media_sha256"])
            clock.resume()
            await wait_for(lambda: all_finished(ctl, sched["id"], 6), 60, "all 6 nodes to play")

            d = await deliveries(ctl, sched["id"])
            assert d["nodes"] == 6
            planned = datetime.fromisoformat(sched["starts_at"])
            for row in d["deliveries"]:
                assert row["delivered_at"] and row["downloaded_at"]
                assert row["node_name"] == f"Loa {row['node_id'][1:]}"  # as registered
                started = datetime.fromisoformat(row["started_at"])
                # Nodes start on their own clock at the planned time, not when told.
                assert abs((started - planned).total_seconds()) < 1.5, row
            assert all(len(n.played) == 1 for n in fleet.nodes)
            assert started_events(ctl) == 6

            nodes = (await ctl.api("GET", "/nodes")).json()["items"]
            assert {n["status"] for n in nodes} == {"online"}
            assert all(n["last_seen"] for n in nodes)


@pytest.mark.slow
async def test_village_target_reaches_only_that_village(make_settings):
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 4)
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            ann = await announce(ctl)
            clock.pause()
            sched = await schedule_at(
                ctl, ann["id"], clock.now_ms() + 3000, areas=["thon-2"], nodes=["n0"]
            )
            targeted = [n for n in fleet.nodes if n.node_id in {"n0", "n1", "n3"}]
            await hold_media(targeted, ann["media_sha256"])
            clock.resume()
            await wait_for(lambda: all_finished(ctl, sched["id"], 3), 60, "3 nodes to play")
            played = {n.node_id for n in fleet.nodes if n.played}
            assert played == {"n0", "n1", "n3"}


@pytest.mark.slow
async def test_node_offline_at_scheduling_plays_when_back_before_air_time(make_settings):
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 3)
        async with fleet_of(configs[:2], clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            ann = await announce(ctl)
            # Held still: air time cannot come before the late node is back, however slow.
            clock.pause()
            sched = await schedule_at(ctl, ann["id"], clock.now_ms() + 3000, areas=["xa-a"])
            await wait_for(
                lambda: all(n.timeline.body and n.timeline.body.items for n in fleet.nodes),
                30,
                "the online nodes to take the new timeline",
            )
            async with fleet_of(configs[2:], clock) as late:
                node = late.nodes[0]
                await wait_for(
                    lambda: node.media.is_ready(ann["media_sha256"]),
                    30,
                    "the late node to take the timeline and hold the media",
                )
                assert not node.played
                clock.resume()
                await wait_for(lambda: all_finished(ctl, sched["id"], 3), 60, "3 nodes to play")
                assert len(node.played) == 1


@pytest.mark.slow
async def test_controller_restart_between_scheduling_and_air_time_loses_nothing(make_settings):
    settings = make_settings()
    clock = SteppedClock()
    async with running_controller(settings, clock) as ctl:
        configs = await make_commune(ctl, 4)
        ann = await announce(ctl)
    async with fleet_of(configs, clock) as fleet:
        async with running_controller(settings, clock) as ctl:
            await wait_for(lambda: fleet.summary().connected == 4, 30, "nodes to connect")
            # Held still until the controller is gone: air time cannot come first.
            clock.pause()
            sched = await schedule_at(ctl, ann["id"], clock.now_ms() + 4000, areas=["xa-a"])

            async def all_delivered() -> bool:
                d = await deliveries(ctl, sched["id"])
                return d["counts"].get("delivered", 0) + d["counts"].get("downloaded", 0) == 4

            await wait_for(all_delivered, 30, "timelines to reach the nodes")
            # The media comes from the controller: the nodes must hold it before it goes.
            await hold_media(fleet.nodes, ann["media_sha256"])
        # The controller (and its embedded broker) is down now; nodes play on their own.
        assert not any(n.played for n in fleet.nodes)
        clock.resume()
        await wait_for(lambda: all(n.played for n in fleet.nodes), 60, "nodes to play alone")
        async with running_controller(settings, clock) as ctl:
            await wait_for(lambda: all_finished(ctl, sched["id"], 4), 60, "reports after restart")
            assert started_events(ctl) == 4
            assert all(len(n.played) == 1 for n in fleet.nodes)


@pytest.mark.slow
async def test_corrupt_media_is_retried_and_reported_never_played(make_settings):
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 2)
        ann = await announce(ctl)
        path = ctl.service.store.path_for(ann["media_sha256"])
        good = path.read_bytes()
        path.write_bytes(good[: len(good) // 2] + b"\0" * (len(good) - len(good) // 2))
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            # Held still: the retries cannot run into air time, however slow they are.
            clock.pause()
            sched = await schedule_at(ctl, ann["id"], clock.now_ms() + 4000, areas=["xa-a"])

            def failures() -> int:
                with ctl.service.db.session() as s:
                    return len(
                        s.exec(
                            select(NodeEventRecord).where(NodeEventRecord.type == "media_failed")
                        ).all()
                    )

            await wait_for(lambda: failures() >= 2, 20, "media_failed reports")
            assert not any(n.played for n in fleet.nodes)
            path.write_bytes(good)
            await hold_media(fleet.nodes, ann["media_sha256"], 90)
            clock.resume()
            await wait_for(lambda: all_finished(ctl, sched["id"], 2), 60, "play after repair")
