"""Nodes cut off from the broker or the media server at the worst moments (timeline push, media
download, playback), and duplicate or out-of-order deliveries: nothing lost, nothing doubled.

Each node reaches the broker (and the media server) through its own `TcpProxy`, a real TCP
path that the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import aiomqtt
import pytest
from sqlmodel import select

from controller.models import Delivery, NodeEventRecord
from firmware_sim.config import NodeConfig
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import announce, deliveries, fleet_of, make_commune
from tests.faults.tcp_proxy import TcpProxy, free_port


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


async def post_schedule(ctl: RunningController, ann_id: int, in_s: float) -> dict:
    starts = (datetime.now(UTC) + timedelta(seconds=in_s)).isoformat()
    r = await ctl.api(
        "POST",
        "/schedules",
        json={"announcement_id": ann_id, "starts_at": starts, "targets": {"areas": ["xa-a"]}},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.slow
async def test_cut_during_timeline_push_and_during_playback(make_settings):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 2)
        async with proxied(configs) as (configs, proxies), fleet_of(configs) as fleet:
            for node in fleet.nodes:
                node.backoff_max_s = 1.0
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            ann = await announce(ctl)

            # Node 0 is cut while its new timeline is published; the retained copy waits.
            proxies[0].cut()
            await wait_for(lambda: not fleet.nodes[0].connected.is_set(), 10, "node 0 to drop")
            sched = await post_schedule(ctl, ann["id"], 20)
            await asyncio.sleep(1.5)
            assert fleet.nodes[0].timeline_version < fleet.nodes[1].timeline_version
            proxies[0].restore()
            await wait_for(
                lambda: fleet.nodes[0].timeline_version == fleet.nodes[1].timeline_version,
                15,
                "node 0 to get the timeline published while it was cut off",
            )

            # Both are cut while playing: playback goes on, reports wait in the outbox.
            starts = datetime.fromisoformat(sched["starts_at"])
            await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.5)
            assert all(n.playback.now_playing is not None for n in fleet.nodes)
            for p in proxies:
                p.cut()
            await asyncio.sleep(ann["duration_s"] + 0.5)
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
    try:
        async with running_controller(settings) as ctl:
            configs = await make_commune(ctl, 1)
            async with fleet_of(configs) as fleet:
                await wait_for(lambda: fleet.summary().connected == 1, 20, "node to connect")
                ann = await announce(ctl, "Thông báo dài. " * 20)
                proxy.limit_bytes = 4000  # far less than the MP3: every connection breaks
                sched = await post_schedule(ctl, ann["id"], 14)
                await wait_for(lambda: proxy.connections >= 2, 15, "a retried download")
                proxy.limit_bytes = None

                async def finished() -> bool:
                    return (await counts(ctl, sched["id"])).get("finished", 0) == 1

                await wait_for(finished, 60, "the broadcast after the retried download")
                node = fleet.nodes[0]
                assert len(node.played) == 1
                assert node.media.is_ready(ann["media_sha256"])
    finally:
        await proxy.stop()


@pytest.mark.slow
async def test_duplicate_and_out_of_order_reports(make_settings):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 1)
        ann = await announce(ctl)
        sched = await post_schedule(ctl, ann["id"], 3600)
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
            u.hostname or "127.0.0.1", u.port or 1883, username=c.username, password=c.password
        ) as client:
            # The end arrives first, then the start, then the end again (a redelivery).
            for payload in (finished, started, finished, started):
                await client.publish(topic, payload, qos=1)

        async def settled() -> bool:
            with ctl.service.db.session() as s:
                return len(s.exec(select(NodeEventRecord)).all()) == 2

        await wait_for(settled, 10, "both events recorded")
        await asyncio.sleep(0.5)
        with ctl.service.db.session() as s:
            d = s.exec(select(Delivery).where(Delivery.schedule_id == sched["id"])).one()
            assert d.state == "finished" and d.started_at is not None and d.finished_at is not None
            assert d.started_at < d.finished_at
            assert len(s.exec(select(NodeEventRecord)).all()) == 2
        assert ctl.service.ingest.stats["duplicate:event"] == 2
