"""Nodes cut off from the broker or the media server at the worst moments (timeline push, media
download, playback), and duplicate or out-of-order deliveries: nothing lost, nothing doubled.

Each node reaches the broker (and the media server) through its own `TcpProxy`, a real TCP
path that the test cuts and restores.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlparse

import aiomqtt
import pytest
from sqlmodel import select

from controller.core.models import Delivery, NodeEventRecord
from firmware_sim.config import NodeConfig
from tests.clocks import SteppedClock
from tests.conftest import RunningController, free_port, running_controller, wait_for
from tests.controller.test_broadcast_e2e import announce, deliveries, fleet_of, make_commune
from tests.faults.tcp_proxy import TcpProxy


@contextlib.asynccontextmanager
async def proxied(
    configs: list[NodeConfig],
) -> AsyncIterator[tuple[list[NodeConfig], list[TcpProxy]]]:
    """Each node's broker connection through its own proxy."""
    proxies, out = [], []
    for c in configs:
        u = urlparse(c.mqtt_url)
        p = await TcpProxy(u.port or 1883).start()
        proxies.append(p)
        out.append(c.model_copy(update={"mqtt_url": f"{u.scheme}://127.0.0.1:{p.port}"}))
    try:
        yield out, proxies
    finally:
        for p in proxies:
            await p.stop()


async def counts(ctl: RunningController, schedule_id: int) -> dict[str, int]:
    return dict((await deliveries(ctl, schedule_id))["counts"])


async def post_schedule(ctl: RunningController, ann_id: int, starts_ms: int) -> dict:
    starts = datetime.fromtimestamp(starts_ms / 1000, UTC).isoformat()
    r = await ctl.api(
        "POST",
        "/schedules",
        json={"announcement_id": ann_id, "starts_at": starts, "targets": {"areas": ["xa-a"]}},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def starts_ms(sched: dict) -> int:
    return int(datetime.fromisoformat(sched["starts_at"]).timestamp() * 1000)


@pytest.mark.slow
async def test_cut_during_timeline_push_and_during_playback(make_settings):
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 2)
        async with proxied(configs) as (configs, proxies), fleet_of(configs, clock) as fleet:
            for node in fleet.nodes:
                node.backoff_max_s = 1.0
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            ann = await announce(ctl)
            # Held still: air time comes when the test moves the clock, not when the load says.
            clock.pause()

            # Node 0 is cut while its new timeline is published; the retained copy waits.
            proxies[0].cut()
            await wait_for(lambda: not fleet.nodes[0].connected.is_set(), 10, "node 0 to drop")
            before = fleet.nodes[1].timeline_version
            sched = await post_schedule(ctl, ann["id"], clock.now_ms() + 5000)
            await wait_for(
                lambda: fleet.nodes[1].timeline_version > before, 30, "node 1 to take the timeline"
            )
            assert fleet.nodes[0].timeline_version < fleet.nodes[1].timeline_version
            proxies[0].restore()
            await wait_for(
                lambda: fleet.nodes[0].timeline_version == fleet.nodes[1].timeline_version,
                30,
                "node 0 to get the timeline published while it was cut off",
            )
            await wait_for(
                lambda: all(n.media.is_ready(ann["media_sha256"]) for n in fleet.nodes),
                30,
                "both nodes to hold the media",
            )

            # Both are cut while playing: playback goes on, reports wait in the outbox. The
            # clock stands at air time until the links are cut, so the cut falls mid-playback.
            clock.skip_to(starts_ms(sched))
            await wait_for(
                lambda: all(n.playback.now_playing is not None for n in fleet.nodes),
                30,
                "both nodes to start playing",
            )
            for p in proxies:
                p.cut()
            await wait_for(lambda: fleet.summary().connected == 0, 20, "both nodes to drop")
            clock.resume()
            await wait_for(
                lambda: all(n.played for n in fleet.nodes),
                ann["duration_s"] + 60,
                "both nodes to finish playing while cut off",
            )
            assert all(n.outbox_size > 0 for n in fleet.nodes)
            for p in proxies:
                p.restore()

            async def finished() -> bool:
                return (await counts(ctl, sched["id"])).get("finished", 0) == 2

            await wait_for(finished, 40, "the reports kept through the cut")
            assert [len(n.played) for n in fleet.nodes] == [1, 1]
            assert [p.outcome for n in fleet.nodes for p in n.played] == ["finished"] * 2


