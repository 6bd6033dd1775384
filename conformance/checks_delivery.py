"""Checks of what a node plays and downloads: a timeline and its reports in order, media and
firmware with the token and hash, an alert pre-empting and the timeline going on, a finished
alert staying finished across a restart."""

from __future__ import annotations

import hashlib
import os

from conformance.check_common import Evidence, expect, in_order
from conformance.kit import Kit, now_ms
from conformance.media_server import silent_mp3
from conformance.report import CheckFailed

# How far ahead an item is scheduled: time to take the timeline and download the media first,
# even on a busy machine (a node reports an item it could not start within 5 s as missed).
LEAD_MS = 5000


async def timeline_in_order(kit: Kit, ev: Evidence) -> None:
    audio = silent_mp3(1.0, f"{kit.prefix}-1")
    media = kit.serve("order.mp3", audio)
    start = now_ms() + LEAD_MS
    version = await kit.push_timeline([kit.item("order", start, media, 800)])
    ev.append(f"timeline v{version}: item 'order' at {start}, 800 ms")
    applied = await expect(kit, ev, "timeline_applied", f"v{version}", timeline_version=version)
    ready = await expect(kit, ev, "media_ready", "the item's media", sha256=media["sha256"])
    started = await expect(kit, ev, "playback_started", "the item", item_id="order")
    finished = await expect(kit, ev, "playback_finished", "the item", item_id="order")
    in_order(kit, [applied, ready, started, finished])
    ev.append(f"started {started.ts - start:+d} ms from its start time on the node's clock")


async def ignores_ended_items(kit: Kit, ev: Evidence) -> None:
    """An item listed after its end (the controller keeps one 15 s past it, for a node playing
    it late) is neither played nor reported, even within the 5 s a late start is allowed."""
    media = kit.serve("ended.mp3", silent_mp3(0.5, f"{kit.prefix}-ended"))
    now = now_ms()
    start = now + LEAD_MS
    items = [kit.item("ended", now - 2000, media, 500), kit.item("next", start, media, 500)]
    version = await kit.push_timeline(items)
    ev.append(f"timeline v{version}: item 'ended' ended 1500 ms ago, item 'next' at {start}")
    await expect(kit, ev, "playback_finished", "the item after it", item_id="next")
    # The media is held and the player was free: a node that took the ended item has
    # reported something of it by now.
    await kit.events_barrier()
    reported = sorted({e.type for e in kit.events() if e.item_id == "ended"})
    if reported:
        raise CheckFailed(f"the node reported {', '.join(reported)} for an item that had ended")
    ev.append("nothing reported of the ended item")


async def media_with_token(kit: Kit, ev: Evidence) -> None:
    media = kit.serve("token.mp3", silent_mp3(0.5, f"{kit.prefix}-2"))
    await kit.push_timeline([kit.item("token", now_ms() + 600_000, media, 500)])
    await kit.wait_for(
        lambda: (
            kit.event("media_ready", sha256=media["sha256"])
            or kit.event("media_failed", sha256=media["sha256"])
        ),
        "media_ready or media_failed for a media download",
    )
    requests = kit.media.requests_for("token.mp3")
    ev.append(f"requests: {[(r.status, 'token' if r.token_ok else 'no token') for r in requests]}")
    if not any(r.token_ok and r.status == 200 for r in requests):
        raise CheckFailed("the media was not downloaded with the node's media token")
    if kit.event("media_ready", sha256=media["sha256"]) is None:
        raise CheckFailed("the media was served with the token but reported media_failed")


async def media_hash(kit: Kit, ev: Evidence) -> None:
    good = silent_mp3(0.5, f"{kit.prefix}-3")
    media = kit.serve("hash.mp3", good)
    kit.media.files["hash.mp3"] = b"\x00" + good[1:]  # same size, another SHA-256
    await kit.push_timeline([kit.item("hash", now_ms() + 600_000, media, 500)])
    ev.append(
        f"timeline item whose media is served with one byte changed ({media['sha256'][:16]}…)"
    )
    await kit.wait_for(
        lambda: (
            kit.event("media_ready", sha256=media["sha256"])
            or kit.event("media_failed", sha256=media["sha256"])
        ),
        "media_ready or media_failed for media whose bytes do not match their SHA-256",
    )
    if kit.event("media_ready", sha256=media["sha256"]) is not None:
        raise CheckFailed("media whose bytes do not match the signed SHA-256 was taken")
    failed = kit.event("media_failed", sha256=media["sha256"])
    assert failed is not None
    ev.append(f"media_failed: {failed.detail!r}")


