"""The MQTT client of the controller and the nodes sends each packet without a trip through the
event loop's self-pipe (aiomqtt's own client makes one per packet), and still delivers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest

from protocol.aio import LoopClient, _housekeeping
from tests.conftest import wait_for


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
    client._watch(client._client, Closed())
    assert [args[:2] for args in asked] == [(loop.add_writer, fd)]


async def test_packets_queued_together_are_written_at_once_and_only_the_rest_is_watched(
    mosquitto_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packets queued on the loop go out by one write for all of them, without watching the
    socket (two system calls); a message larger than the socket takes at once is watched for
    the rest, arrives whole, and the watch is gone after it."""
    port = mosquitto_factory().port
    loop = asyncio.get_running_loop()
    add_writer = loop.add_writer
    watched: list[int] = []

    def counting(fd: Any, *args: Any) -> Any:
        watched.append(fd)
        return add_writer(fd, *args)

    async with (
        LoopClient("127.0.0.1", port, identifier="pub-turn") as pub,
        LoopClient("127.0.0.1", port, identifier="sub-turn") as sub,
    ):
        await sub.subscribe("turn/#", qos=1)
        paho = pub._client
        writes = 0
        loop_write = paho.loop_write

        def count_writes() -> Any:
            nonlocal writes
            writes += 1
            return loop_write()

        monkeypatch.setattr(loop, "add_writer", counting)
        monkeypatch.setattr(paho, "loop_write", count_writes)
        for i in range(50):  # queued in one go, as a fleet's acknowledgements are
            paho.publish("turn/x", str(i), qos=0)
        got = []
        async for message in sub.messages:
            got.append(message.payload)
            if len(got) == 50:
                break
        assert got == [str(i).encode() for i in range(50)]
        assert (writes, watched) == (1, [])
        # A socket that takes little at a time: the rest of a large message is watched for.
        sock = paho.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        big = bytes(range(256)) * (16 * 1024)  # 4 MiB
        async with asyncio.timeout(60):  # without the watch, the rest would never go
            await pub.publish("turn/big", big, qos=1)
            async for message in sub.messages:
                assert message.payload == big
                break
        assert sock.fileno() in watched
        assert not paho.want_write() and not loop.remove_writer(sock.fileno())  # unwatched


async def test_messages_come_in_order_and_then_the_end_of_the_connection(
    mosquitto_factory: Callable[..., Any],
) -> None:
    """The client's own message iterator (no task and no `asyncio.wait` per message): every
    message in order, those queued before the broker went away first, then the disconnect as
    aiomqtt's iterator raises it, and again for a reader that asks after it."""
    broker = mosquitto_factory()
    async with LoopClient("127.0.0.1", broker.port, identifier="pub-order") as pub:
        sub = LoopClient("127.0.0.1", broker.port, identifier="sub-order")
        await sub.__aenter__()
        try:
            assert type(sub.messages).__name__ == "_Messages"
            await sub.subscribe("order/#", qos=1)
            for i in range(20):
                await pub.publish("order/x", str(i), qos=1)
            messages = sub.messages
            got = []
            async for message in messages:
                assert isinstance(message.payload, bytes)
                got.append(message.payload.decode())
                if len(got) == 10:
                    break
            # The other ten wait in the queue as the broker goes away.
            await wait_for(lambda: len(sub.messages) == 10, 10, "the other ten queued")
            broker.stop()
            with pytest.raises(aiomqtt.MqttError, match="Disconnected during message"):
                async for message in messages:
                    assert isinstance(message.payload, bytes)
                    got.append(message.payload.decode())
            assert got == [str(i) for i in range(20)]
            with pytest.raises(aiomqtt.MqttError, match="Disconnected during message"):
                await anext(sub.messages)
        finally:
            with contextlib.suppress(aiomqtt.MqttError):
                await sub.__aexit__(None, None, None)


async def test_messages_fall_back_to_aiomqtt_if_it_renames_what_they_use() -> None:
    client = LoopClient("127.0.0.1", 1)
    del client._queue  # as a release that renamed it would look
    assert isinstance(client.messages, aiomqtt.client.MessagesIterator)


