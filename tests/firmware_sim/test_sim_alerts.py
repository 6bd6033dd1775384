"""Emergency alerts: pre-empt, repeat, cancel, update, retained, expiry, trust, bad media, volume."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from fwsim_support import Controller, MediaServer, item, until

from firmware_sim import Node
from protocol import ControllerState, Signer, SystemClock, Telemetry, new_private_key
from tests.clocks import SteppedClock

SIREN = b"siren " * 2000
UPDATE = b"update " * 2000
CYCLE = ["alert_received", "alert_started", "alert_finished"]


def now() -> int:
    return SystemClock().now_ms()


def alert(alert_id: str, url: str, data: bytes, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alert_id": alert_id,
        "action": "play",
        "title": "Cảnh báo lũ quét",
        "media": {"url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "duration_ms": 300,
        "repeat": 1,
        "pause_ms": 100,
        "expires": now() + 60_000,
    }
    return body | fields


def cancel(alert_id: str, version: int = 1) -> dict[str, Any]:
    return {"alert_id": alert_id, "version": version, "action": "cancel", "expires": now() + 1}


async def send(ctl: Controller, body: dict[str, Any], area: str = "village-1", **kw: Any) -> int:
    """Publish like the controller: `play` retained, `cancel` not, the body naming the area of
    the topic (unless it names one already); returns the publish time."""
    retain = kw.pop("retain", body["action"] == "play")
    body = {"area": area, **body}
    sent = now()
    await ctl.publish(ctl.topics.area_alert(area), ctl.sign("alert", body, **kw), retain=retain)
    return sent


async def clear(ctl: Controller, *areas: str) -> None:
    for area in areas or ("village-1",):
        await ctl.publish(ctl.topics.area_alert(area), b"", retain=True)


async def barrier(ctl: Controller, area: str = "village-1", node_id: str = "n1") -> None:
    """Send, behind everything before it on the area's alert topic, an alert that has already
    expired: the node refuses to sound it and reports it failed. Once that report is at the
    controller, the node has handled every message before it on that topic, and the controller
    has every event the node sent before it: "nothing more happened" can then be asserted."""
    before = len(ctl.events(node_id, "alert_failed"))
    body = alert(f"barrier-{area}-{before}", "http://127.0.0.1:9/none.mp3", b"-", expires=now())
    await send(ctl, body, area, retain=False)
    await until(lambda: len(ctl.events(node_id, "alert_failed")) > before, what="the barrier")
    assert ctl.events(node_id, "alert_failed")[-1].detail == "v1; expired"


BARRIER = ("alert_failed", "v1; expired")


def kinds(ctl: Controller, node_id: str = "n1") -> list[tuple[str, str]]:
    return [(e.type, e.detail) for e in ctl.events(node_id) if e.type.startswith("alert_")]


async def test_alert_preempts_item_repeats_and_timeline_resumes(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["news.mp3"] = media.files["siren.mp3"] = SIREN
    clock = SteppedClock()
    node = start_node(clock=clock)
    await asyncio.wait_for(node.connected.wait(), 60)
    # Held still and moved by hand, so each item falls where the test says however slow the
    # machine: news is playing when the alert comes, "during" is due while the alert holds the
    # speaker, "later" after the alert is over.
    clock.pause()
    t0, url = clock.now_ms(), media.url("news.mp3")
    await controller.push_timeline(
        "n1",
        1,
        [
            item("news", t0 + 500, url, SIREN, duration_ms=10_000),
            item("during", t0 + 1400, url, SIREN, duration_ms=300),
            item("later", t0 + 2800, url, SIREN, duration_ms=200),
        ],
    )
    await until(lambda: node.media.is_ready(hashlib.sha256(SIREN).hexdigest()), what="media")
    clock.skip_to(t0 + 500)
    await until(lambda: node.playback.now_playing, what="news playing")
    asked = len(media.requests)
    body = alert("a1", media.url("siren.mp3"), SIREN, duration_ms=400, repeat=2, pause_ms=200)
    await send(controller, body)
    await until(lambda: node.active_alert, what="the alert sounding")
    clock.skip_to(t0 + 1400)  # its first playing and pause are over; the second sounds
    await until(lambda: controller.events("n1", "playback_missed"), what="during missed")
    assert node.active_alert is not None
    clock.skip_to(t0 + 2200)
    await until(lambda: node.alerts_played, what="the alert over")
    clock.skip_to(t0 + 2800)
    clock.resume()
    await until(lambda: [p.item_id for p in node.played] == ["news", "later"], what="later")
    [played] = node.alerts_played
    assert (played.alert_id, played.playings, played.outcome) == ("a1", 2, "finished")
    assert played.ended_ms - played.started_ms >= 400 + 200 + 400
    # The same audio was verified for the timeline: the alert sounded from it, no download.
    assert media.requests[asked:] == []
    assert node.played[0].outcome == "preempted" and node.played[1].outcome == "finished"
    await until(lambda: len(kinds(controller)) == 3, what="alert events")
    assert [k for k, _ in kinds(controller)] == CYCLE
    [preempted] = controller.events("n1", "playback_preempted")
    [missed] = controller.events("n1", "playback_missed")
    assert preempted.item_id == "news" and preempted.detail == "pre-empted by alert a1"
    assert missed.item_id == "during" and missed.detail == "pre-empted by alert a1"
    assert node.active_alert is None and node.playback.held_by is None
    await clear(controller)


async def test_cancel_stops_at_once_with_volume_restored(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"] = media.files["a.mp3"] = SIREN
    clock = SteppedClock()
    node = start_node(heartbeat_s=0.2, clock=clock)
    node.health.jitter = False

    def telemetry() -> list[Telemetry]:
        return controller.telemetry("n1")

    await asyncio.wait_for(node.connected.wait(), 60)
    body = alert("a1", media.url("siren.mp3"), SIREN, repeat=0, volume=95, test=True)
    await send(controller, body)
    await until(
        lambda: any(t.now_playing == "alert:a1" and t.volume == 95 for t in telemetry()),
        what="telemetry during the alert",
    )
    start = clock.now_ms()
    await controller.push_timeline("n1", 1, [item("after", start + 900, media.url("a.mp3"), SIREN)])
    await until(lambda: node.media.is_ready(hashlib.sha256(SIREN).hexdigest()), what="media")
    # Held still: the cancel has to stop the alert by itself, at once, not by any time passing.
    clock.pause()
    stopped_at = clock.now_ms()
    await send(controller, cancel("a1"))
    await clear(controller)
    await until(lambda: node.active_alert is None, what="alert stopped")
    assert node.alerts_played[0].ended_ms == stopped_at  # no time passed on the node's clock
    clock.resume()
    clock.skip_to(now())  # back on the controller's time, as the barriers below expect
    await until(lambda: node.played, what="timeline resumed")
    assert node.played[0].item_id == "after"
    assert node.alerts_played[0].outcome == "stopped" and node.health.volume == 70
    await until(lambda: telemetry()[-1].volume == 70, timeout=3, what="volume restored")
    assert telemetry()[-1].now_playing != "alert:a1"
    await until(lambda: len(kinds(controller)) == 3, what="alert events")
    assert kinds(controller)[2] == ("alert_stopped", "v1; test; cancelled (v1)")
    assert kinds(controller)[1][1] == "v1; test; volume 95"
    before = kinds(controller)
    await send(controller, body, retain=False)  # the same version again: settled, not replayed
    await barrier(controller)
    assert len(node.alerts_played) == 1 and kinds(controller) == [*before, BARRIER]


async def test_update_switches_media(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"], media.files["update.mp3"] = SIREN, UPDATE
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    await send(controller, alert("a1", media.url("siren.mp3"), SIREN, repeat=0))
    await until(lambda: node.active_alert, what="v1 sounding")
    await send(controller, alert("a1", media.url("update.mp3"), UPDATE, version=2, repeat=1))
    await until(lambda: len(node.alerts_played) == 2, what="v1 stopped, v2 played")
    assert [(p.version, p.outcome) for p in node.alerts_played] == [(1, "stopped"), (2, "finished")]
    await until(lambda: len(kinds(controller)) == 6, what="events")
    assert [k for k, _ in kinds(controller)] == [*CYCLE[:2], "alert_stopped", *CYCLE]
    started = controller.events("n1", "alert_started")
    assert started[1].sha256 == hashlib.sha256(UPDATE).hexdigest() != started[0].sha256
    assert kinds(controller)[2][1] == "v1; updated to v2"
    await clear(controller)


async def test_retained_play_reaches_late_node_but_cleared_one_does_not(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"] = SIREN
    await send(controller, alert("a1", media.url("siren.mp3"), SIREN, repeat=1), "commune-1")
    early = start_node("n1")
    await until(lambda: early.alerts_played, what="late-connecting node plays it")
    await send(controller, cancel("a1"), "commune-1")
    await clear(controller, "commune-1")
    late = start_node("n2")
    await asyncio.wait_for(late.connected.wait(), 60)
    # A retained message reaches a subscriber before anything published after it.
    await barrier(controller, "commune-1", "n2")
    assert not late.alerts_played and late.alerts_received == 1  # the barrier alone
    assert kinds(controller, "n2") == [BARRIER]
    assert early.alerts_played[0].outcome == "finished" and early.rejected_total == 0


async def test_retained_play_past_its_last_repetition_is_not_sounded_by_a_late_node(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    """A retained copy still there (the controller away) of an alert whose repetitions are
    over where it was heard: a node joining now neither sounds it nor reports it."""
    media.files["siren.mp3"] = SIREN
    url = media.url("siren.mp3")
    await send(controller, alert("over", url, SIREN, play_by=now() - 1000), "commune-1")
    node = start_node("n1")
    await asyncio.wait_for(node.connected.wait(), 60)
    await barrier(controller, "commune-1")
    assert not node.alerts_played and node.alerts_received == 2  # the retained one, the barrier
    assert kinds(controller) == [BARRIER]
    # Within its window it sounds as before.
    await send(controller, alert("fresh", url, SIREN, play_by=now() + 60_000), "commune-1")
    await until(lambda: node.alerts_played, what="the alert within its window")
    assert [a.alert_id for a in node.alerts_played] == ["fresh"]


async def test_expired_alerts_are_not_played_and_expiry_ends_playing(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"] = SIREN
    clock = SteppedClock()
    node = start_node(clock=clock)
    await asyncio.wait_for(node.connected.wait(), 60)
    url = media.url("siren.mp3")
    await send(controller, alert("old", url, SIREN, expires=now() - 1000))
    await until(lambda: controller.events("n1", "alert_failed"), what="expired reported")
    assert controller.events("n1", "alert_failed")[0].detail == "v1; expired"
    until_ms = now() + 60_000
    await send(controller, alert("flood", url, SIREN, repeat=0, expires=until_ms), "commune-1")
    await until(lambda: node.active_alert, what="the alert sounding")
    # Held still, then moved to the expiry: the alert ends exactly there, neither before nor
    # after, however busy the machine is.
    clock.pause()
    assert not node.alerts_played and clock.now_ms() < until_ms
    clock.skip_to(until_ms)
    await until(lambda: node.alerts_played, what="stopped at expiry")
    [played] = node.alerts_played
    assert played.alert_id == "flood" and played.outcome == "finished"
    assert played.ended_ms == until_ms
    clock.resume()
    await until(lambda: controller.events("n1", "alert_finished"), what="finished event")
    finished = controller.events("n1", "alert_finished")
    assert finished[0].detail.startswith("v1; expired after")
    await clear(controller, "village-1", "commune-1")


async def test_forged_replayed_and_duplicate_alerts(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"] = SIREN
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    url, topic = media.url("siren.mp3"), controller.topics.area_alert("village-1")
    stranger = Signer(new_private_key())
    replayed = controller.sign("alert", alert("old", url, SIREN, area="village-1"))  # lower seq
    valid = controller.sign("alert", alert("real", url, SIREN, area="village-1"))
    await controller.publish(topic, valid)
    await until(lambda: node.alerts_played, what="the valid alert")
    await controller.publish(topic, valid)  # the same envelope again: benign, not counted
    await controller.publish(
        topic,
        controller.sign("alert", alert("fake", url, SIREN, area="village-1"), signer=stranger),
    )
    await controller.publish(topic, replayed)
    await controller.publish(topic, controller.sign("alert", {"alert_id": "x", "action": "play"}))
    await until(lambda: node.rejected_total == 3, what="rejections")
    assert dict(node.rejected) == {"unknown_key": 1, "replayed": 1, "invalid_body": 1}
    await barrier(controller)
    assert [p.alert_id for p in node.alerts_played] == ["real"]
    assert dict(node.rejected) == {"unknown_key": 1, "replayed": 1, "invalid_body": 1}


async def test_alert_signed_for_another_area_is_refused(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    """The signed body names its area: an alert captured on one area's topic and replayed on
    another's (by whoever holds the controller's broker login) is refused, as is one that names
    no area; the node reports each refusal."""
    media.files["siren.mp3"] = SIREN
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    url, topic = media.url("siren.mp3"), controller.topics.area_alert("village-1")
    elsewhere = controller.sign("alert", alert("a1", url, SIREN, area="village-2"))
    unbound = controller.sign("alert", alert("a2", url, SIREN))
    await controller.publish(topic, elsewhere)
    await controller.publish(topic, unbound)
    await until(lambda: len(controller.events("n1", "message_rejected")) == 2, what="refusals")
    details = [e.detail for e in controller.events("n1", "message_rejected")]
    assert all(d.startswith("wrong_area on alert") for d in details), details
    assert dict(node.rejected) == {"wrong_area": 2}
    assert node.alerts_received == 0 and node.active_alert is None
    # The same alert signed for this area plays.
    await send(controller, alert("a3", url, SIREN), "village-1", retain=False)
    await until(lambda: node.alerts_played, what="the alert signed for this area")
    assert [p.alert_id for p in node.alerts_played] == ["a3"]


async def test_same_alert_on_two_areas_plays_once(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"] = SIREN
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    body = alert("a1", media.url("siren.mp3"), SIREN, repeat=1)
    await send(controller, body, "village-1")
    await send(controller, body, "commune-1")
    await until(lambda: node.alerts_played, what="played")
    await barrier(controller, "village-1")
    await barrier(controller, "commune-1")
    assert len(node.alerts_played) == 1 and node.alerts_received == 2 + 2  # and the barriers
    assert [k for k, _ in kinds(controller)] == [*CYCLE, "alert_failed", "alert_failed"]
    await clear(controller, "village-1", "commune-1")


async def test_corrupted_media_fails_and_never_plays_again(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    media.files["siren.mp3"] = b"X" * len(SIREN)  # right size, wrong bytes
    media.hold = threading.Event()  # the first KiB, then nothing until released
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    await send(controller, alert("a1", media.url("siren.mp3"), SIREN, repeat=0))
    # Progressive: it sounds from the first chunk while the rest is still held back.
    await until(lambda: node.active_alert, what="sound from the first chunk")
    assert not controller.events("n1", "alert_failed")
    media.hold.set()
    await until(lambda: controller.events("n1", "alert_failed"), what="alert_failed")
    assert controller.events("n1", "alert_started")
    assert "sha256 mismatch" in controller.events("n1", "alert_failed")[0].detail
    assert [(p.alert_id, p.outcome) for p in node.alerts_played] == [("a1", "failed")]
    assert node.active_alert is None and node.playback.held_by is None
    await send(controller, alert("a1", media.url("siren.mp3"), SIREN, version=2))
    await until(lambda: len(controller.events("n1", "alert_failed")) == 2, what="second failure")
    assert (
        controller.events("n1", "alert_failed")[1].detail == "v2; media failed verification before"
    )
    assert not controller.events("n1", "alert_finished") and len(media.auth) == 1
    await clear(controller)


class _HeldMedia:
    """Every alert's audio already verified here: the alert may start as it is accepted."""

    def is_ready(self, sha256: str) -> bool:
        return True


