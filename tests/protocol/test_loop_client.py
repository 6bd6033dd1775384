"""The MQTT client of the controller and the nodes sends each packet without a trip through the
event loop's self-pipe (aiomqtt's own client makes one per packet), and still delivers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest

from protocol.aio import LoopClient


async def exchange(
    monkeypatch: pytest.MonkeyPatch, client_class: type[aiomqtt.Client], port: int, count: int
) -> tuple[list[str], int]:
    """`count` QoS 1 messages from one client of the class to another: what arrived, and how
    many times the loop was called from "another thread" meanwhile."""
    loop = asyncio.get_running_loop()
    original = loop.call_soon_threadsafe
    calls = 0

    def counting(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(callback, *args, **kwargs)

    async with (
        client_class("127.0.0.1", port, identifier=f"pub-{client_class.__name__}") as pub,
        client_class("127.0.0.1", port, identifier=f"sub-{client_class.__name__}") as sub,
    ):
        await sub.subscribe("loop/#", qos=1)
        monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
        try:
            for i in range(count):
                await pub.publish("loop/x", str(i), qos=1)
            got: list[str] = []
            async for message in sub.messages:
                assert isinstance(message.payload, bytes)
                got.append(message.payload.decode())
                if len(got) == count:
                    break
        finally:
            monkeypatch.undo()
    return got, calls


async def test_packets_go_out_without_waking_the_loop_through_its_self_pipe(
    mosquitto_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = mosquitto_factory().port
    got, calls = await exchange(monkeypatch, LoopClient, port, 50)
    assert got == [str(i) for i in range(50)]  # every message, in order
    assert calls == 0
    # aiomqtt's own client, for comparison: a call for each packet it sends.
    got, calls = await exchange(monkeypatch, aiomqtt.Client, port, 50)
    assert got == [str(i) for i in range(50)]
    assert calls >= 50


async def test_a_watch_the_loop_refuses_is_asked_again_the_way_aiomqtt_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loop cannot watch a descriptor that names nothing (as when it still holds a closed
    # socket's registration): the client asks again through call_soon_threadsafe, whose
    # failure the loop's error handler deals with (tests/protocol/test_loop_errors.py).
    from tests.protocol.test_loop_errors import closed_descriptor

    class Closed:
        def fileno(self) -> int:
            return fd

    fd = closed_descriptor()
    loop = asyncio.get_running_loop()
    asked: list[Any] = []
    monkeypatch.setattr(loop, "call_soon_threadsafe", lambda *args: asked.append(args))
    client = LoopClient("127.0.0.1", 1)
    client._on_socket_register_write(client._client, None, Closed())
    assert [args[:2] for args in asked] == [(loop.add_writer, fd)]
