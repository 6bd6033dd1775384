"""Live broadcasts from a test client: the WebSocket's audio is encoded once, streamed to every
targeted node, pre-empts a normal programme at priority, is cut by an emergency alert, stops
everywhere, and is recorded (audit, deliveries, playback log) like any broadcast."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select
from websockets.asyncio.client import ClientConnection, connect

from controller.core.models import AuditEntry, LiveBroadcast
from firmware_sim.stream_run import StreamRun
from schedules.localtime import LOCAL_TZ as LOCAL
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import deliveries, fleet_of, make_commune

LONG_TEXT = (
    "UBND xã thông báo lịch tiêm chủng mở rộng cho trẻ em dưới 5 tuổi tại trạm y tế xã từ 7h30 "
    "đến 11h00 các ngày thứ ba và thứ năm trong tuần. Đề nghị các gia đình đưa trẻ đến đúng giờ "
    "và mang theo sổ tiêm chủng. Mọi thắc mắc xin liên hệ trạm y tế xã để được hướng dẫn."
)


def tone(seconds: float, rate: int = 48000) -> bytes:
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n))
    )


@contextlib.asynccontextmanager
async def source(
    ctl: RunningController, live_id: str, fmt: str = "pcm", token: str | None = None
) -> AsyncIterator[ClientConnection]:
    ws_url = ctl.base_url.replace("http", "ws", 1) + f"/api/v1/live/{live_id}/audio?format={fmt}"
    headers = {"Authorization": f"Bearer {token or ctl.token}"}
    async with connect(ws_url, additional_headers=headers) as ws:
        yield ws


async def speak(ws: ClientConnection, seconds: float) -> None:
    """PCM in 20 ms messages, at the pace of speech."""
    pcm = tone(seconds)
    for i in range(0, len(pcm), 1920):
        await ws.send(pcm[i : i + 1920])
        await asyncio.sleep(0.02)


async def start_live(ctl: RunningController, **body: Any) -> dict[str, Any]:
    body = {"title": "Chủ tịch xã phát biểu", "targets": {"areas": ["xa-a"]}, **body}
    r = await ctl.api("POST", "/live", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def live_run(node: Any, live_id: str) -> StreamRun | None:
    runs = [r for r in node.streams if r.ref.url.endswith(f"/media/live/{live_id}.mp3")]
    return runs[-1] if runs else None


@pytest.mark.slow
async def test_live_voice_reaches_nodes_preempts_and_is_cut_by_an_alert(make_settings):
    clock = SteppedClock()  # held still while the nodes fetch the programme (it was 2 s ahead)
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 4)  # n0, n2 in thon-1; n1, n3 in thon-2
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            ann = (
                await ctl.api("POST", "/announcements", json={"title": "Tiêm", "text": LONG_TEXT})
            ).json()
            clock.pause()
            starts = datetime.fromtimestamp((clock.now_ms() + 2000) / 1000, UTC).isoformat()
            body = {
                "announcement_id": ann["id"],
                "starts_at": starts,
                "targets": {"areas": ["xa-a"]},
            }
            programme = (await ctl.api("POST", "/schedules", json=body)).json()
            await wait_for(
                lambda: all(n.media.is_ready(ann["media_sha256"]) for n in fleet.nodes),
                60,
                "every node to hold the programme",
            )
            clock.resume()
            await wait_for(
                lambda: all(n.playback.now_playing for n in fleet.nodes), 15, "programme"
            )
            clock.skip_to(int(datetime.now(UTC).timestamp() * 1000))  # back on real time

            live = await start_live(ctl, priority="priority")
            assert (
                live["status"] == "on_air"
                and live["audio_url"] == f"/api/v1/live/{live['id']}/audio"
            )
            async with source(ctl, live["id"]) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                await wait_for(
                    lambda: all(live_run(n, live["id"]) for n in fleet.nodes),
                    10,
                    "nodes to tune in",
                )
                # The priority live cut the normal programme on every node.
                for node in fleet.nodes:
                    assert node.playback.now_playing.stream is not None
                await speak(ws, 3.0)
                await wait_for(
                    lambda: all(live_run(n, live["id"]).audio_ms > 3000 for n in fleet.nodes),
                    10,
                    "the voice to reach every node",
                )
                hub = ctl.service.live.feeds[live["id"]].hub
                assert hub.listeners == 4 and hub.listened == 4  # one encoder, four listeners

                r = await ctl.api(
                    "POST", "/alerts", json={"areas": ["thon-1"], "template": "flood"}
                )
                assert r.status_code == 201, r.text
                thon1 = [n for n in fleet.nodes if n.node_id in ("n0", "n2")]
                thon2 = [n for n in fleet.nodes if n.node_id in ("n1", "n3")]
                await wait_for(
                    lambda: all(n.playback.held_by for n in thon1), 10, "the alert to cut the live"
                )
                await speak(ws, 1.0)
                assert all(n.playback.now_playing.stream.live for n in thon2)
                await ws.send(json.dumps({"type": "stop"}))
                ended = [json.loads(m) async for m in ws]
                assert ended[-1]["type"] == "ended"
            await wait_for(lambda: all(not n.playback.now_playing for n in thon2), 10, "the end")

            async def settled() -> bool:
                counts = (await deliveries(ctl, live["schedule_id"]))["counts"]
                return counts == {"finished": 2, "preempted": 2}

            await wait_for(settled, 15, "every node to report the live broadcast")
        rows = (await deliveries(ctl, live["schedule_id"]))["deliveries"]
        for row in rows:
            assert row["item_id"].startswith(f"s{live['schedule_id']}@") and row["started_at"]
        got = (await ctl.api("GET", f"/live/{live['id']}")).json()
        assert got["status"] == "ended" and got["ended_by"] == "root"
        assert (await deliveries(ctl, programme["id"]))["counts"] == {"preempted": 4}
        # The log is by local day (Asia/Ho_Chi_Minh); the test may cross its midnight.
        days = {datetime.fromisoformat(starts).astimezone(LOCAL).date(), datetime.now(LOCAL).date()}
        logged = set()
        for day in days:
            log = await ctl.api("GET", f"/playback-log?area_id=xa-a&date={day.isoformat()}")
            logged |= {r["schedule_id"] for r in log.json()}
        assert logged >= {live["schedule_id"], programme["id"]}
        with ctl.service.db.session() as s:
            actions = [
                e.action for e in s.exec(select(AuditEntry).where(AuditEntry.target == live["id"]))
            ]
        assert actions == ["live.start", "live.source", "live.stop"]


async def test_live_rules_and_refusals(make_settings):
    # A grace no run of the refusals below can outlast, however busy the machine; the source's
    # absence is then made that long by hand, for the controller to end the broadcast.
    settings = make_settings(live_source_grace_s=3600)
    async with running_controller(settings) as ctl:
        await make_commune(ctl, 2)
        for body, status, reason in (
            ({"priority": "emergency"}, 422, "issue an alert"),
            ({"targets": {}}, 422, "no targets"),
            ({"targets": {"areas": ["nowhere"]}}, 422, "does not exist"),
        ):
            r = await ctl.api(
                "POST", "/live", json={"title": "x", "targets": {"areas": ["xa-a"]}, **body}
            )
            assert r.status_code == status and reason in r.text, r.text
        r = await ctl.api("PUT", "/areas/xa-a/quiet-hours", json={"start": "00:00", "end": "23:59"})
        assert r.status_code == 200, r.text
        r = await ctl.api("POST", "/live", json={"title": "x", "targets": {"areas": ["xa-a"]}})
        assert r.status_code == 422 and "quiet hours" in r.text
        live = await start_live(ctl, priority="priority")  # priority goes on air in quiet hours
        r = await ctl.api(
            "POST",
            "/live",
            json={"title": "y", "targets": {"nodes": ["n1"]}, "priority": "priority"},
        )
        assert r.status_code == 409 and "stop that broadcast first" in r.text

        staff = await ctl.login_as_new("tech", "technician", "xa-a")
        async with source(ctl, live["id"], token=staff) as ws:
            refusal = json.loads(await ws.recv())
            assert refusal["code"] == 4403 and "may not alert" in refusal["detail"]
        async with source(ctl, live["id"], fmt="flac") as ws:
            assert json.loads(await ws.recv())["code"] == 4422
        async with source(ctl, live["id"]) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            async with source(ctl, live["id"]) as second:
                assert json.loads(await second.recv())["code"] == 4409
        # No source for longer than the grace: the controller ends it, and says so.
        feed = ctl.service.live.feeds[live["id"]]
        await wait_for(lambda: feed.absent_since is not None, 10, "the source to be gone")
        feed.absent_since -= 3601
        await wait_for(
            lambda: ctl.service.live.feeds.get(live["id"]) is None, 10, "the live to end by itself"
        )
        with ctl.service.db.session() as s:
            row = s.get(LiveBroadcast, live["id"])
            assert row.status == "ended" and row.ended_by == "controller"
            assert "no audio source" in row.end_reason
        r = await ctl.api("POST", f"/live/{live['id']}/stop")
        assert r.status_code == 409 and "already ended" in r.text
        auth = {"Authorization": f"Bearer {ctl.token}"}
        r = await ctl.http.get(f"{ctl.base_url}/media/live/{live['id']}.mp3", headers=auth)
        assert r.status_code == 410
        async with source(ctl, live["id"]) as ws:
            assert json.loads(await ws.recv())["code"] == 4409
        async with source(ctl, live["id"], token="not-a-token") as ws:
            assert json.loads(await ws.recv())["code"] == 4401
        listed = (await ctl.api("GET", "/live")).json()
        assert [x["id"] for x in listed] == [live["id"]]


async def test_watch_never_ends_a_broadcast_that_is_still_starting(make_settings):
    """The watch reads what is on air while start() has committed its row but not yet put its
    feed in place: it must not take that broadcast for one from before a restart."""
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        service = ctl.service.live
        loop = asyncio.get_running_loop()
        watched: list[Any] = []
        create = service._create

        def create_then_watch(*args: Any) -> Any:
            # In start()'s worker thread: the row is committed, the feed not yet in place.
            live = create(*args)
            # The watch begins now, on the event loop. Its first step takes the lock that
            # start() holds until the feed is in place; `begun` is set just before that step,
            # with no await in between, so start() (resumed on the same loop) cannot go on
            # before the watch waits on that lock. No timing: the order is forced.
            begun = threading.Event()

            async def watch() -> None:
                begun.set()
                await service._watch_once()

            watched.append(asyncio.run_coroutine_threadsafe(watch(), loop))
            assert begun.wait(timeout=30), "the watch did not begin"
            assert not watched[0].done()  # it waits for start() to put its feed in place
            return live

        service._create = create_then_watch
        live = await start_live(ctl)
        await asyncio.wrap_future(watched[0])
        with ctl.service.db.session() as s:
            row = s.get(LiveBroadcast, live["id"])
            assert row.status == "on_air", (row.status, row.end_reason)
        assert live["id"] in service.feeds
        r = await ctl.api("POST", f"/live/{live['id']}/stop")
        assert r.status_code == 200, r.text
