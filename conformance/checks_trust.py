"""Checks of what a node refuses: unsigned, forged, expired and replayed messages, and alerts
signed for another area. Each is proven by a barrier: a valid command sent after the bad
message is answered, the bad one never."""

from __future__ import annotations

import time

from conformance.check_common import Evidence
from conformance.kit import Kit, now_ms
from conformance.media_server import silent_mp3
from conformance.report import CheckFailed
from protocol import Signer, new_private_key


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
    env = kit.envelope("cmd", body, ttl_ms=60_000, issued_ms=now_ms() - 120_000)
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
