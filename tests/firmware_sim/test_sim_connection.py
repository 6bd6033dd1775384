"""Presence and delivery: online/lost/offline state, heartbeat, events kept across an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fwsim_support import Controller, MediaServer, TcpProxy, broker_port, item, until

from firmware_sim import Node
from protocol import NodeStatus, SystemClock
from tests.clocks import SteppedClock


async def test_online_state_and_heartbeat(
    start_node: Callable[..., Node], controller: Controller
) -> None:
    node = start_node(heartbeat_s=0.2, firmware="sim-9.9")
    node.health.jitter = False
    node.health.volume = 42
    await until(lambda: controller.telemetry("n1"), what="telemetry")
    state = controller.states("n1")[0]
    assert state.status == NodeStatus.online and state.boot == 1
    assert state.areas == ["village-1", "commune-1"] and state.firmware == "sim-9.9"
    tele = controller.telemetry("n1")[0]
    assert tele.volume == 42 and tele.signal_dbm == -67 and tele.speaker_ok
    await until(lambda: len(controller.telemetry("n1")) >= 2, what="second heartbeat")


async def test_clean_shutdown_says_offline(prefix: str, controller: Controller) -> None:
    from firmware_sim import NodeConfig

    config = NodeConfig(
        node_id="n2",
        mqtt_url=f"mqtt://127.0.0.1:{broker_port()}",
        topic_prefix=prefix,
        client_id=f"{prefix}-n2",
        controller_keys=[controller.public_key],
    )
    node = Node(config, SystemClock())
    task = asyncio.create_task(node.run())
    await asyncio.wait_for(node.connected.wait(), 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await until(
        lambda: [s.status for s in controller.states("n2")][-1:] == ["offline"],
        what="offline state",
    )


async def test_connection_loss_will_and_events_delivered_after_reconnect(
    start_node: Callable[..., Node],
    controller: Controller,
    proxy: TcpProxy,
    media: MediaServer,
) -> None:
    clock = SteppedClock()
    node = start_node(port=proxy.port, clock=clock)
    node.backoff_max_s = 1.0  # the default 30 s cap is for real outages, not for tests
    await asyncio.wait_for(node.connected.wait(), 60)
    media.files["a.mp3"] = b"A" * 1000
    clock.pause()  # the item's time comes when the node is cut off, however long that takes
    start = clock.now_ms() + 1500
    await controller.push_timeline(
        "n1", 1, [item("i1", start, media.url("a.mp3"), media.files["a.mp3"], duration_ms=200)]
    )
    await until(lambda: controller.events("n1", "media_ready"), what="media_ready")

    proxy.cut()
    # The broker saw the TCP connection die without DISCONNECT: it publishes the will.
    await until(
        lambda: [s.status for s in controller.states("n1")][-1:] == ["lost"],
        what="lost state from the will",
    )
    await until(lambda: not node.connected.is_set(), what="node notices the loss")
    assert not node.played
    clock.skip_to(start)
    await until(lambda: node.playback.now_playing, what="offline playback started")
    clock.resume()
    await until(lambda: node.played, what="offline playback")
    assert node.outbox_size >= 2
    assert not controller.events("n1", "playback_started")

    await proxy.restore()
    await until(
        lambda: controller.events("n1", "playback_finished"),
        timeout=10,
        what="events after reconnect",
    )
    started = controller.events("n1", "playback_started")[0]
    assert started.ts == start  # when it played (the clock held there), not when it was sent
    ids = [e.id for e in controller.events("n1")]
    assert len(ids) == len(set(ids))
    await until(lambda: node.outbox_size == 0, what="outbox drained")
    states = controller.states("n1")
    assert states[-1].status == "online" and states[-1].boot == 1


def test_a_link_lost_under_the_mqtt_client_is_a_warning_on_a_node(caplog) -> None:
    import logging

    import paho.mqtt.client as paho

    import firmware_sim.node  # noqa: F401  (installs the filter on the "mqtt" logger)

    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.enable_logger(logging.getLogger("mqtt"))  # as aiomqtt does
    with caplog.at_level(logging.DEBUG, logger="mqtt"):
        client._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", BrokenPipeError(32))
        client._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_connect: %s", ValueError())
    levels = [(r.levelname, r.getMessage()[:20]) for r in caplog.records if r.name == "mqtt"]
    assert levels == [("WARNING", "failed to receive on"), ("ERROR", "Caught exception in ")]