async def alert_preempts_and_resumes(kit: Kit, ev: Evidence) -> None:
    first = kit.serve("cut.mp3", silent_mp3(3.0, f"{kit.prefix}-5"))
    after = kit.serve("after.mp3", silent_mp3(0.6, f"{kit.prefix}-6"))
    start = now_ms() + LEAD_MS
    await kit.push_timeline(
        [kit.item("cut", start, first, 3000), kit.item("after", start + 5000, after, 500)]
    )
    await expect(kit, ev, "media_ready", "the second item", sha256=after["sha256"])
    await expect(kit, ev, "playback_started", "the first item", item_id="cut")
    alert_id = f"{kit.prefix}-preempt"
    body = kit.alert_body(alert_id, kit.areas[0], silent_mp3(0.6, f"{kit.prefix}-7"), 600)
    await kit.publish(
        kit.topics.area_alert(kit.areas[0]), kit.envelope("alert", body).model_dump_json().encode()
    )
    ev.append("a test alert of 600 ms published while the first item played")
    cut = await expect(kit, ev, "playback_preempted", "the first item", item_id="cut")
    await expect(kit, ev, "alert_received", "the alert", item_id=alert_id)
    sounded = await expect(kit, ev, "alert_started", "the alert", item_id=alert_id)
    done = await expect(kit, ev, "alert_finished", "the alert", item_id=alert_id)
    resumed = await expect(kit, ev, "playback_started", "the item after the alert", item_id="after")
    await expect(kit, ev, "playback_finished", "the item after the alert", item_id="after")
    in_order(kit, [cut, done])
    in_order(kit, [sounded, done, resumed])
    if kit.event("playback_finished", item_id="cut") is not None:
        raise CheckFailed("the item the alert cut was reported finished")


async def finished_alert_after_restart(kit: Kit, ev: Evidence) -> None:
    topic = kit.topics.area_alert(kit.areas[1])
    alert_id = f"{kit.prefix}-remembered"
    body = kit.alert_body(alert_id, kit.areas[1], silent_mp3(0.5, f"{kit.prefix}-8"), 500)
    await kit.publish(topic, kit.envelope("alert", body).model_dump_json().encode(), retain=True)
    ev.append(f"a test alert published retained on {topic}, play_by {body['play_by']}")
    await expect(kit, ev, "alert_finished", "the alert", item_id=alert_id)
    await kit.events_barrier()  # its reports are acknowledged before the restart
    before = {e.id for e in kit.events()}
    state = await kit.restart_node()
    ev.append(f"restarted: online again with boot {state.boot}")
    await kit.sync_after_restart()
    await kit.events_barrier()
    # An event whose acknowledgement the stop cut off may come again (the same id, at least
    # once): that is delivery, not the alert taken again.
    again = [
        str(e.type)
        for e in kit.events(since=kit.started_at)
        if e.item_id == alert_id and e.id not in before
    ]
    await kit.publish(topic, b"", retain=True)
    if again:
        raise CheckFailed(
            f"after the restart the node took the finished alert again (the broker's retained "
            f"copy, before its play_by): {again}"
        )
    ev.append("the retained copy delivered after the restart was not sounded or reported")


async def firmware_checks_hash(kit: Kit, ev: Evidence) -> None:
    image = os.urandom(64 * 1024)
    kit.media.files["conf-firmware.bin"] = image
    args = {
        "version": "conf-never-installed",
        "url": kit.media.url("conf-firmware.bin"),
        "sha256": hashlib.sha256(b"another image").hexdigest(),
        "size": len(image),
    }
    ack = await kit.command("update_firmware", args)
    requests = kit.media.requests_for("conf-firmware.bin")
    ev.append(f"final ack: ok={ack.ok} stage={ack.stage} {ack.detail!r}")
    ev.append(f"requests: {[(r.status, 'token' if r.token_ok else 'no token') for r in requests]}")
    if ack.ok:
        raise CheckFailed("an image whose SHA-256 does not match the signed one was installed")
    if not any(r.token_ok and r.status == 200 for r in requests):
        raise CheckFailed("the image was not downloaded with the node's media token")
