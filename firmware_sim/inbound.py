"""Everything that arrives on the node's subscriptions: verified, checked, dispatched, counted."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

import aiomqtt
from pydantic import ValidationError

from firmware_sim import commands, timeline_store
from firmware_sim.media import MediaError
from firmware_sim.trust import on_keys, summarise, verify
from protocol import AlertBody, ControllerState, TimelineBody

if TYPE_CHECKING:
    from firmware_sim.node import Node

log = logging.getLogger(__name__)

# Larger than any legitimate timeline (2,000 items); bigger payloads are not even parsed.
MAX_INBOUND_BYTES = 2 * 1024 * 1024


async def subscribe(node: Node, client: aiomqtt.Client) -> None:
    """Everything a node listens to: its timeline and commands, the controller, its areas."""
    t = node.topics
    # The key announcement first: the retained messages after it may be signed by a new key.
    topics = [t.controller_keys, t.timeline(node.node_id), t.cmd(node.node_id), t.controller_state]
    topics += [t.area_alert(area) for area in node.config.areas]
    await client.subscribe([(topic, 1) for topic in topics])


async def handle(node: Node, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Process one message. Only connection loss and reboot escape; bad input never does."""
    topic = message.topic.value
    payload = message.payload
    if payload is None:
        payload = b""
    elif not isinstance(payload, bytes | bytearray):
        payload = str(payload).encode()
    # Timed on arrival: a live message's issue time against this clock (retained ones are old).
    node.clock_watch.arrived(node.clock.now_ms(), live=not message.retain)
    try:
        await _dispatch(node, client, topic, bytes(payload))
    except (aiomqtt.MqttError, commands.Reboot):
        raise
    except Exception as exc:
        log.exception("%s: failed to handle message on %s", node.node_id, topic)
        node.reject("internal_error", type(exc).__name__, topic)


async def _dispatch(node: Node, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
    t = node.topics
    if not payload:
        # An empty retained message is how a controller clears a topic: nothing to act on,
        # and not an attack, so it is not counted.
        log.info("%s: cleared retained message on %s", node.node_id, topic)
        return
    if len(payload) > MAX_INBOUND_BYTES:
        node.reject("too_large", f"{len(payload)} bytes", topic)
        return
    if topic == t.timeline(node.node_id):
        on_timeline(node, topic, payload)
    elif topic == t.cmd(node.node_id):
        await commands.handle(node, client, topic, payload)
    elif topic == t.controller_state:
        on_controller_state(node, topic, payload)
    elif topic == t.controller_keys:
        await on_keys(node, client, topic, payload)
    elif (area := _alert_area(node, topic)) is not None:
        on_alert(node, topic, payload, area)
    else:
        node.reject("unknown_topic", topic[:200], topic)


def on_timeline(node: Node, topic: str, payload: bytes) -> None:
    env = verify(node, topic, payload, "timeline")
    if env is None:
        return
    try:
        body = TimelineBody.model_validate(env.body)
    except ValidationError as exc:
        node.reject("invalid_body", summarise(exc), topic)
        return
    if body.node_id != node.node_id:
        node.reject("wrong_node", f"timeline for {body.node_id}", topic)
        return
    held = node.timeline.body
    if held is not None and body.version == held.version and body.items == held.items:
        # The controller signed what this node has again (after a key switch or a reconnect).
        log.debug("%s: timeline v%d re-signed, unchanged", node.node_id, body.version)
        return
    if body.version <= node.timeline.version:
        node.reject("stale", f"version {body.version} <= {node.timeline.version}", topic)
        return
    log.info("%s: applying timeline v%d (%d items)", node.node_id, body.version, len(body.items))
    node.timeline.apply(body)
    node.media.prefetch(body.prefetch)
    timeline_store.save(node.cache_dir, payload)


def _alert_area(node: Node, topic: str) -> str | None:
    """The area whose alert topic this is, if it is one of the node's."""
    t = node.topics
    return next((a for a in node.config.areas if topic == t.area_alert(a)), None)


def on_alert(node: Node, topic: str, payload: bytes, area: str) -> None:
    env = verify(node, topic, payload, "alert")
    if env is None:
        return
    try:
        body = AlertBody.model_validate(env.body)
    except ValidationError as exc:
        node.reject("invalid_body", summarise(exc), topic)
        return
    if body.area != area:
        # Signed for another area (or for none): a captured alert replayed onto this topic.
        node.reject("wrong_area", f"alert {body.alert_id} is for area {body.area!r}", topic)
        return
    if body.action == "play" and body.media is None:
        node.reject("invalid_body", f"alert {body.alert_id} to play has no media", topic)
        return
    node.alerts_received += 1
    log.info("%s: alert %s v%d %s", node.node_id, body.alert_id, body.version, body.action)
    if body.media is not None and body.media_data is not None:
        # The audio came with the alert: held (verified against the signed sha256) before the
        # alert is taken, so it sounds at once. A copy that does not match is downloaded.
        try:
            node.media.put(body.media, base64.b64decode(body.media_data, validate=True))
        except (ValueError, MediaError) as exc:
            log.warning("%s: audio inside alert %s unusable: %s", node.node_id, body.alert_id, exc)
    node.alerts.accept(body)


def on_controller_state(node: Node, topic: str, payload: bytes) -> None:
    try:
        state = ControllerState.model_validate_json(payload)
    except (ValidationError, ValueError) as exc:
        node.reject("malformed", type(exc).__name__, topic)
        return
    online = state.status == "online"
    if online != node.controller_online:
        log.info("%s: controller %s (%s)", node.node_id, state.status, state.instance or "?")
    node.controller_online = online
    node.controller_heard = True
    node.clock_watch.issued(state.ts)
    if online:
        node.controller_up.set()
    else:
        node.controller_up.clear()
