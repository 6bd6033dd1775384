"""Fixtures for firmware_sim tests: a real Mosquitto of their own (anonymous, on a free port,
one per test process), unique prefixes."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import fwsim_support
import pytest
from fwsim_support import Controller, MediaServer, TcpProxy

from firmware_sim import Node, NodeConfig
from protocol import SystemClock


@pytest.fixture(scope="session", autouse=True)
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An anonymous Mosquitto for the node tests of this process; its port."""
    from tests.conftest import Mosquitto

    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    m = Mosquitto(tmp_path_factory.mktemp("fwsim-broker"), None, None).start()
    fwsim_support.BROKER_PORT = m.port
    try:
        yield m.port
    finally:
        m.stop()
        fwsim_support.BROKER_PORT = 0


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def media() -> Iterator[MediaServer]:
    server = MediaServer()
    yield server
    server.close()


@pytest.fixture
async def controller(prefix: str) -> AsyncIterator[Controller]:
    ctl = Controller(prefix)
    await ctl.start()
    yield ctl
    await ctl.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    p = TcpProxy()
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def start_node(prefix: str, controller: Controller) -> AsyncIterator[Callable[..., Node]]:
    """Start a node (task cancelled at teardown); keyword args override NodeConfig fields."""
    tasks: list[asyncio.Task[None]] = []

    def start(
        node_id: str = "n1", port: int | None = None, clock: Any = None, **overrides: Any
    ) -> Node:
        port = port or fwsim_support.broker_port()
        config = NodeConfig(
            node_id=node_id,
            mqtt_url=f"mqtt://127.0.0.1:{port}",
            topic_prefix=prefix,
            areas=["village-1", "commune-1"],
            controller_keys=[controller.public_key],
            client_id=f"{prefix}-{node_id}",  # parallel runs on one broker must not collide
            heartbeat_s=overrides.pop("heartbeat_s", 30),
            **overrides,
        )
        node = Node(config, clock or SystemClock())
        tasks.append(asyncio.create_task(node.run()))
        return node

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
