"""Stream items on simulated nodes: a real station on 127.0.0.1 is read, framed and measured;
a dropped source is reconnected to, declared dead, replaced by the fallback, and recovered."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fwsim_support import Controller, MediaServer, until

from firmware_sim import Node
from firmware_sim.stream_run import StreamRun
from protocol import SystemClock
from tests.clocks import SteppedClock
from tests.stream_station import Station

FALLBACK = b"\x00\x02" * 3000


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    s = await Station("mp3", kbps=64).start()
    yield s
    await s.close()


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Report bitrate every second and give up on a source within about a second."""
    monkeypatch.setattr(StreamRun, "bitrate_every_s", 1.0)
    monkeypatch.setattr(StreamRun, "backoff_min_s", 0.2)
    monkeypatch.setattr(StreamRun, "backoff_max_s", 0.4)
    monkeypatch.setattr(StreamRun, "stall_s", 1.5)


def stream_item(
    item_id: str, start: int, url: str, media: MediaServer, duration_ms: int, **stream: Any
) -> dict[str, Any]:
    media.files["fallback.mp3"] = FALLBACK
    return {
        "item_id": item_id,
        "broadcast_id": f"b-{item_id}",
        "start": start,
        "duration_ms": duration_ms,
        "media": {
            "url": media.url("fallback.mp3"),
            "sha256": hashlib.sha256(FALLBACK).hexdigest(),
            "size": len(FALLBACK),
        },
        "stream": {"url": url, **stream},
    }


def connected_details(controller: Controller, node_id: str = "n1") -> str:
    return " ".join(e.detail for e in controller.events(node_id, "stream_connected"))


def kinds(controller: Controller, node_id: str = "n1") -> list[str]:
    return [e.type.value for e in controller.events(node_id) if e.type.value.startswith("stream")]


async def test_stream_item_is_read_framed_and_measured(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer, station: Station
) -> None:
    node = start_node(media_token="node-secret", media_token_url=media.url("media/token"))
    await asyncio.wait_for(node.connected.wait(), 60)
    start = SystemClock().now_ms() + 500
    item = stream_item("r1", start, station.url, media, 4000, fallback=True)
    await controller.push_timeline("n1", 1, [item])
    await until(lambda: controller.events("n1", "playback_finished"), 10, "the relay to end")

    run = node.streams[0]
    # Read from the live edge for (at most) the item's 4 s: 64 kb/s is 8 bytes a ms, and a
    # frame of 24 ms. (A loaded machine may join the station late: no lower bound on time.)
    assert 0 < run.audio_ms < 5000, run.audio_ms
    assert run.bytes == pytest.approx(run.audio_ms * 8, rel=0.15)
    assert run.frames == pytest.approx(run.audio_ms / 24, rel=0.1)
    assert run.connects == 1 and run.fell_back == 0
    # Each report measures a second of arrivals, which a busy loop may bunch: the middle one
    # is the station's rate.
    rates = [e.detail for e in controller.events("n1", "stream_bitrate")]
    assert rates and 50 < statistics.median(float(d.split(" ")[0]) for d in rates) < 80, rates
    assert "nominal 64 kb/s" in rates[-1]
    assert kinds(controller)[0] == "stream_connected"
    assert "stream_failed" not in kinds(controller)
    # A station's server never sees the node's token (only the controller's own streams do).
    assert b"authorization" not in station.requests[0].lower()
    assert node.played[0].outcome == "finished"


async def test_dropped_source_reconnects_falls_back_and_recovers(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer, station: Station
) -> None:
    clock = SteppedClock()
    node = start_node(clock=clock)
    await asyncio.wait_for(node.connected.wait(), 60)
    clock.pause()  # the item starts when its fallback is here, and lasts while the test needs
    start = clock.now_ms() + 300
    item = stream_item("r1", start, station.url, media, 9000, fallback=True)
    await controller.push_timeline("n1", 1, [item])
    await until(lambda: node.media.is_ready(item["media"]["sha256"]), what="the fallback")
    clock.skip_to(start)
    await until(lambda: "stream_connected" in kinds(controller), 5, "the first connection")
    # The source's death, the fallback and the recovery go by the stream's own timers; the
    # item's 9 s do not run out meanwhile, however slow the machine.
    await station.stop()
    await until(lambda: "stream_failed" in kinds(controller), 8, "the source to be declared dead")
    run = node.streams[0]
    assert run.fell_back == 1 and run.failed
    failed = controller.events("n1", "stream_failed")[0].detail
    assert "source dead after 3 attempts" in failed and "fallback" in failed
    await station.start()
    await until(lambda: not run.failed, 8, "the stream to come back")
    await until(lambda: "recovered" in connected_details(controller), what="the recovery reported")
    assert not node.played
    clock.resume()
    clock.skip_to(start + 9000)
    await until(lambda: controller.events("n1", "playback_finished"), 10, "the relay to end")

    seen = kinds(controller)
    assert seen.index("stream_reconnecting") < seen.index("stream_failed")
    recovered = controller.events("n1", "stream_connected")[-1].detail
    assert "recovered" in recovered
    assert run.connects == 2 and node.played[0].outcome == "finished"
    # The item played its whole time, whatever the source did.
    assert node.played[0].end_ms - node.played[0].start_ms >= 8900


