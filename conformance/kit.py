"""The controller's side of a conformance run: keys, the node's provisioning file, a media
server, and one broker session that publishes signed messages and records the node's reports."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import aiomqtt

from conformance.media_server import MediaServer
from conformance.nodes import NodeUnderTest
from conformance.report import CheckFailed
from protocol import (
    CommandAck,
    ControllerState,
    Envelope,
    NodeEvent,
    NodeState,
    ProtocolError,
    Signer,
    Topics,
    new_private_key,
    parse_node_reports,
    public_key_b64,
)
from protocol.topics import Report

log = logging.getLogger(__name__)

T = TypeVar("T")

VOLUME_PROBE = 60  # the level the kit's probe commands set: the same each time, harmless


@dataclass(frozen=True)
class KitSettings:
    broker_url: str = "mqtt://127.0.0.1:1883"
    # What the node is told to connect to, when it reaches the broker by another address.
    node_broker_url: str | None = None
    node_id: str = "conf-node"
    work_dir: Path = Path("conformance-run")
    # The longest a check waits for one piece of evidence.
    timeout_s: float = 20.0
    media_host: str = "127.0.0.1"


@dataclass(frozen=True)
class Heard:
    """One report of the node's, as the kit received it."""

    at: float  # time.monotonic() on arrival
    kind: str  # state, telemetry, events, cmd/ack
    report: Report
    together: bool = False  # came with other events, in an array


def _broker(url: str) -> tuple[str, int, str | None, str | None]:
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise ValueError(f"broker {url!r}: give mqtt://host:port")
    user = unquote(parsed.username) if parsed.username else None
    password = unquote(parsed.password) if parsed.password else None
    return parsed.hostname, parsed.port or 1883, user, password