@pytest.mark.slow
async def test_cut_during_media_download(make_settings):
    # The media server is reached through a proxy that breaks the first download midway.
    api_port = free_port()
    proxy = await TcpProxy(api_port).start()
    settings = make_settings(http_port=api_port, public_url=f"http://127.0.0.1:{proxy.port}")
    clock = SteppedClock()
    try:
        async with running_controller(settings, clock) as ctl:
            configs = await make_commune(ctl, 1)
            async with fleet_of(configs, clock) as fleet:
                await wait_for(lambda: fleet.summary().connected == 1, 20, "node to connect")
                node = fleet.nodes[0]
                ann = await announce(ctl, "Thông báo dài. " * 20)
                proxy.limit_bytes = 4000  # far less than the MP3: every connection breaks
                # Held still: the retries cannot run into air time, however slow they are.
                clock.pause()
                sched = await post_schedule(ctl, ann["id"], clock.now_ms() + 3000)
                await wait_for(lambda: proxy.connections >= 2, 30, "a retried download")
                assert not node.media.is_ready(ann["media_sha256"])
                proxy.limit_bytes = None
                await wait_for(
                    lambda: node.media.is_ready(ann["media_sha256"]), 60, "the retried download"
                )
                clock.resume()

                async def finished() -> bool:
                    return (await counts(ctl, sched["id"])).get("finished", 0) == 1

                await wait_for(finished, 60, "the broadcast after the retried download")
                assert len(node.played) == 1
                assert node.media.is_ready(ann["media_sha256"])
    finally:
        await proxy.stop()


@pytest.mark.slow
async def test_duplicate_and_out_of_order_reports(make_settings):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 1)
        ann = await announce(ctl)
        sched = await post_schedule(ctl, ann["id"], ctl.service.clock.now_ms() + 3_600_000)
        with ctl.service.db.session() as s:
            d = s.exec(select(Delivery).where(Delivery.schedule_id == sched["id"])).one()
            item_id = d.item_id
        c = configs[0]
        u = urlparse(c.mqtt_url)
        topic = ctl.service.topics.events(c.node_id)
        planned = int(datetime.fromisoformat(sched["starts_at"]).timestamp() * 1000)

        def event(kind: str, at: int) -> str:
            return (
                f'{{"v":1,"id":"{uuid.uuid4()}","node_id":"{c.node_id}","ts":{at},'
                f'"type":"{kind}","item_id":"{item_id}"}}'
            )

        finished = event("playback_finished", planned + 4000)
        started = event("playback_started", planned)
        async with aiomqtt.Client(
            u.hostname or "127.0.0.1",
            u.port or 1883,
            username=c.username,
            password=c.password,
            identifier=f"{c.username}:replayer",  # a second connection with the node's login
        ) as client:
            # The end arrives first, then the start, then the end again (a redelivery).
            for payload in (finished, started, finished, started):
                await client.publish(topic, payload, qos=1)

        def recorded() -> int:
            with ctl.service.db.session() as s:
                return len(s.exec(select(NodeEventRecord)).all())

        # Each of the four copies is either recorded or counted as a duplicate: once they add
        # up to four, ingestion has dealt with every one.
        await wait_for(
            lambda: recorded() + ctl.service.ingest.stats["duplicate:event"] >= 4,
            30,
            "all four copies ingested",
        )
        assert ctl.service.ingest.stats["accepted:events"] == 4
        with ctl.service.db.session() as s:
            d = s.exec(select(Delivery).where(Delivery.schedule_id == sched["id"])).one()
            assert d.state == "finished" and d.started_at is not None and d.finished_at is not None
            assert d.started_at < d.finished_at
            assert len(s.exec(select(NodeEventRecord)).all()) == 2
        assert ctl.service.ingest.stats["duplicate:event"] == 2
