"""The controller's MQTT connection: retained online state, subscriptions, reconnect with back-off.

On every (re)connect it publishes its online state, re-subscribes and calls `on_connect` so that
the timelines it keeps retained are published again (a restarted broker may have lost them).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import aiomqtt

from controller.mqtt.broker_access import client_id_for
from protocol import ControllerState, Topics
from protocol.aio import LoopClient, raise_if_cancelling
from protocol.clock import Clock

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


@dataclass
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None


class NotConnected(RuntimeError):
    """Raised when publishing while the broker is unreachable; the caller decides to retry."""


PENDING_PUBLISHES = 1000  # in flight at once before aiomqtt warns


class Gateway:
    """Owns one aiomqtt client for the whole controller."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        clock: Clock,
        instance: str,
        on_message: MessageHandler,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        shared_group: str | None = None,
        event_arrays: bool = True,
    ) -> None:
        self.address = address
        self.event_arrays = event_arrays
        self.topics = topics
        self.clock = clock
        self.instance = instance
        self.on_message = on_message
        self.on_connect = on_connect
        self.shared_group = shared_group
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self.published = 0
        self.received = 0
        self.connects = 0
        self._after: asyncio.Task[None] | None = None

    def _state(self, status: Literal["online", "offline"]) -> bytes:
        msg = ControllerState(
            status=status,
            ts=self.clock.now_ms(),
            instance=self.instance,
            event_arrays=self.event_arrays and status == "online",
        )
        return msg.model_dump_json().encode()

    def _client_for(self) -> aiomqtt.Client:
        tls: ssl.SSLContext | None = None
        if self.address.tls:
            tls = ssl.create_default_context(cafile=self.address.ca_file)
        client = LoopClient(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            # Bound to the login: the broker refuses any other login using it (a login that
            # could would cut the controller off by connecting with it).
            identifier=client_id_for(self.address.username, self.instance),
            keepalive=30,
            clean_session=True,
            tls_context=tls,
            max_queued_outgoing_messages=100_000,
            # As many QoS 1 publishes in flight as a window of timelines: none of a window
            # waits behind the others for its acknowledgement (and its timeout).
            max_inflight_messages=PENDING_PUBLISHES,
            will=aiomqtt.Will(
                self.topics.controller_state, self._state("offline"), qos=1, retain=True
            ),
        )
        # Timelines go out in windows of hundreds (a live broadcast to a province): that many
        # publishes awaiting their acknowledgement is the plan, not a warning.
        client.pending_calls_threshold = PENDING_PUBLISHES
        return client

    async def run(self) -> None:
        """Connect, serve, reconnect; returns only when cancelled."""
        delay = 0.5
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    self.connects += 1
                    delay = 0.5
                    for topic in self.topics.report_filters():
                        if self.shared_group:
                            topic = f"$share/{self.shared_group}/{topic}"
                        await client.subscribe(topic, qos=1)
                    # Online only once subscribed: nodes hold their reports until they see it,
                    # so none is published while no controller listens (they would be lost).
                    await client.publish(
                        self.topics.controller_state, self._state("online"), qos=1, retain=True
                    )
                    if self.shared_group:
                        # Another instance's last will must not tell nodes that no controller
                        # listens while this one does: answer it with our own state.
                        await client.subscribe(self.topics.controller_state, qos=1)
                    raise_if_cancelling()
                    self.connected.set()
                    log.info("connected to broker %s:%d", self.address.host, self.address.port)
                    if self.on_connect is not None:
                        self._after = asyncio.create_task(self._after_connect())
                    async for message in client.messages:
                        raise_if_cancelling()
                        self.received += 1
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = str(payload).encode()
                        if message.topic.value == self.topics.controller_state:
                            await self._answer_state(client, bytes(payload))
                            continue
                        try:
                            self.on_message(message.topic.value, bytes(payload))
                        except Exception:  # one bad message must never stop the gateway
                            log.exception("handling %s failed", message.topic.value)
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost (%s); retrying in %.1f s", exc, delay)
            finally:
                self.connected.clear()
                self._client = None
            await asyncio.sleep(delay * (0.5 + random.random()))
            # One client, whose absence stops timelines and alerts: come back fast (nodes,
            # thousands of clients, back off up to 30 s so a restarted broker is not stormed).
            delay = min(delay * 2, 5.0)

    async def _answer_state(self, client: aiomqtt.Client, payload: bytes) -> None:
        try:
            state = ControllerState.model_validate_json(payload)
        except ValueError:
            return
        if state.status != "online" and state.instance != self.instance:
            await client.publish(
                self.topics.controller_state, self._state("online"), qos=1, retain=True
            )

    async def _after_connect(self) -> None:
        assert self.on_connect is not None
        try:
            await self.on_connect()
        except Exception:
            log.exception("after-connect work failed")

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected(topic)
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as exc:
            raise NotConnected(str(exc)) from exc
        self.published += 1

    async def close(self) -> None:
        """Say goodbye cleanly: the retained state becomes `offline` rather than the will."""
        client = self._client
        if client is not None and self.connected.is_set():
            try:
                await asyncio.wait_for(
                    client.publish(
                        self.topics.controller_state, self._state("offline"), qos=1, retain=True
                    ),
                    timeout=2,
                )
            except (aiomqtt.MqttError, TimeoutError):
                pass