async def test_one_task_keeps_every_client_alive(mosquitto_factory: Callable[..., Any]) -> None:
    """paho's housekeeping (keep-alive pings) for all the clients of a loop by one task: each
    client sends its ping when due and hears the broker's answer; a client that leaves is
    served no more."""
    port = mosquitto_factory().port
    clients = [LoopClient("127.0.0.1", port, identifier=f"idle-{i}", keepalive=2) for i in range(3)]
    for client in clients:
        await client.__aenter__()
    pings = [0] * len(clients)
    for i, client in enumerate(clients):
        send = client._client._send_pingreq

        def counted(i: int = i, send: Callable[[], Any] = send) -> Any:
            pings[i] += 1
            return send()

        client._client._send_pingreq = counted
    try:
        keepers = [t for t in asyncio.all_tasks() if t.get_name() == "mqtt-misc"]
        assert len(keepers) == 1
        await wait_for(lambda: min(pings) >= 2, 30, "two keep-alive pings from each client")
        assert not any(c._disconnected.done() for c in clients)  # the broker answered them
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
    await wait_for(lambda: keepers[0].done(), 10, "the housekeeping to end with its clients")
    assert _housekeeping()._task is None  # nothing left that refers to the loop


async def test_every_reader_of_a_client_hears_the_disconnect(
    mosquitto_factory: Callable[..., Any],
) -> None:
    broker = mosquitto_factory()
    sub = LoopClient("127.0.0.1", broker.port, identifier="sub-two-readers")
    await sub.__aenter__()
    try:

        async def read() -> None:
            async for _ in sub.messages:
                pass

        readers = [asyncio.create_task(read()) for _ in range(2)]
        broker.stop()  # whether they wait on the queue by then or come to it after
        for reader in readers:
            with pytest.raises(aiomqtt.MqttError, match="Disconnected during message"):
                await asyncio.wait_for(reader, 20)
        assert len(sub.messages) == 0  # the end-mark is not a message
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await sub.__aexit__(None, None, None)


async def test_a_publish_waits_for_its_acknowledgement_without_a_task_and_times_out(
    mosquitto_factory: Callable[..., Any],
) -> None:
    """A QoS 1 publish returns once the broker acknowledged it; while it waits, no task of its
    own runs beside the caller's (aiomqtt's `wait_for` makes one per publish), and with the
    broker stopped it ends at its timeout as aiomqtt's does."""
    import signal

    broker = mosquitto_factory()
    # With a bound on calls at once (aiomqtt's semaphore), aiomqtt's own way: a task more.
    for bound, tasks in ((None, 1), (1, 2)):
        async with LoopClient(
            "127.0.0.1", broker.port, identifier="pub-ack", max_concurrent_outgoing_calls=bound
        ) as pub:
            await pub.publish("loop/ack", b"1", qos=1)  # acknowledged: it returns
            assert not pub._pending_publishes
            broker.proc.send_signal(signal.SIGSTOP)  # no acknowledgement can come now
            try:
                before = len(asyncio.all_tasks())
                waiting = asyncio.create_task(pub.publish("loop/ack", b"2", qos=1, timeout=0.5))
                # The loop's turns, not time, until the publish waits for its acknowledgement
                # (any task of its own is made in the same step).
                turns = 0
                while not pub._pending_publishes and turns < 100:
                    await asyncio.sleep(0)
                    turns += 1
                assert pub._pending_publishes, "the publish never came to wait"
                assert len(asyncio.all_tasks()) == before + tasks
                with pytest.raises(aiomqtt.MqttError, match="timed out"):
                    await waiting
                assert not pub._pending_publishes  # forgotten after the timeout
            finally:
                broker.proc.send_signal(signal.SIGCONT)


async def test_publish_refuses_a_message_id_still_pending(mosquitto_factory: Any) -> None:
    """Two calls waiting on one message id would take each other's acknowledgement: the
    publish refuses, as aiomqtt's does, whichever kind of call holds the id."""
    broker = mosquitto_factory()
    async with LoopClient("127.0.0.1", broker.port, identifier="pub-mid") as pub:
        for table in (pub._pending_publishes, pub._pending_subscribes, pub._pending_unsubscribes):
            mid = pub._client._last_mid + 1  # the id paho gives the next publish
            table[mid] = asyncio.Event()
            try:
                with pytest.raises(RuntimeError, match="pending call"):
                    await pub.publish("loop/mid", b"1", qos=1)
            finally:
                del table[mid]
        await pub.publish("loop/mid", b"2", qos=1)  # the ids free again: acknowledged
        assert not pub._pending_publishes
