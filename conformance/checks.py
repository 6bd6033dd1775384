"""The rules a node is graded on, one check each (docs/protocol.md, "Conformance").

A check plays the controller through the kit and waits for evidence, each wait bounded by the
kit's timeout. What a node must NOT do is proven with a barrier instead of a pause: a command
sent after the bad message is answered only once the bad message has been handled, and a new
timeline version is reported only after every report the node made before it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conformance.kit import Kit, _now_ms
from conformance.media_server import silent_mp3
from conformance.report import CheckFailed
from protocol import NodeEvent, Signer, new_private_key

Evidence = list[str]


@dataclass(frozen=True)
class Check:
    id: str
    rule: str
    run: Callable[[Kit, Evidence], Awaitable[None]]


def _position(kit: Kit, event: NodeEvent) -> int:
    return next(i for i, h in enumerate(kit.heard) if h.report is event)


def _in_order(kit: Kit, events: list[NodeEvent]) -> None:
    positions = [_position(kit, e) for e in events]
    if positions != sorted(positions):
        got = [e.type for e in sorted(events, key=lambda e: _position(kit, e))]
        raise CheckFailed(f"reports out of order: {', '.join(got)}")


async def _expect(kit: Kit, ev: Evidence, type: str, what: str, **fields: object) -> NodeEvent:
    event = await kit.wait_for(lambda: kit.matching(type, fields), f"{type} for {what}")
    ev.append(f"{type} for {what} (event {event.id[:12]}, ts {event.ts})")
    return event


# Timelines and media ----------------------------------------------------------------------


async def timeline_in_order(kit: Kit, ev: Evidence) -> None:
    audio = silent_mp3(1.0, f"{kit.prefix}-1")
    media = kit.serve("order.mp3", audio)
    start = _now_ms() + 2500
    version = await kit.push_timeline([kit.item("order", start, media, 800)])
    ev.append(f"timeline v{version}: item 'order' at {start}, 800 ms")
    applied = await _expect(kit, ev, "timeline_applied", f"v{version}", timeline_version=version)
    ready = await _expect(kit, ev, "media_ready", "the item's media", sha256=media["sha256"])
    started = await _expect(kit, ev, "playback_started", "the item", item_id="order")
    finished = await _expect(kit, ev, "playback_finished", "the item", item_id="order")
    _in_order(kit, [applied, ready, started, finished])
    ev.append(f"started {started.ts - start:+d} ms from its start time on the node's clock")


async def media_with_token(kit: Kit, ev: Evidence) -> None:
    media = kit.serve("token.mp3", silent_mp3(0.5, f"{kit.prefix}-2"))
    await kit.push_timeline([kit.item("token", _now_ms() + 600_000, media, 500)])
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
    await kit.push_timeline([kit.item("hash", _now_ms() + 600_000, media, 500)])
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


# Refusals -----------------------------------------------------------------------------------


async def _refused(kit: Kit, ev: Evidence, cmd_ids: dict[str, str], since: float) -> None:
    """Each command (id: what was wrong with it) unanswered once a later command is answered."""
    ev.append(f"sent: {', '.join(cmd_ids.values())}")
    await kit.sync()
    answered = [
        f"{what} (acked: {kit.acks(i)[0].detail!r})" for i, what in cmd_ids.items() if kit.acks(i)
    ]
    if answered:
        raise CheckFailed(f"the node acted on {'; '.join(answered)}")
    ev.append("none answered; a valid command sent after them was")
    rejected = [e.detail for e in kit.events("message_rejected", since)]
    ev.append(f"message_rejected reported: {rejected or 'none seen yet'}")


async def refuses_unsigned(kit: Kit, ev: Evidence) -> None:
    since = time.monotonic()
    env = kit.command_envelope("volume", {"level": 11})
    env.sig = ""
    await kit.send(env)
    await _refused(kit, ev, {env.id: "a command without a signature"}, since)


async def refuses_forged(kit: Kit, ev: Evidence) -> None:
    since = time.monotonic()
    stranger = kit.envelope(
        "cmd",
        {"node_id": kit.node_id, "command": "volume", "args": {"level": 12}},
        signer=Signer(new_private_key()),
    )
    tampered = kit.command_envelope("volume", {"level": 13})
    tampered.body["args"] = {"level": 14}  # changed after signing
    for env in (stranger, tampered):
        await kit.send(env)
    what = {
        stranger.id: "a command signed by a key the node does not trust",
        tampered.id: "a command changed after it was signed",
    }
    await _refused(kit, ev, what, since)


async def refuses_expired(kit: Kit, ev: Evidence) -> None:
    since = time.monotonic()
    body = {"node_id": kit.node_id, "command": "volume", "args": {"level": 15}}
    env = kit.envelope("cmd", body, ttl_ms=60_000, now_ms=_now_ms() - 120_000)
    await kit.send(env)
    await _refused(kit, ev, {env.id: "a command that expired a minute ago"}, since)


async def refuses_replayed(kit: Kit, ev: Evidence) -> None:
    since = time.monotonic()
    older = kit.command_envelope("volume", {"level": 16})
    first = kit.command_envelope("volume", {"level": 17})  # signed later: a higher seq
    await kit.send(first)
    await kit.wait_for(lambda: kit.final_ack(first.id), "ack of a valid command")
    ev.append(f"a valid command (seq {first.seq}) answered once")
    await kit.send(first)  # the same bytes again
    await kit.send(older)  # captured earlier, sent after a newer one
    await kit.sync()
    if len(kit.acks(first.id)) > 1:
        raise CheckFailed("the node answered the same command envelope twice (replayed)")
    if kit.acks(older.id):
        raise CheckFailed(
            f"the node acted on a command with seq {older.seq} after one with seq {first.seq}"
        )
    ev.append("the same envelope again and an older one were not answered")
    rejected = [e.detail for e in kit.events("message_rejected", since)]
    ev.append(f"message_rejected reported: {rejected or 'none seen yet'}")


async def refuses_wrong_area(kit: Kit, ev: Evidence) -> None:
    topic = kit.topics.area_alert(kit.areas[0])
    audio = silent_mp3(0.5, f"{kit.prefix}-4")
    # Ids of this run's own: a node that keeps finished alerts must not know them already.
    wrong, no_area = f"{kit.prefix}-wrong-area", f"{kit.prefix}-no-area"
    other = kit.alert_body(wrong, "conf-elsewhere", audio, 500)
    none = kit.alert_body(no_area, None, audio, 500)
    for body in (other, none):
        await kit.publish(topic, kit.envelope("alert", body).model_dump_json().encode())
    ev.append(f"on {topic}: an alert signed for area 'conf-elsewhere', and one naming no area")
    await kit.sync()
    await kit.events_barrier()
    taken = [
        f"{e.type} {e.item_id}"
        for e in kit.events()
        if e.item_id in (wrong, no_area) and e.type.startswith("alert_")
    ]
    if taken:
        raise CheckFailed(f"the node took an alert signed for another area or none: {taken}")
    ev.append("neither was received or sounded (checked after a later timeline was reported)")


# Commands ------------------------------------------------------------------------------------


async def answers_commands(kit: Kit, ev: Evidence) -> None:
    cases: list[tuple[str, dict[str, object], bool]] = [
        ("volume", {"level": 55}, True),
        ("stop", {}, True),
        ("test_tone", {"duration_ms": 300}, True),
        ("resync", {}, True),
        ("volume", {"level": 500}, False),
        ("conf_no_such_command", {}, False),
    ]
    for command, args, ok in cases:
        ack = await kit.command(command, args)
        ev.append(f"{command} {args}: ok={ack.ok} {ack.detail!r}")
        if ack.ok != ok:
            raise CheckFailed(
                f"{command} {args} answered ok={ack.ok}, expected ok={ok} ({ack.detail!r})"
            )
    before = kit.states()
    boot = before[-1].boot if before else 0
    mark = time.monotonic()
    ack = await kit.command("reboot")
    ev.append(f"reboot: ok={ack.ok} {ack.detail!r}")
    if not ack.ok:
        raise CheckFailed(f"reboot refused: {ack.detail!r}")
    state = await kit.wait_for(
        lambda: next((s for s in kit.states(mark) if s.status == "online" and s.boot > boot), None),
        f"online state with a boot counter above {boot} after the reboot",
    )
    ev.append(f"back online with boot {state.boot}")
    await kit.sync_after_restart()


# Alerts ---------------------------------------------------------------------------------------


async def alert_preempts_and_resumes(kit: Kit, ev: Evidence) -> None:
    first = kit.serve("cut.mp3", silent_mp3(3.0, f"{kit.prefix}-5"))
    after = kit.serve("after.mp3", silent_mp3(0.6, f"{kit.prefix}-6"))
    start = _now_ms() + 2500
    await kit.push_timeline(
        [kit.item("cut", start, first, 3000), kit.item("after", start + 5000, after, 500)]
    )
    await _expect(kit, ev, "media_ready", "the second item", sha256=after["sha256"])
    await _expect(kit, ev, "playback_started", "the first item", item_id="cut")
    alert_id = f"{kit.prefix}-preempt"
    body = kit.alert_body(alert_id, kit.areas[0], silent_mp3(0.6, f"{kit.prefix}-7"), 600)
    await kit.publish(
        kit.topics.area_alert(kit.areas[0]), kit.envelope("alert", body).model_dump_json().encode()
    )
    ev.append("a test alert of 600 ms published while the first item played")
    cut = await _expect(kit, ev, "playback_preempted", "the first item", item_id="cut")
    await _expect(kit, ev, "alert_received", "the alert", item_id=alert_id)
    sounded = await _expect(kit, ev, "alert_started", "the alert", item_id=alert_id)
    done = await _expect(kit, ev, "alert_finished", "the alert", item_id=alert_id)
    resumed = await _expect(
        kit, ev, "playback_started", "the item after the alert", item_id="after"
    )
    await _expect(kit, ev, "playback_finished", "the item after the alert", item_id="after")
    _in_order(kit, [cut, done])
    _in_order(kit, [sounded, done, resumed])
    if kit.event("playback_finished", item_id="cut") is not None:
        raise CheckFailed("the item the alert cut was reported finished")


async def finished_alert_after_restart(kit: Kit, ev: Evidence) -> None:
    topic = kit.topics.area_alert(kit.areas[1])
    alert_id = f"{kit.prefix}-remembered"
    body = kit.alert_body(alert_id, kit.areas[1], silent_mp3(0.5, f"{kit.prefix}-8"), 500)
    await kit.publish(topic, kit.envelope("alert", body).model_dump_json().encode(), retain=True)
    ev.append(f"a test alert published retained on {topic}, play_by {body['play_by']}")
    await _expect(kit, ev, "alert_finished", "the alert", item_id=alert_id)
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


# Reports ----------------------------------------------------------------------------------------


async def _report_while_away(kit: Kit, ev: Evidence) -> int:
    """With the controller offline, make the node report something; its timeline version."""
    await kit.controller_state(online=False)
    version = await kit.push_timeline(kit.timeline_items)
    await kit.sync()  # the timeline is handled (commands are answered while it is away)
    await kit.sync()
    ev.append(f"controller offline; timeline v{version} pushed and two commands answered")
    return version


async def reports_held_while_controller_away(kit: Kit, ev: Evidence) -> None:
    version = await _report_while_away(kit, ev)
    early = kit.event("timeline_applied", timeline_version=version)
    await kit.controller_state(online=True)
    if early is not None:
        raise CheckFailed(
            f"timeline_applied v{version} was sent while the controller was offline (the "
            "broker drops what no controller takes: it is lost)"
        )
    mark = time.monotonic()
    await kit.wait_for(
        lambda: kit.event("timeline_applied", timeline_version=version),
        f"timeline_applied v{version}, kept while the controller was away",
    )
    ev.append(f"sent {time.monotonic() - mark:.2f} s after the controller came back")


async def reports_sent_once(kit: Kit, ev: Evidence) -> None:
    version = await _report_while_away(kit, ev)
    await kit.controller_state(online=True)
    await kit.wait_for(
        lambda: kit.event("timeline_applied", timeline_version=version),
        f"timeline_applied v{version} after the controller came back",
    )
    await kit.events_barrier()
    # Since the node's last start: a stop may cut off the acknowledgement of the event being
    # sent, which then comes again after the start (at least once, de-duplicated by id).
    before = {
        h.report.id for h in kit.heard if h.at < kit.started_at and isinstance(h.report, NodeEvent)
    }
    recent = [e for e in kit.events(since=kit.started_at) if e.id not in before]
    ids = Counter(e.id for e in recent)
    twice = {i: n for i, n in ids.items() if n > 1}
    if twice:
        types = sorted({str(e.type) for e in recent if e.id in twice})
        raise CheckFailed(
            f"{len(twice)} event id(s) sent more than once (e.g. {types}): reports must be "
            "sent once after they are acknowledged"
        )
    ev.append(f"{len(ids)} events since the node's last start, each id once")


# Firmware ------------------------------------------------------------------------------------


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


async def reports_follow_contract(kit: Kit, ev: Evidence) -> None:
    if kit.invalid:
        raise CheckFailed(f"{len(kit.invalid)} report(s) broke the contract: {kit.invalid[:3]}")
    ev.append(f"{len(kit.heard)} reports parsed by protocol.parse_node_report")


CHECKS: list[Check] = [
    Check("timeline_in_order", "applies a timeline and reports it in order", timeline_in_order),
    Check("media_with_token", "downloads media with its media token", media_with_token),
    Check("media_hash", "refuses media whose SHA-256 does not match", media_hash),
    Check("refuses_unsigned", "refuses unsigned messages", refuses_unsigned),
    Check("refuses_forged", "refuses forged messages", refuses_forged),
    Check("refuses_expired", "refuses expired messages", refuses_expired),
    Check("refuses_replayed", "refuses replayed messages", refuses_replayed),
    Check("refuses_wrong_area", "refuses alerts signed for another area", refuses_wrong_area),
    Check("answers_commands", "answers each command", answers_commands),
    Check(
        "alert_preempts_and_resumes",
        "pre-empts what plays for an alert, then goes on with its timeline",
        alert_preempts_and_resumes,
    ),
    Check(
        "finished_alert_after_restart",
        "remembers finished alerts across a restart",
        finished_alert_after_restart,
    ),
    Check(
        "reports_held_while_controller_away",
        "keeps reports while the controller is away",
        reports_held_while_controller_away,
    ),
    Check("reports_sent_once", "sends each report once", reports_sent_once),
    Check(
        "firmware_checks_hash",
        "downloads a firmware image with its token and refuses one whose hash does not match",
        firmware_checks_hash,
    ),
    Check(
        "reports_follow_contract", "every report parses under the contract", reports_follow_contract
    ),
]