class _SoundCard:
    """Notes what the desk asks the player to sound (the real player: test_real_player.py)."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def alert(self, ref, stream):
        self.log.append(f"start {ref.sha256[:1]}")
        card = self

        class Sound:
            def stop(self) -> None:
                card.log.append(f"stop {ref.sha256[:1]}")

        return Sound()


def _desk(sounds: _SoundCard | None = None):
    from firmware_sim.alerts import AlertDesk
    from firmware_sim.health import NodeHealth
    from firmware_sim.playback import Playback
    from protocol import SystemClock

    clock = SystemClock()
    events: list[str] = []

    def emit(kind, **fields) -> None:
        events.append(f"{kind.value} {fields.get('item_id')}")

    playback = Playback(clock, emit)
    desk = AlertDesk("n1", clock, emit, _HeldMedia(), playback, sounds, NodeHealth())  # type: ignore[arg-type]
    return desk, playback, events, clock


def _body(clock, alert_id: str = "a1", version: int = 1, sha: str = "a", **more):
    from protocol import AlertBody

    media = {"url": "http://x/a.mp3", "sha256": sha * 64, "size": 1}
    fields = dict(alert_id=alert_id, action="play", version=version, title="t", area="x")
    fields |= dict(media=media, duration_ms=200, repeat=1, expires=clock.now_ms() + 60_000)
    return AlertBody.model_validate(fields | more)


async def test_an_alert_stopped_before_its_first_step_never_sounds() -> None:
    # Two messages handled in one turn of the loop: the play, then its cancel or an update.
    sounds = _SoundCard()
    desk, _playback, events, clock = _desk(sounds)
    desk.accept(_body(clock))
    first = desk.runs["a1"]
    desk.accept(_body(clock, action="cancel", media=None))
    await first.task
    assert sounds.log == [] and events[-1] == "alert_stopped a1"

    desk.accept(_body(clock, alert_id="a2"))
    old = desk.runs["a2"]
    desk.accept(_body(clock, alert_id="a2", version=2, sha="b"))
    new = desk.runs["a2"]
    await old.task
    await new.task  # v2 plays to its end
    assert sounds.log == ["start b", "stop b"]  # v1 never sounded, not even overlapping
    desk.close()


async def test_a_failure_as_an_alert_starts_fails_that_alert_and_frees_the_speaker() -> None:
    desk, playback, events, clock = _desk()
    hold = playback.hold

    def broken(owner: str, reason: str) -> None:
        raise RuntimeError("a bug")

    playback.hold = broken  # type: ignore[method-assign]
    desk.accept(_body(clock))  # does not raise into the message handler
    assert events == ["alert_received a1", "alert_failed a1"] and not desk.queue
    playback.hold = hold  # type: ignore[method-assign]
    desk.accept(_body(clock, alert_id="a2"))
    assert events[-1] == "alert_started a2"  # the next alert is not stuck behind it
    await desk.runs["a2"].task
    assert events[-1] == "alert_finished a2"
    desk.close()


async def test_a_node_remembers_a_bounded_number_of_settled_alerts() -> None:
    # A node runs for months: the alerts it has done with are kept in memory as on disk, the
    # most recent KEEP of them, and the newest still refuses its own replay.
    from firmware_sim.alert_memory import KEEP

    desk, _playback, events, clock = _desk()
    for i in range(KEEP + 3):
        desk.accept(_body(clock, alert_id=f"a{i}", action="cancel", media=None))
    assert len(desk.settled) == KEEP
    assert "a0" not in desk.settled and f"a{KEEP + 2}" in desk.settled
    desk.accept(_body(clock, alert_id=f"a{KEEP + 2}"))  # cancelled before: does not sound
    assert not desk.runs and "alert_received" not in " ".join(events)
    desk.close()


async def test_receipt_and_start_go_in_one_message_once_the_controller_reads_arrays(
    start_node: Callable[..., Node], controller: Controller, media: MediaServer
) -> None:
    """An alert whose audio the node holds is received and started at once: to a controller
    whose state says it reads arrays, both events go in one message; to one that does not say
    so (an older controller), one event per message, as before."""
    media.files["siren.mp3"] = SIREN
    node = start_node()
    await asyncio.wait_for(node.connected.wait(), 60)
    topic, state = controller.topics.events("n1"), controller.topics.controller_state

    def payloads() -> list[bytes]:
        return [p for t, p in controller.received if t == topic]

    async def say(**fields: Any) -> None:
        body = ControllerState(status="online", ts=now(), **fields).model_dump_json()
        await controller.publish(state, body.encode(), retain=True)

    await say()
    await until(lambda: node.presence.online, what="the controller heard")
    await send(controller, alert("a1", media.url("siren.mp3"), SIREN))
    await until(lambda: len(kinds(controller)) == 3, what="a1's events")
    await say(event_arrays=True)
    await until(lambda: node.presence.event_arrays, what="arrays read")
    before = len(payloads())
    assert all(p.startswith(b"{") for p in payloads())  # one event each
    await send(controller, alert("a2", media.url("siren.mp3"), SIREN))
    await until(lambda: len(kinds(controller)) == 6, what="a2's events")
    together = json.loads(payloads()[before])
    assert [(e["type"], e["item_id"]) for e in together] == [
        ("alert_received", "a2"),
        ("alert_started", "a2"),
    ]
    assert [k for k, _ in kinds(controller)] == CYCLE + CYCLE
    # The controller changed back (another instance's state, a release from before arrays).
    await say()
    await until(lambda: not node.presence.event_arrays, what="arrays no longer read")
    before = len(payloads())
    await send(controller, alert("a3", media.url("siren.mp3"), SIREN))
    await until(lambda: len(kinds(controller)) == 9, what="a3's events")
    assert [json.loads(p)["type"] for p in payloads()[before:]] == CYCLE
    await clear(controller)
    await controller.publish(state, b"", retain=True)
