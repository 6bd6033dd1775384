"""Timelines: signed ones play on time; forged, stale, replayed and junk ones change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable

from fwsim_support import Controller, MediaServer, item, timeline_body, until

from firmware_sim import Node
from protocol import Signer, SystemClock, new_private_key
from tests.clocks import SteppedClock

DATA = b"\x00\x01" * 2000
SHA = hashlib.sha256(DATA).hexdigest()


async def test_signed_timeline_plays_at_start_time(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = DATA
    clock = SteppedClock()
    node = start_node(
        clock=clock, media_token="secret-token", media_token_url=media.url("media/token")
    )
    await asyncio.wait_for(node.connected.wait(), 60)
    clock.pause()  # nothing is due while the node fetches the media, however slow the machine
    start = clock.now_ms() + 1200
    await controller.push_timeline("n1", 1, [item("i1", start, media.url("a.mp3"), DATA)])
    await until(lambda: controller.events("n1", "media_ready"), what="media_ready")
    assert node.playback.now_playing is None and not node.played
    clock.skip_to(start)
    await until(lambda: node.playback.now_playing, what="i1 playing at its start")
    clock.resume()
    await until(lambda: controller.events("n1", "playback_finished"), what="playback_finished")
    assert node.timeline_version == 1
    played = node.played[0]
    assert played.item_id == "i1" and played.broadcast_id == "b-i1"
    assert played.start_ms == start and played.end_ms - played.start_ms >= 300
    types = [e.type for e in controller.events("n1")]
    assert types == ["timeline_applied", "media_ready", "playback_started", "playback_finished"]
    started = controller.events("n1", "playback_started")[0]
    assert (
        started.timeline_version == 1
        and started.sha256 == item("x", 0, "", DATA)["media"]["sha256"]
    )
    assert len({e.id for e in controller.events("n1")}) == 4
    assert media.auth == ["Bearer secret-token"]  # one download, with the node's token


async def test_retained_timeline_reaches_node_that_connects_later(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = DATA
    clock = SteppedClock()
    clock.pause()  # the item's time comes only once the node holds its media
    start = clock.now_ms() + 1500
    await controller.push_timeline("n1", 7, [item("i1", start, media.url("a.mp3"), DATA)])
    node = start_node(clock=clock)
    await until(lambda: node.media.is_ready(SHA), what="the retained timeline's media")
    clock.skip_to(start)
    await until(lambda: node.playback.now_playing, what="the retained timeline's item playing")
    clock.resume()
    await until(lambda: node.played, what="playback of the retained timeline")
    assert node.played[0].start_ms == start
    assert node.timeline_version == 7 and node.rejected_total == 0


async def test_late_items_start_within_tolerance_and_are_missed_beyond(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = DATA
    clock = SteppedClock()
    node = start_node(clock=clock)
    await asyncio.wait_for(node.connected.wait(), 60)
    clock.pause()  # "late" stays 8 s late and "soon" stays ahead until the test moves on
    now = clock.now_ms()
    url = media.url("a.mp3")
    await controller.push_timeline(
        "n1",
        1,
        [
            item("past", now - 60_000, url, DATA, duration_ms=1000),  # over: ignored
            item("late", now - 8_000, url, DATA, duration_ms=60_000),  # 8 s late: missed
            item("soon", now + 800, url, DATA, duration_ms=200),
        ],
    )
    await until(lambda: node.media.is_ready(SHA), what="the media")
    clock.skip_to(now + 800)
    clock.resume()
    await until(lambda: node.played, what="the in-time item")
    missed = controller.events("n1", "playback_missed")
    assert [e.item_id for e in missed] == ["late"] and missed[0].detail.startswith("late by ")
    assert [p.item_id for p in node.played] == ["soon"]


async def test_higher_priority_item_preempts(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["a.mp3"] = DATA
    clock = SteppedClock()
    node = start_node(clock=clock)
    await asyncio.wait_for(node.connected.wait(), 60)
    clock.pause()  # moved by hand: news starts, then flood comes while news still plays
    now = clock.now_ms()
    url = media.url("a.mp3")
    await controller.push_timeline(
        "n1",
        1,
        [
            item("news", now + 800, url, DATA, duration_ms=5_000),
            item("flood", now + 1300, url, DATA, duration_ms=200, priority="emergency"),
        ],
    )
    await until(lambda: node.media.is_ready(SHA), what="the media")
    clock.skip_to(now + 800)
    await until(lambda: node.playback.now_playing, what="news playing")
    clock.skip_to(now + 1300)
    clock.resume()
    await until(lambda: len(node.played) == 2, what="both items")
    assert [(p.item_id, p.outcome) for p in node.played] == [
        ("news", "preempted"),
        ("flood", "finished"),
    ]
    await until(lambda: controller.events("n1", "playback_preempted"), what="preempted event")
    preempted = controller.events("n1", "playback_preempted")
    assert preempted[0].item_id == "news" and "flood" in preempted[0].detail


async def test_bad_messages_are_counted_not_applied(
    start_node: Callable[..., Node], controller: Controller
) -> None:
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    topic = controller.topics.timeline("n1")
    now = SystemClock().now_ms()
    stranger = Signer(new_private_key())
    body = timeline_body("n1", 5, [])
    older = controller.sign("timeline", timeline_body("n1", 4, []))  # lower seq, signed first
    valid = controller.sign("timeline", body)
    await controller.publish(topic, valid)
    await until(lambda: node.timeline_version == 5, what="valid timeline")

    unsigned = json.loads(controller.sign("timeline", timeline_body("n1", 6, [])))
    unsigned["sig"] = ""
    tampered = json.loads(controller.sign("timeline", timeline_body("n1", 6, [])))
    tampered["body"]["version"] = 99
    junk = {
        "unsigned": json.dumps(unsigned).encode(),
        "unknown_key": controller.sign("timeline", timeline_body("n1", 6, []), signer=stranger),
        "bad_signature": json.dumps(tampered).encode(),
        "expired": controller.sign(
            "timeline", timeline_body("n1", 6, []), now_ms=now - 10_000, ttl_ms=1_000
        ),
        "replayed": older,
        "stale": controller.sign("timeline", timeline_body("n1", 4, [])),
        "wrong_node": controller.sign("timeline", timeline_body("n2", 6, [])),
        "invalid_body": controller.sign("timeline", {"node_id": "n1", "version": "x"}),
        "wrong_kind": controller.sign("cmd", timeline_body("n1", 6, [])),
    }
    for payload in junk.values():
        await controller.publish(topic, payload)
    for payload in [b"{not json", b"[" * 100_000, b"\xff\xfe", b"null"]:
        await controller.publish(topic, payload)
    await controller.publish(controller.topics.cmd("n1"), b"{]")
    await controller.publish(controller.topics.controller_state, b'{"status": "maybe"}')
    await controller.publish(
        controller.topics.area_alert("village-1"), controller.sign("timeline", {})
    )
    await until(lambda: node.rejected_total >= len(junk) + 7, what="all rejections")
    assert {reason: node.rejected[reason] for reason in junk} == {
        **dict.fromkeys(junk, 1),
        "wrong_kind": 2,
    }  # the second from the alert topic
    assert node.rejected["malformed"] == 6
    assert node.timeline_version == 5

    await controller.publish(topic, controller.sign("timeline", timeline_body("n1", 6, [])))
    await until(lambda: node.timeline_version == 6, what="node still alive and applying")
    await until(lambda: len(controller.events("n1", "message_rejected")) >= 10, what="events")
    details = [e.detail for e in controller.events("n1", "message_rejected")]
    assert any(d.startswith("unsigned on timeline") for d in details)
