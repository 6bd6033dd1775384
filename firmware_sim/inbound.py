"""Everything that arrives on the node's subscriptions: verified, checked, dispatched, counted."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable

import aiomqtt
from pydantic import ValidationError

from firmware_sim.alerts import AlertDesk
from firmware_sim.clock_watch import ClockWatch
from firmware_sim.commands import Commands, Reboot
from firmware_sim.media import MediaCache, MediaError
from firmware_sim.presence import ControllerPresence
from firmware_sim.timeline import Timeline
from firmware_sim.trust import Gate, KeyAnnouncements, Reject, summarise
from protocol import AlertBody, Clock, TimelineBody, Topics

log = logging.getLogger(__name__)

# Larger than any legitimate timeline (2,000 items); bigger payloads are not even parsed.
MAX_INBOUND_BYTES = 2 * 1024 * 1024


class Inbound:
    """Routes each message on the node's subscriptions to the part that acts on it."""

    def __init__(
        self,
        node_id: str,
        topics: Topics,
        areas: list[str],
        clock: Clock,
        clock_watch: ClockWatch,
        gate: Gate,
        reject: Reject,
        timeline: Timeline,
        adopt: Callable[[TimelineBody, bytes], None],
        keep: Callable[[bytes], None],
        media: MediaCache,
        alerts: AlertDesk,
        presence: ControllerPresence,
        commands: Commands,
        keys: KeyAnnouncements,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.clock_watch = clock_watch
        self.gate = gate
        self.reject = reject
        self.timeline = timeline
        self.adopt = adopt  # apply a verified timeline of this node and keep it (its payload)
        self.keep = keep  # keep a verified timeline's payload (on the card of a real node)
        self.media = media
        self.alerts = alerts
        self.presence = presence
        self.commands = commands
        self.keys = keys
        self.alerts_received = 0
        self.timeline_topic = topics.timeline(node_id)
        self.cmd_topic = topics.cmd(node_id)
        self.controller_state_topic = topics.controller_state
        self.keys_topic = topics.controller_keys
        self.alert_topics = {topics.area_alert(area): area for area in areas}

    async def subscribe(self, client: aiomqtt.Client) -> None:
        """Everything a node listens to: its timeline and commands, the controller, its areas."""
        # The key announcement first: the retained messages after it may be signed by a new key.
        topics = [self.keys_topic, self.timeline_topic, self.cmd_topic]
        topics += [self.controller_state_topic, *self.alert_topics]
        await client.subscribe([(topic, 1) for topic in topics])

    async def handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Process one message. Only connection loss and reboot escape; bad input never does."""
        topic = message.topic.value
        payload = message.payload
        if payload is None:
            payload = b""
        elif not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode()
        # Timed on arrival: a live message's issue time against this clock (retained ones are
        # old).
        self.clock_watch.arrived(self.clock.now_ms(), live=not message.retain)
        try:
            await self._dispatch(client, topic, bytes(payload))
        except (aiomqtt.MqttError, Reboot):
            raise
        except Exception as exc:
            log.exception("%s: failed to handle message on %s", self.node_id, topic)
            self.reject("internal_error", type(exc).__name__, topic)

    async def _dispatch(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        if not payload:
            # An empty retained message is how a controller clears a topic: nothing to act on,
            # and not an attack, so it is not counted.
            log.info("%s: cleared retained message on %s", self.node_id, topic)
            return
        if len(payload) > MAX_INBOUND_BYTES:
            self.reject("too_large", f"{len(payload)} bytes", topic)
            return
        if topic == self.timeline_topic:
            self.on_timeline(topic, payload)
        elif topic == self.cmd_topic:
            await self.commands.handle(client, topic, payload)
        elif topic == self.controller_state_topic:
            self.presence.on_state(topic, payload)
        elif topic == self.keys_topic:
            await self.keys.on_keys(client, topic, payload)
        elif (area := self.alert_topics.get(topic)) is not None:
            self.on_alert(topic, payload, area)
        else:
            self.reject("unknown_topic", topic[:200], topic)

    def on_timeline(self, topic: str, payload: bytes) -> None:
        env = self.gate.verify(topic, payload, "timeline")
        if env is None:
            return
        try:
            body = TimelineBody.model_validate(env.body)
        except ValidationError as exc:
            self.reject("invalid_body", summarise(exc), topic)
            return
        if body.node_id != self.node_id:
            self.reject("wrong_node", f"timeline for {body.node_id}", topic)
            return
        held = self.timeline.body
        if held is not None and body.version == held.version and body.items == held.items:
            # The controller signed what this node has again (after a key switch or a
            # reconnect): nothing to apply, but the copy kept for a restart is replaced, since
            # the old one's key may be retired (or its expiry pass) before the node restarts.
            log.debug("%s: timeline v%d re-signed, unchanged", self.node_id, body.version)
            self.keep(payload)
            return
        if body.version <= self.timeline.version:
            self.reject("stale", f"version {body.version} <= {self.timeline.version}", topic)
            return
        log.info(
            "%s: applying timeline v%d (%d items)", self.node_id, body.version, len(body.items)
        )
        self.adopt(body, payload)

    def on_alert(self, topic: str, payload: bytes, area: str) -> None:
        env = self.gate.verify(topic, payload, "alert")
        if env is None:
            return
        try:
            body = AlertBody.model_validate(env.body)
        except ValidationError as exc:
            self.reject("invalid_body", summarise(exc), topic)
            return
        if body.area != area:
            # Signed for another area (or for none): a captured alert replayed onto this topic.
            self.reject("wrong_area", f"alert {body.alert_id} is for area {body.area!r}", topic)
            return
        if body.action == "play" and body.media is None:
            self.reject("invalid_body", f"alert {body.alert_id} to play has no media", topic)
            return
        self.alerts_received += 1
        log.info("%s: alert %s v%d %s", self.node_id, body.alert_id, body.version, body.action)
        if body.media is not None and body.media_data is not None:
            # The audio came with the alert: held (verified against the signed sha256) before
            # the alert is taken, so it sounds at once. A copy that does not match is downloaded.
            try:
                self.media.put(body.media, base64.b64decode(body.media_data, validate=True))
            except (ValueError, MediaError) as exc:
                log.warning(
                    "%s: audio inside alert %s unusable: %s", self.node_id, body.alert_id, exc
                )
        self.alerts.accept(body)
