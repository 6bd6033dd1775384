"""Relays on schedule: a playlist with a stream entry, scheduled daily, played by every node
from a real station on 127.0.0.1 — directly, or through the controller's one copy — and a
station that drops is replaced by the fallback recording, raising and clearing an alarm. A
station on 127.0.0.1 is allowed only because these tests list it (`stream_allowed_hosts`);
what is refused without: tests/controller/test_relay_hosts.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from controller.core.models import Alarm
from firmware_sim.stream_run import StreamRun
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import announce, deliveries, fleet_of, make_commune
from tests.stream_station import Station


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A dropped station is seen by its connection ending, not by a stall: the stall limit stays
    # at its default, so a machine busy with other work does not make nodes reconnect.
    monkeypatch.setattr(StreamRun, "bitrate_every_s", 1.0)
    monkeypatch.setattr(StreamRun, "backoff_min_s", 0.2)
    monkeypatch.setattr(StreamRun, "backoff_max_s", 0.5)
    yield


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    s = await Station("mp3", kbps=64).start()
    yield s
    await s.close()


async def relay_playlist(ctl: RunningController, entry: dict[str, Any]) -> dict[str, Any]:
    r = await ctl.api("POST", "/playlists", json={"title": "Tiếp sóng đài tỉnh", "items": [entry]})
    assert r.status_code == 201, r.text
    return dict(r.json())


def near_a_minute(lead_ms: int) -> SteppedClock:
    """A clock `lead_ms` before a whole minute: rules repeat on whole minutes (no seconds)."""
    real = int(time.time() * 1000)
    return SteppedClock((real // 60_000 + 1) * 60_000 - lead_ms - real)


async def daily_at_the_next_minute(
    ctl: RunningController, clock: SteppedClock, playlist_id: int, ready: Callable[[], bool]
) -> dict[str, Any]:
    """A daily relay from the next whole minute. The clock is held from before the schedule
    until `ready` (every node holds what it needs), then moved to that minute and run on: a
    busy machine cannot make the nodes late for it."""
    clock.pause()
    minute = (clock.now_ms() // 60_000 + 1) * 60_000
    sched = await daily(ctl, playlist_id, (minute - clock.now_ms()) / 1000)
    await wait_for(ready, 30, "every node to hold the relay")
    clock.skip_to(minute)
    clock.resume()
    return sched


async def daily(ctl: RunningController, playlist_id: int, in_s: float) -> dict[str, Any]:
    now = datetime.fromtimestamp(ctl.service.clock.now_ms() / 1000, UTC)
    starts = (now + timedelta(seconds=in_s)).replace(microsecond=0).isoformat()
    body = {
        "announcement_id": playlist_id,
        "starts_at": starts,
        "rrule": "FREQ=DAILY",
        "targets": {"areas": ["xa-a"]},
    }
    r = await ctl.api("POST", "/schedules", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def open_alarms(ctl: RunningController) -> set[str]:
    with ctl.service.db.session() as s:
        rows = s.exec(select(Alarm).where(Alarm.kind == "stream_dead")).all()
    return {a.node_id for a in rows if a.cleared_at is None}


@pytest.mark.slow
async def test_daily_relay_plays_everywhere_and_survives_a_dropped_station(
    make_settings, station: Station
):
    settings = make_settings(timeline_horizon_h=48, stream_allowed_hosts="127.0.0.1")
    clock = near_a_minute(lead_ms=9000)  # starting the controller and nodes takes a few s
    async with running_controller(settings, clock) as ctl:
        ctl.service.stream_alarms.interval_s = 0.3
        configs = await make_commune(ctl, 3)
        fallback = await announce(ctl, "Đài tỉnh tạm ngừng tiếp sóng, xin quý vị thông cảm.")
        p = await relay_playlist(
            ctl,
            {
                "kind": "stream",
                "url": station.url,
                "duration_ms": 10_000,
                "announcement_id": fallback["id"],
            },
        )
        assert p["items"][0]["format"] == "mp3" and p["items"][0]["url"] == station.url
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            # Every node holds today's relay and tomorrow's, the same station at the same hour,
            # and the fallback recording.
            sched = await daily_at_the_next_minute(
                ctl,
                clock,
                p["id"],
                lambda: all(
                    n.timeline.body
                    and len(n.timeline.body.items) == 2
                    and n.media.is_ready(fallback["media_sha256"])
                    for n in fleet.nodes
                ),
            )
            for node in fleet.nodes:
                today, tomorrow = node.timeline.body.items
                assert today.stream.url == tomorrow.stream.url == station.url
                assert tomorrow.start - today.start == 24 * 3600 * 1000
                assert today.stream.fallback and today.media.sha256 == fallback["media_sha256"]
            await wait_for(
                lambda: all(n.streams and n.streams[-1].frames > 40 for n in fleet.nodes),
                15,
                "every node to read the station",
            )
            assert station.connections == 3  # directly: one connection per node
            # Held still while the station drops and the nodes get back on it (the streams' own
            # timers run on): the relay's 10 s do not run out first, however slow the machine.
            clock.pause()
            await station.stop()
            await wait_for(
                lambda: all(n.streams[-1].fell_back for n in fleet.nodes), 10, "fallbacks"
            )
            await wait_for(lambda: open_alarms(ctl) == {"n0", "n1", "n2"}, 10, "alarms")
            await station.start()
            await wait_for(
                lambda: all(not n.streams[-1].failed for n in fleet.nodes), 10, "recovery"
            )
            assert not any(n.played for n in fleet.nodes)
            clock.resume()
            await wait_for(lambda: not open_alarms(ctl), 10, "the alarms to clear")

            async def finished() -> bool:
                return (await deliveries(ctl, sched["id"]))["counts"].get("finished") == 3

            await wait_for(finished, 15, "every node to finish the relay")
        for node in fleet.nodes:
            assert node.played[0].outcome == "finished"
            assert node.streams[-1].connects >= 2  # back on the station after it returned


@pytest.mark.slow
async def test_relay_through_the_controller_pulls_the_station_once(make_settings):
    station = await Station("aac", kbps=48).start()  # nodes get MP3 all the same
    clock = near_a_minute(lead_ms=9000)
    try:
        async with running_controller(
            make_settings(stream_allowed_hosts="127.0.0.1"), clock
        ) as ctl:
            configs = await make_commune(ctl, 3)
            p = await relay_playlist(
                ctl,
                {"kind": "stream", "url": station.url, "duration_ms": 6000, "via_controller": True},
            )
            entry_id = _entry_id(ctl, p["id"])
            async with fleet_of(configs, clock) as fleet:
                await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
                # A node may first hold the empty timeline it was given on connecting.
                sched = await daily_at_the_next_minute(
                    ctl,
                    clock,
                    p["id"],
                    lambda: all(
                        (b := n.timeline.body) is not None and b.items for n in fleet.nodes
                    ),
                )
                # Held as the relay starts, until every node has read a good part of it: the
                # relay's 6 s cannot run out first on a busy machine (the controller's pull and
                # encoding, and the nodes' reading, go by their own time meanwhile).
                clock.pause()
                item = fleet.nodes[0].timeline.body.items[0]
                assert item.stream.url.endswith(f"/media/relay/{entry_id}.mp3")
                assert item.stream.auth and item.stream.format == "mp3"
                await wait_for(
                    lambda: all(n.streams and n.streams[-1].frames > 80 for n in fleet.nodes),
                    30,
                    "every node to read the relay",
                )
                assert not any(n.played for n in fleet.nodes)
                clock.resume()

                async def finished() -> bool:
                    return (await deliveries(ctl, sched["id"]))["counts"].get("finished") == 3

                await wait_for(finished, 20, "every node to finish the relay")
                runs = [n.streams[-1] for n in fleet.nodes]
                # MP3 frames of the controller's encoding (1152 samples at 48 kHz, 24 ms).
                assert all(
                    r.frames > 80 and r.audio_ms == pytest.approx(r.frames * 24) for r in runs
                )
                assert station.connections == 1  # one pull, whatever the number of nodes
                # Every node's connection was served from that one copy (a node that fell
                # behind on a busy machine may have connected again).
                hub = ctl.service.relays.sources[entry_id].hub
                assert hub.listened == sum(r.connects for r in runs) >= 3
            # Without a node token nothing is served.
            r = await ctl.http.get(f"{ctl.base_url}/media/relay/{entry_id}.mp3")
            assert r.status_code == 401
    finally:
        await station.close()


def _entry_id(ctl: RunningController, playlist_id: int) -> int:
    from controller.core.models import PlaylistItem

    with ctl.service.db.session() as s:
        row = s.exec(select(PlaylistItem).where(PlaylistItem.playlist_id == playlist_id)).one()
    assert row.id is not None
    return row.id


async def test_stream_entries_are_checked(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        hls = await relay_playlist(
            ctl,
            {
                "kind": "stream",
                "url": "https://radio.example/vov1/index.m3u8",
                "duration_ms": 60_000,
            },
        )
        assert hls["items"][0]["format"] == "hls" and hls["duration_s"] == 60
        for entry, reason in (
            ({"kind": "stream", "duration_ms": 1000}, "give the url"),
            ({"kind": "stream", "url": "ftp://x/y", "duration_ms": 1000}, "not an http"),
            ({"kind": "stream", "url": "http://x/y.mp3"}, "duration_ms"),
            ({"kind": "stream", "url": "http://x/y.mp3", "duration_ms": 10}, "duration_ms"),
            (
                {
                    "kind": "stream",
                    "url": "http://x/y.mp3",
                    "duration_ms": 5000,
                    "announcement_id": 999,
                },
                "does not exist",
            ),
        ):
            r = await ctl.api("POST", "/playlists", json={"title": "x", "items": [entry]})
            assert r.status_code == 422 and reason in r.text, (entry, r.text)
        r = await ctl.api(
            "POST",
            "/playlists",
            json={
                "title": "x",
                "items": [
                    {"kind": "stream", "url": "http://x/y", "duration_ms": 5000, "format": "ogg"}
                ],
            },
        )
        assert r.status_code == 422
        auth = {"Authorization": f"Bearer {ctl.token}"}
        r = await ctl.http.get(f"{ctl.base_url}/media/relay/99999.mp3", headers=auth)
        assert r.status_code == 404 and "no relayed stream" in r.text


async def test_many_listeners_of_one_relay_each_get_audio(make_settings, station):
    """Each listener holds its request for as long as it listens: none may hold a database
    connection meanwhile (the pool has 15; the 16th listener would freeze every stream)."""
    async with running_controller(make_settings(stream_allowed_hosts="127.0.0.1")) as ctl:
        configs = await make_commune(ctl, 1)
        p = await relay_playlist(
            ctl, {"kind": "stream", "url": station.url, "duration_ms": 6000, "via_controller": True}
        )
        entry_id = _entry_id(ctl, p["id"])
        url = f"{ctl.base_url}/media/relay/{entry_id}.mp3"
        auth = {"Authorization": f"Bearer {configs[0].media_token}"}
        listeners = 24

        async def listen(client: Any) -> int:
            got = 0
            async with client.stream("GET", url, headers=auth) as r:
                assert r.status_code == 200, r.status_code
                async for chunk in r.aiter_bytes():
                    got += len(chunk)
                    if got >= 4000:  # half a second at 64 kb/s
                        break
            return got

        import httpx

        limits = httpx.Limits(max_connections=listeners + 1)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:
            got = await asyncio.wait_for(
                asyncio.gather(*(listen(client) for _ in range(listeners))), 40
            )
        assert all(g >= 4000 for g in got), got
        assert station.connections == 1
