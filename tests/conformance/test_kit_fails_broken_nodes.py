"""Each rule of the kit fails, with its reason, against a node of ours broken in that one way.

The broken nodes are our simulated node with one of its parts changed (an instance patched);
the kit runs the check of the rule they break.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conformance_support import InProcessNode

from conformance import KitSettings, run_conformance
from firmware_sim import Node, NodeConfig
from protocol import Envelope, RejectedMessage, SystemClock

Breakage = Callable[[Node], None]

pytestmark = [pytest.mark.mosquitto]


def accepts_unsigned(node: Node) -> None:
    authentic = node.verifier.authentic

    def unless_unsigned(payload: bytes, kind: str) -> Envelope:
        env = Envelope.model_validate_json(payload)
        return env if not env.sig else authentic(payload, kind)

    node.verifier.authentic = unless_unsigned  # type: ignore[method-assign]


def accepts_forged(node: Node) -> None:
    authentic = node.verifier.authentic

    def any_signature(payload: bytes, kind: str) -> Envelope:
        try:
            return authentic(payload, kind)
        except RejectedMessage as exc:
            if exc.reason not in ("bad_signature", "unknown_key"):
                raise
            return Envelope.model_validate_json(payload)

    node.verifier.authentic = any_signature  # type: ignore[method-assign]


def accepts_expired(node: Node) -> None:
    verify = node.verifier.verify

    def as_if_just_issued(topic: str, payload: bytes, kind: str, now_ms: int) -> Envelope:
        return verify(topic, payload, kind, Envelope.model_validate_json(payload).iat)

    node.verifier.verify = as_if_just_issued  # type: ignore[method-assign]


def accepts_replays(node: Node) -> None:
    node.verifier.replay.refusal = lambda *args: None  # type: ignore[method-assign]
    node.verifier.replay.duplicate = lambda *args: False  # type: ignore[method-assign]


def ignores_area(node: Node) -> None:
    on_alert = node.inbound.on_alert

    def any_area(topic: str, payload: bytes, area: str) -> None:
        signed_for = Envelope.model_validate_json(payload).body.get("area")
        on_alert(topic, payload, signed_for)

    node.inbound.on_alert = any_area  # type: ignore[method-assign]


def forgets_finished_alerts(node: Node) -> None:
    node.alerts.memory = None  # as nodes did before alerts.json
    node.alerts.settled.clear()


def stays_silent_after_alert(node: Node) -> None:
    node.playback.release = lambda owner: None  # type: ignore[method-assign]


def sends_reports_twice(node: Node) -> None:
    push = node.outbox.push

    def twice(event: Any) -> None:
        push(event)
        push(event)

    node.outbox.push = twice  # type: ignore[method-assign]


def sends_arrays_to_any_controller(node: Node) -> None:
    on_state = node.presence.on_state

    def as_if_read(topic: str, payload: bytes) -> None:
        on_state(topic, payload)
        node.presence.event_arrays = True

    node.presence.on_state = as_if_read  # type: ignore[method-assign]


def reports_while_controller_away(node: Node) -> None:
    node.presence.up.clear = lambda: None  # type: ignore[method-assign]


def trusts_media_without_hash(node: Node) -> None:
    media = node.media

    async def unchecked(ref: Any) -> int:
        dest = media.dir / ref.sha256 if media.dir is not None else None
        fetched = await media.downloader.fetch(ref.url, max_bytes=ref.size, exact=True, dest=dest)
        return fetched.size

    media._fetch = unchecked  # type: ignore[method-assign]


def downloads_without_token(node: Node) -> None:
    assert node.media.credential is not None
    node.media.credential.value = ""


def installs_firmware_without_hash(node: Node) -> None:
    firmware = node.firmware

    async def trusting(update: Any) -> Any:
        dest = firmware.image_dir / f"{update.sha256}.bin" if firmware.image_dir else None
        await firmware.downloader.fetch(update.url, max_bytes=update.size, exact=True, dest=dest)
        return dest, None  # taken as the signed image, whatever its hash

    node.firmware._download = trusting  # type: ignore[method-assign]


def never_answers_resync(node: Node) -> None:
    commands = node.inbound.commands
    handle = commands.handle

    async def but_resync(client: Any, topic: str, payload: bytes) -> None:
        if Envelope.model_validate_json(payload).body.get("command") != "resync":
            await handle(client, topic, payload)

    commands.handle = but_resync  # type: ignore[method-assign]


def plays_ended_items(node: Node) -> None:
    node.timeline.over = lambda item, now: False  # type: ignore[method-assign]


@dataclass(frozen=True)
class Broken:
    breakage: Breakage
    check: str
    reason: str


BROKEN = {
    "accepts unsigned": Broken(
        accepts_unsigned, "refuses_unsigned", "acted on a command without a signature"
    ),
    "accepts forged": Broken(accepts_forged, "refuses_forged", "changed after it was signed"),
    "accepts expired": Broken(accepts_expired, "refuses_expired", "expired a minute ago"),
    "accepts replays": Broken(accepts_replays, "refuses_replayed", "twice (replayed)"),
    "ignores the area": Broken(ignores_area, "refuses_wrong_area", "signed for another area"),
    "forgets finished alerts": Broken(
        forgets_finished_alerts, "finished_alert_after_restart", "took the finished alert again"
    ),
    "silent after an alert": Broken(
        stays_silent_after_alert,
        "alert_preempts_and_resumes",
        "no playback_started for the item after the alert",
    ),
    "sends reports twice": Broken(sends_reports_twice, "reports_sent_once", "sent more than once"),
    "sends arrays to any controller": Broken(
        sends_arrays_to_any_controller,
        "no_event_arrays_unless_read",
        "several to a message to a controller whose state did not say event_arrays",
    ),
    "reports while the controller is away": Broken(
        reports_while_controller_away,
        "reports_held_while_controller_away",
        "sent while the controller was offline",
    ),
    "plays ended items": Broken(
        plays_ended_items, "ignores_ended_items", "for an item that had ended"
    ),
    "media without hash check": Broken(
        trusts_media_without_hash, "media_hash", "do not match the signed SHA-256 was taken"
    ),
    "media without token": Broken(
        downloads_without_token, "media_with_token", "not downloaded with the node's media token"
    ),
    "firmware without hash check": Broken(
        installs_firmware_without_hash,
        "firmware_checks_hash",
        "SHA-256 does not match the signed one was installed",
    ),
    "does not answer resync": Broken(
        never_answers_resync, "answers_commands", "no final ack of the resync command"
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
async def test_a_broken_node_fails_the_rule_it_breaks(
    name: str, broker_url: str, tmp_path: Path
) -> None:
    broken = BROKEN[name]

    def make(config: NodeConfig) -> Node:
        node = Node(config, SystemClock())
        broken.breakage(node)
        return node

    settings = KitSettings(broker_url=broker_url, work_dir=tmp_path, timeout_s=8)
    report = await asyncio.wait_for(
        run_conformance(settings, InProcessNode(make), [broken.check]), 120
    )
    print(report.text())
    result = report.result(broken.check)
    assert report.failed == [broken.check], report.text()
    assert broken.reason in result.reason, result.reason
    assert result.evidence  # what the kit sent and saw before the verdict
