"""Media: hash and size are verified; bad media never plays; a repaired server is retried."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from fwsim_support import Controller, MediaServer, item, until

from firmware_sim import Node
from firmware_sim.media import MediaCache
from protocol import SystemClock
from tests.clocks import SteppedClock

GOOD_A = b"announcement A " * 300
GOOD_B = b"announcement B " * 300


async def test_bad_media_is_never_played_and_repair_is_retried(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = b"tampered A " * 300  # wrong hash and size, forever
    media.files["b.mp3"] = b"X" * len(GOOD_B)  # right size, wrong hash, repaired later
    clock = SteppedClock()
    node = start_node(clock=clock)
    await asyncio.wait_for(node.connected.wait(), 60)
    clock.pause()  # downloads are retried until an item is due: it is due when the test says
    now = clock.now_ms()
    await controller.push_timeline(
        "n1",
        1,
        [
            item("bad", now + 1500, media.url("a.mp3"), GOOD_A, duration_ms=200),
            item("fixed", now + 3500, media.url("b.mp3"), GOOD_B, duration_ms=200),
        ],
    )
    await until(
        lambda: {e.item_id for e in controller.events("n1", "media_failed")} == {"bad", "fixed"},
        what="media_failed for both",
    )
    details = {e.item_id: e.detail for e in controller.events("n1", "media_failed")}
    assert "sha256 mismatch" in details["fixed"]
    assert "larger than" in details["bad"] or "size" in details["bad"]
    media.files["b.mp3"] = GOOD_B
    await until(lambda: controller.events("n1", "media_ready"), what="the repaired media")
    clock.skip_to(now + 1500)
    await until(lambda: controller.events("n1", "playback_failed"), what="bad is due unready")
    clock.skip_to(now + 3500)
    clock.resume()
    await until(lambda: controller.events("n1", "playback_finished"), what="repaired item plays")
    assert [p.item_id for p in node.played] == ["fixed"]
    failed = controller.events("n1", "playback_failed")
    assert [(e.item_id, e.detail) for e in failed] == [("bad", "media not ready")]
    ready = controller.events("n1", "media_ready")
    assert [e.item_id for e in ready] == ["fixed"]
    assert [e.item_id for e in controller.events("n1", "playback_started")] == ["fixed"]


async def test_items_sharing_media_share_one_download(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = GOOD_A
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    now = SystemClock().now_ms()
    url = media.url("a.mp3")
    await controller.push_timeline(
        "n1", 1, [item("x1", now + 30_000, url, GOOD_A), item("x2", now + 60_000, url, GOOD_A)]
    )
    await until(lambda: len(controller.events("n1", "media_ready")) == 2, what="media_ready x2")
    await controller.push_timeline(
        "n1", 2, [item("x1", now + 30_000, url, GOOD_A), item("x3", now + 90_000, url, GOOD_A)]
    )
    await until(lambda: len(controller.events("n1", "media_ready")) == 3, what="x3 ready")
    assert len(media.auth) == 1 and node.timeline_version == 2


async def test_a_timeline_of_many_recordings_downloads_a_few_at_a_time_first_items_first(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    """A timeline may hold 2,000 items, each with audio of its own: the node fetches a few at a
    time, the earliest first, and answers commands meanwhile."""
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    now = SystemClock().now_ms()
    items = []
    for k in range(12):
        name = f"m{k:02d}.mp3"
        media.files[name] = bytes([k]) * 4096
        # Listed latest first: the order of their times counts, not of the list.
        items.append(
            item(f"i{k:02d}", now + 3_600_000 + k * 60_000, media.url(name), media.files[name])
        )
    media.hold = threading.Event()  # each download takes its first KiB, then waits
    await controller.push_timeline("n1", 1, list(reversed(items)))
    await until(lambda: len(media.requests) == MediaCache.downloads_at_once, what="a few")
    cmd_id = await controller.command("n1", "resync", {})
    await until(lambda: any(a.cmd_id == cmd_id for a in controller.acks("n1")), what="an answer")
    # The earliest items' (their requests, made together, may reach the server in any order).
    assert sorted(media.requests) == [f"m{k:02d}.mp3" for k in range(MediaCache.downloads_at_once)]
    media.hold.set()
    await until(lambda: len(controller.events("n1", "media_ready")) == 12, what="all the media")
    assert media.most_at_once == MediaCache.downloads_at_once
    assert sorted(media.requests) == sorted(media.files)  # each once