async def test_dead_source_without_fallback_says_so(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    start = SystemClock().now_ms() + 200
    item = stream_item("r1", start, "http://127.0.0.1:9/none.mp3", media, 3000)
    await controller.push_timeline("n1", 1, [item])
    await until(lambda: "stream_failed" in kinds(controller), 8, "stream_failed")
    assert "no fallback recording" in controller.events("n1", "stream_failed")[0].detail
    assert node.streams[0].fell_back == 0 and node.streams[0].frames == 0


async def test_hls_station_is_followed_segment_by_segment(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    station = await Station("hls", kbps=48).start()
    try:
        node = start_node()
        await asyncio.wait_for(node.connected.wait(), 60)
        start = SystemClock().now_ms() + 200
        item = stream_item("h1", start, station.url, media, 5000, format="hls")
        await controller.push_timeline("n1", 1, [item])
        await until(lambda: controller.events("n1", "playback_finished"), 12, "the relay to end")
    finally:
        await station.close()
    run = node.streams[0]
    # AAC frames taken out of MPEG-TS segments: 1024 samples at 48 kHz, 21.3 ms each.
    assert run.frames > 100 and run.audio_ms == pytest.approx(run.frames * 1024 / 48, rel=0.01)
    assert run.connects == 1 and "stream_failed" not in kinds(controller)
    assert any(r.split(b" ")[1].endswith(b".ts") for r in station.requests)


async def test_live_item_ends_when_its_source_ends_it(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer, station: Station
) -> None:
    # A short MP3 served whole and then closed, as the controller ends a stopped live stream.
    node = start_node(media_token="node-secret", media_token_url=media.url("media/token"))
    await asyncio.wait_for(node.connected.wait(), 60)
    start = SystemClock().now_ms() + 200
    item = stream_item("l1", start, media.url("said.mp3"), media, 60_000, live=True, auth=True)
    media.files["said.mp3"] = await _record(station, 1.0)
    await controller.push_timeline("n1", 1, [item])
    await until(lambda: controller.events("n1", "playback_finished"), 10, "the live item to end")
    finished = controller.events("n1", "playback_finished")[0]
    assert finished.detail == "live broadcast ended"
    assert node.played[0].end_ms - node.played[0].start_ms < 10_000
    assert "Bearer node-secret" in media.auth  # the controller's own streams get the token


async def _record(station: Station, seconds: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", station.port)
    writer.write(b"GET /live.mp3 HTTP/1.0\r\n\r\n")
    data = b""
    loop = asyncio.get_running_loop()
    until_t = loop.time() + seconds
    while loop.time() < until_t:
        data += await reader.read(4096)
    writer.close()
    return data.split(b"\r\n\r\n", 1)[1]


async def test_stream_learned_late_is_joined_for_what_is_left_of_its_time(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer, station: Station
) -> None:
    """A recording learned of 8 s late is missed; a live voice or a relay is joined at its
    live edge and ends at its scheduled end, not a whole duration later."""
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    start = SystemClock().now_ms() - 8000
    item = stream_item("late-live", start, station.url, media, 11_000, live=True)
    await controller.push_timeline("n1", 1, [item])
    await until(lambda: controller.events("n1", "playback_finished"), 10, "the joined item to end")
    assert controller.events("n1", "playback_missed") == []
    played = node.played[0]
    assert played.item_id == "late-live" and played.outcome == "finished"
    assert abs(played.end_ms - (start + 11_000)) < 500, played.end_ms - (start + 11_000)
    assert 1500 < node.streams[0].audio_ms < 4500, node.streams[0].audio_ms