class Kit:
    """Plays the controller for one node. Use `async with Kit(...)`: the node is started (and
    online) inside, stopped and the broker's retained messages cleared on the way out."""

    def __init__(self, settings: KitSettings, node: NodeUnderTest) -> None:
        self.settings = settings
        self.node = node
        self.node_id = settings.node_id
        self.prefix = "conf" + uuid.uuid4().hex[:8]
        self.topics = Topics(self.prefix)
        self.areas = ["conf-village", "conf-commune"]
        self.signer = Signer(new_private_key())
        self.token = f"{self.node_id}.{secrets.token_urlsafe(24)}"
        self.work_dir = settings.work_dir
        self.provision_path = self.work_dir / "provision.json"
        self.cache_dir = self.work_dir / "node-cache"
        self.media = MediaServer(self.token, settings.media_host)
        self.heard: list[Heard] = []
        self.invalid: list[str] = []  # reports that broke the contract (ProtocolError)
        self.timeline_version = 0
        self.timeline_items: list[dict[str, Any]] = []
        self.retained: set[str] = set()
        self.started_at = 0.0  # when the kit last started the node (time.monotonic())
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._collector: asyncio.Task[None] | None = None

    # Set-up -------------------------------------------------------------------------------

    def provisioning(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "mqtt_url": self.settings.node_broker_url or self.settings.broker_url,
            "topic_prefix": self.prefix,
            "areas": self.areas,
            "controller_keys": [public_key_b64(self.signer.public_key)],
            "key_serial": 0,
            "media_token": self.token,
            # The controller's own address: a node sends its token there only.
            "media_token_url": self.media.url("token"),
            "heartbeat_s": 5,
        }

    async def __aenter__(self) -> Kit:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # A fresh node for every run: what an earlier run left (keys, timelines) is not graded.
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.cache_dir.mkdir(parents=True)
        self.provision_path.write_text(json.dumps(self.provisioning(), indent=2))
        self.provision_path.chmod(0o600)
        host, port, user, password = _broker(self.settings.broker_url)
        offline = ControllerState(status="offline", ts=now_ms(), instance="conformance")
        self._client = aiomqtt.Client(
            host,
            port,
            username=user,
            password=password,
            identifier=f"{self.prefix}-kit",
            will=aiomqtt.Will(
                self.topics.controller_state, offline.model_dump_json(), qos=1, retain=True
            ),
        )
        await self._client.__aenter__()
        try:
            for kind in ("state", "telemetry", "events", "cmd/ack"):
                await self._client.subscribe(self.topics.node(self.node_id, kind), qos=1)
            self._collector = asyncio.create_task(self._collect(self._client))
            await self.controller_state(online=True)
            self.started_at = time.monotonic()
            await self.node.start(self.provision_path, self.cache_dir)
            await self.wait_online(self.started_at, "the node to come online after its start")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.node.stop()
        if self._client is not None:
            with contextlib.suppress(Exception):
                for topic in sorted(self.retained):  # leave the broker as it was
                    await self._client.publish(topic, b"", qos=1, retain=True)
                await self._client.publish(
                    self.topics.node_state(self.node_id), b"", qos=1, retain=True
                )
            if self._collector is not None:
                self._collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._collector
            with contextlib.suppress(Exception):
                await self._client.__aexit__(None, None, None)
            self._client = None
        self.media.close()

    async def _collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not payload:
                continue  # a cleared retained state
            try:
                got = parse_node_reports(self.topics, message.topic.value, payload)
            except ProtocolError as exc:
                self.invalid.append(f"{message.topic.value}: {exc}")
                continue
            self.invalid += [f"{message.topic.value}: {exc}" for exc in got.refused]
            at, together = time.monotonic(), payload.lstrip()[:1] == b"["
            self.heard += [Heard(at, got.kind, report, together) for report in got.reports]
            self._changed.set()

    # Waiting for evidence -----------------------------------------------------------------

    async def wait_for(
        self, find: Callable[[], T | None], what: str, timeout: float | None = None
    ) -> T:
        """What `find` returns once it is not None, re-checked on every report; a timeout is a
        failed check that says what did not come."""
        timeout = self.settings.timeout_s if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            found = find()
            if found is not None:
                return found
            left = deadline - loop.time()
            if left <= 0:
                raise CheckFailed(f"no {what} within {timeout:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def events(self, type: str | None = None, since: float = 0.0) -> list[NodeEvent]:
        return [
            h.report
            for h in self.heard
            if isinstance(h.report, NodeEvent)
            and h.at >= since
            and (type is None or h.report.type == type)
        ]

    def event(self, type: str, since: float = 0.0, **fields: object) -> NodeEvent | None:
        return self.matching(type, fields, since)

    def matching(
        self, type: str, fields: Mapping[str, object], since: float = 0.0
    ) -> NodeEvent | None:
        """The first event of `type` heard since `since` whose fields have these values."""
        for e in self.events(type, since):
            if all(getattr(e, k) == v for k, v in fields.items()):
                return e
        return None

    def acks(self, cmd_id: str) -> list[CommandAck]:
        return [
            h.report
            for h in self.heard
            if isinstance(h.report, CommandAck) and h.report.cmd_id == cmd_id
        ]

    def final_ack(self, cmd_id: str) -> CommandAck | None:
        return next((a for a in self.acks(cmd_id) if a.final), None)

    def states(self, since: float = 0.0) -> list[NodeState]:
        return [h.report for h in self.heard if isinstance(h.report, NodeState) and h.at >= since]

    async def wait_online(self, since: float, what: str) -> NodeState:
        return await self.wait_for(
            lambda: next((s for s in self.states(since) if s.status == "online"), None), what
        )

    # Speaking as the controller -----------------------------------------------------------

    def envelope(
        self,
        kind: str,
        body: dict[str, Any],
        ttl_ms: int = 600_000,
        issued_ms: int | None = None,
        signer: Signer | None = None,
    ) -> Envelope:
        now = now_ms() if issued_ms is None else issued_ms
        return (signer or self.signer).envelope(kind, body, now_ms=now, ttl_ms=ttl_ms)

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self._client is not None, "the kit is not connected"
        await self._client.publish(topic, payload, qos=1, retain=retain)
        if retain:
            self.retained.add(topic)

    async def controller_state(self, online: bool, event_arrays: bool = True) -> None:
        """`event_arrays`: the kit reads several events in one message, as the controller does
        (parse_node_reports); a check says it does not, as an older controller would."""
        state = ControllerState(
            status="online" if online else "offline",
            ts=now_ms(),
            instance="conformance",
            event_arrays=event_arrays,
        )
        await self.publish(
            self.topics.controller_state, state.model_dump_json().encode(), retain=True
        )

    def command_envelope(self, command: str, args: dict[str, Any] | None = None) -> Envelope:
        body = {"node_id": self.node_id, "command": command, "args": args or {}}
        return self.envelope("cmd", body, ttl_ms=60_000)

    async def send(self, env: Envelope, topic: str | None = None) -> None:
        await self.publish(topic or self.topics.cmd(self.node_id), _bytes(env))

    async def command(self, command: str, args: dict[str, Any] | None = None) -> CommandAck:
        """Send a signed command; its final ack."""
        env = self.command_envelope(command, args)
        await self.send(env)
        return await self.wait_for(
            lambda: self.final_ack(env.id), f"final ack of the {command} command"
        )

    async def sync(self) -> None:
        """A barrier on the node's inbound messages: a command sent now is answered only after
        everything published to the node before it has been handled."""
        await self.command("volume", {"level": VOLUME_PROBE})

    async def sync_after_restart(self) -> None:
        """Like `sync`, for a node that has just come online and may not have subscribed yet:
        a command it missed is sent again (a fresh one) until one is answered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout_s
        while True:
            env = self.command_envelope("volume", {"level": VOLUME_PROBE})
            await self.send(env)
            try:
                await self.wait_for(partial(self.final_ack, env.id), "ack", timeout=1.0)
                return
            except CheckFailed:
                if loop.time() > deadline:
                    raise CheckFailed(
                        f"no command answered within {self.settings.timeout_s:g} s of the "
                        "node coming back online"
                    ) from None

    async def push_timeline(self, items: list[dict[str, Any]]) -> int:
        self.timeline_version += 1
        self.timeline_items = items
        now = now_ms()
        body = {
            "node_id": self.node_id,
            "version": self.timeline_version,
            "generated_at": now,
            "horizon_end": now + 3_600_000,
            "items": items,
        }
        env = self.envelope("timeline", body, ttl_ms=3_600_000)
        await self.publish(self.topics.timeline(self.node_id), _bytes(env), retain=True)
        return self.timeline_version

    async def events_barrier(self) -> float:
        """A barrier on the node's reports: a new timeline version (same items) is applied and
        reported after everything the node did before it. Returns its arrival time."""
        version = await self.push_timeline(self.timeline_items)
        await self.wait_for(
            lambda: self.event("timeline_applied", timeline_version=version),
            f"timeline_applied for the barrier timeline v{version}",
        )
        return time.monotonic()

    async def restart_node(self) -> NodeState:
        """Stop the node and start it again; its first online state after the start."""
        await self.node.stop()
        self.started_at = time.monotonic()
        await self.node.start(self.provision_path, self.cache_dir)
        return await self.wait_online(self.started_at, "online state from the restarted node")

    # Content ------------------------------------------------------------------------------

    def serve(self, name: str, data: bytes) -> dict[str, Any]:
        """Serve `data` as `name`; its media reference."""
        self.media.files[name] = data
        return media_ref(self.media.url(name), data)

    def item(
        self, item_id: str, start_ms: int, media: dict[str, Any], duration_ms: int
    ) -> dict[str, Any]:
        return {
            "item_id": item_id,
            "broadcast_id": f"conf-{item_id}",
            "start": start_ms,
            "duration_ms": duration_ms,
            "priority": "normal",
            "title": f"conformance {item_id}",
            "media": media,
        }

    def alert_body(
        self,
        alert_id: str,
        area: str | None,
        audio: bytes,
        duration_ms: int,
        **extra: Any,
    ) -> dict[str, Any]:
        now = now_ms()
        self.media.files[f"{alert_id}.mp3"] = audio
        body: dict[str, Any] = {
            "alert_id": alert_id,
            "version": 1,
            "action": "play",
            "area": area,
            "title": f"conformance {alert_id}",
            "media": media_ref(self.media.url(f"{alert_id}.mp3"), audio),
            "media_data": base64.b64encode(audio).decode(),
            "duration_ms": duration_ms,
            "repeat": 1,
            "pause_ms": 0,
            "test": True,
            "expires": now + 300_000,
            # As the controller sets it: the last repetition over, plus 10 s for clocks.
            "play_by": now + duration_ms + 10_000,
        }
        body.update(extra)
        return body


def media_ref(url: str, data: bytes) -> dict[str, Any]:
    return {"url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _bytes(env: Envelope) -> bytes:
    return env.model_dump_json().encode()


def now_ms() -> int:
    return int(time.time() * 1000)
