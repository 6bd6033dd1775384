"""The embedded broker in its own process: it serves, stops with the controller (even one that
is killed), survives Ctrl-C until the controller lets it go, comes back after a crash, and a
port already taken is a clear error."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess

import aiomqtt
import pytest

from controller.core.supervisor import Supervisor
from controller.mqtt.broker_process import READY, BrokerFailed, BrokerProcess
from radio.tools import open_registry
from tests.conftest import _port_is_free as port_is_free
from tests.conftest import free_port
from tests.controller.test_broker_access import client, seed


def process_for(settings) -> tuple[BrokerProcess, object]:
    registry = open_registry(settings)
    seed(registry)
    d = settings.broker_dir
    return BrokerProcess("127.0.0.1", free_port(), d / "passwd", d / "acl"), registry


async def round_trip(port: int, registry) -> str:
    """Publish to the controller's own subscription through the broker; what came back."""
    login, root = registry.controller_login(), registry.topics.root
    async with client(port, login.username, login.password) as c:
        topic = f"{root}/probe"
        await c.subscribe(f"{root}/#", qos=1)
        await c.publish(topic, b"hello", qos=1)
        async with asyncio.timeout(10):
            async for m in c.messages:
                if m.payload == b"hello":
                    return str(m.topic.value)
    raise AssertionError("unreachable")


async def test_it_serves_in_a_process_of_its_own_and_stops_with_the_controller(make_settings):
    broker, registry = process_for(make_settings())
    await broker.start()
    try:
        assert broker.pid is not None and broker.pid != os.getpid()
        login = registry.controller_login()  # type: ignore[attr-defined]
        topic = await round_trip(broker.port, registry)
        assert topic.endswith("/probe")
        # The same login rules as the in-process broker: a wrong password is refused.
        with pytest.raises(aiomqtt.MqttError):
            async with client(broker.port, login.username, "not-the-password"):
                pass
    finally:
        await broker.stop()
    assert broker._proc is not None and broker._proc.returncode == 0
    assert port_is_free(broker.port)


async def test_a_broker_that_dies_is_started_again(make_settings):
    broker, registry = process_for(make_settings())
    supervisor = Supervisor(backoff_min_s=0.05, backoff_max_s=0.2)
    await broker.start()
    first = broker.pid
    assert first is not None
    supervisor.start("embedded-broker", broker.keep)
    try:
        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(60), broker.started:
            await broker.started.wait_for(lambda: broker.starts >= 2)
        assert broker.pid != first
        await round_trip(broker.port, registry)  # it said `ready` once listening
        assert supervisor.health["embedded-broker"].restarts >= 1
        assert "ended with code" in (supervisor.health["embedded-broker"].last_error or "")
    finally:
        await supervisor.stop()
        await broker.stop()


async def child_of(broker: BrokerProcess) -> asyncio.subprocess.Process:
    """The broker's process started by hand, as the controller starts it; once listening."""
    child = await asyncio.create_subprocess_exec(
        *broker.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert await asyncio.wait_for(child.stdout.readline(), 30) == READY
    return child


async def test_it_ends_when_the_controller_is_gone_and_ignores_ctrl_c(make_settings):
    broker, registry = process_for(make_settings())
    child = await child_of(broker)
    try:
        child.send_signal(signal.SIGINT)  # Ctrl-C, if it reached it
        assert (await round_trip(broker.port, registry)).endswith("/probe")  # still serving
        assert child.returncode is None
        # What a controller's death (even by SIGKILL) does: the pipe closes.
        assert child.stdin is not None
        child.stdin.close()
        assert await asyncio.wait_for(child.wait(), 30) == 0
        assert port_is_free(broker.port)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_sigterm_waits_for_the_controller_to_let_go(make_settings):
    """A service manager signals every process of the service at once: the broker keeps serving
    until the controller closes the pipe (the controller tells the nodes it is going meanwhile),
    and then ends at once (its wait for the pipe after a SIGTERM is far longer than the test's)."""
    broker, registry = process_for(make_settings())
    child = await child_of(broker)
    try:
        child.send_signal(signal.SIGTERM)
        assert (await round_trip(broker.port, registry)).endswith("/probe")
        assert child.returncode is None
        assert child.stdin is not None
        child.stdin.close()
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_a_broker_ending_while_the_controller_stops_is_no_error(make_settings):
    """Told to stop (a SIGTERM to every process of the service), the broker may end while the
    controller is still stopping: expected, not a crash to report and restart."""
    broker, _registry = process_for(make_settings())
    await broker.start()
    proc = broker._proc
    assert proc is not None and proc.stdin is not None
    broker.stopping()
    proc.terminate()
    proc.stdin.close()  # the controller's side of the pipe, closing after the SIGTERM
    await asyncio.wait_for(proc.wait(), 30)
    # keep() finds it ended: it waits to be cancelled, neither raising nor starting another
    # (it would raise at once: the process has already ended).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(broker.keep(), 0.5)
    assert broker.starts == 1
    await broker.stop()


async def test_a_port_already_taken_is_a_clear_error(make_settings):
    broker, _registry = process_for(make_settings())
    broker.bind_wait_s = 0.5
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", broker.port))
        taken.listen()
        with pytest.raises(BrokerFailed, match=f"did not start on 127.0.0.1:{broker.port}"):
            await broker.start()
    assert broker._proc is not None and broker._proc.returncode is not None


async def test_it_waits_for_a_predecessor_to_let_the_port_go(make_settings):
    """A controller started again at once: the old broker may still hold the port a moment."""
    broker, registry = process_for(make_settings())
    taken = socket.socket()
    taken.bind(("127.0.0.1", broker.port))
    taken.listen()
    child = await asyncio.create_subprocess_exec(
        *broker.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None and child.stdin is not None
    try:
        async with asyncio.timeout(30):  # its log line is the event: read as it comes
            while b"is in use; waiting" not in (line := await child.stderr.readline()):
                assert line, "the broker ended without waiting for the port"
        taken.close()
        assert await asyncio.wait_for(child.stdout.readline(), 30) == READY
        await round_trip(broker.port, registry)
        child.stdin.close()
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        taken.close()
        if child.returncode is None:
            child.kill()
            await child.wait()
