"""Test doubles for node tests: a controller, a media server and a cuttable broker proxy."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiomqtt

from protocol import (
    CommandAck,
    NodeEvent,
    NodeState,
    Signer,
    SystemClock,
    Telemetry,
    Topics,
    new_private_key,
    parse_node_reports,
    public_key_b64,
)

# The port of the Mosquitto these tests start (tests/firmware_sim/conftest.py sets it for the
# session); read it as fwsim_support.BROKER_PORT at the time of use.
BROKER_PORT = 0


def broker_port() -> int:
    """The port of this session's anonymous Mosquitto."""
    if not BROKER_PORT:
        raise RuntimeError("no broker: use the `broker` fixture of tests/firmware_sim")
    return BROKER_PORT


async def until(cond: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Wait for a condition instead of sleeping a fixed time (the timeout only ends a failing
    test: a busy machine may take a while)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or cond}")
        await asyncio.sleep(0.02)


class MediaServer:
    """Serves `files[name]` over real HTTP; tests swap bytes to break or repair media, set
    `stall_s` to hold back all but the first KiB for that long, or set `hold` (an Event) to hold
    it back until the test sets the event. `requests` lists the names asked for, in order;
    `most_at_once` is the most requests it served at the same time."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.auth: list[str | None] = []
        self.requests: list[str] = []
        self.stall_s = 0.0
        self.hold: threading.Event | None = None
        self.at_once = self.most_at_once = 0
        lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    server.at_once += 1
                    server.most_at_once = max(server.most_at_once, server.at_once)
                try:
                    self._serve()
                finally:
                    with lock:
                        server.at_once -= 1

            def _serve(self) -> None:
                server.auth.append(self.headers.get("Authorization"))
                server.requests.append(self.path.lstrip("/"))
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                hold = server.hold
                if server.stall_s or hold is not None:  # the first part now, the rest later
                    self.wfile.write(data[:1024])
                    self.wfile.flush()
                    if hold is not None:
                        hold.wait(60)
                    else:
                        time.sleep(server.stall_s)
                    data = data[1024:]
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TcpProxy:
    """Forwards to the broker; `cut()` kills connections abruptly, as a dropped 4G link would."""

    def __init__(self) -> None:
        self.up = True
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", broker_port())
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (connection refused, like a dead link)."""
        self.up = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def restore(self) -> None:
        self.up = True
        await self.start()

    async def close(self) -> None:
        self.cut()


class Controller:
    """Plays the controller: signs and publishes, and records everything nodes publish."""

    def __init__(self, prefix: str) -> None:
        self.topics = Topics(prefix)
        self.signer = Signer(new_private_key())
        self.public_key = public_key_b64(self.signer.public_key)
        self.received: list[tuple[str, bytes]] = []
        self.client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.client = aiomqtt.Client(
            "127.0.0.1", broker_port(), identifier=f"ctl-{uuid.uuid4().hex}"
        )
        await self.client.__aenter__()
        for topic in self.topics.report_filters():
            await self.client.subscribe(topic, qos=1)
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self.client is not None
        async for message in self.client.messages:
            self.received.append((message.topic.value, bytes(message.payload)))  # type: ignore[arg-type]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.__aexit__(None, None, None)

    def _of(self, topic: str) -> list[bytes]:
        return [payload for t, payload in self.received if t == topic]

    def events(self, node_id: str, type: str | None = None) -> list[NodeEvent]:
        topic = self.topics.events(node_id)
        events = [
            e for p in self._of(topic) for e in parse_node_reports(self.topics, topic, p).reports
        ]
        return [e for e in events if isinstance(e, NodeEvent) and (type is None or e.type == type)]

    def states(self, node_id: str) -> list[NodeState]:
        return [NodeState.model_validate_json(p) for p in self._of(self.topics.node_state(node_id))]

    def telemetry(self, node_id: str) -> list[Telemetry]:
        return [Telemetry.model_validate_json(p) for p in self._of(self.topics.telemetry(node_id))]

    def acks(self, node_id: str) -> list[CommandAck]:
        return [CommandAck.model_validate_json(p) for p in self._of(self.topics.cmd_ack(node_id))]

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self.client is not None
        await self.client.publish(topic, payload, qos=1, retain=retain)

    def sign(
        self,
        kind: str,
        body: dict[str, Any],
        ttl_ms: int = 3_600_000,
        now_ms: int | None = None,
        signer: Signer | None = None,
    ) -> bytes:
        now = SystemClock().now_ms() if now_ms is None else now_ms
        return (signer or self.signer).sign(kind, body, now_ms=now, ttl_ms=ttl_ms)

    async def push_timeline(
        self, node_id: str, version: int, items: list[dict[str, Any]], retain: bool = True
    ) -> bytes:
        payload = self.sign("timeline", timeline_body(node_id, version, items))
        await self.publish(self.topics.timeline(node_id), payload, retain=retain)
        return payload

    async def command(self, node_id: str, command: str, args: dict[str, Any] | None = None) -> str:
        env = self.signer.envelope(
            "cmd",
            {"node_id": node_id, "command": command, "args": args or {}},
            now_ms=SystemClock().now_ms(),
            ttl_ms=60_000,
        )
        await self.publish(self.topics.cmd(node_id), env.model_dump_json().encode())
        return env.id


def timeline_body(node_id: str, version: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    now = SystemClock().now_ms()
    return {
        "node_id": node_id,
        "version": version,
        "generated_at": now,
        "horizon_end": now + 3_600_000,
        "items": items,
    }


def item(
    item_id: str,
    start: int,
    url: str,
    data: bytes,
    duration_ms: int = 300,
    priority: str = "normal",
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "broadcast_id": f"b-{item_id}",
        "start": start,
        "duration_ms": duration_ms,
        "priority": priority,
        "media": {"url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
    }
