"""Per-node broker credentials and ACLs, proven on a real Mosquitto and on the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import pytest

from controller.embedded_broker import EmbeddedBroker
from controller.models import AreaKind
from controller.registry import Registry
from controller.tools import open_registry
from tests.conftest import Mosquitto, free_port


def seed(registry: Registry) -> dict[str, dict[str, Any]]:
    provs = {}
    with registry.db.session() as s:
        registry.add_area(s, "xa", "Xã", AreaKind.commune, None)
        registry.add_area(s, "thon-1", "Thôn 1", AreaKind.village, "xa")
        registry.add_area(s, "thon-2", "Thôn 2", AreaKind.village, "xa")
        for node_id, area in (("n1", "thon-1"), ("n2", "thon-2")):
            _, provs[node_id] = registry.add_node(s, node_id, node_id, area)
        s.commit()
    registry.write_broker_files()
    return provs


@contextlib.asynccontextmanager
async def broker(
    kind: str, registry: Registry, factory: Callable[..., Mosquitto]
) -> AsyncIterator[tuple[int, Callable[[], None]]]:
    d = registry.settings.broker_dir
    if kind == "mosquitto":
        m = factory(d / "passwd", d / "acl")
        yield m.port, m.reload
    else:
        port = free_port()
        b = EmbeddedBroker("127.0.0.1", port, d / "passwd", d / "acl")
        await b.start()
        try:
            yield port, lambda: None  # re-reads the files by itself
        finally:
            await b.stop()


def client(port: int, user: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, identifier=user)


async def received(c: aiomqtt.Client, timeout: float) -> list[str]:
    got: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for m in c.messages:
                got.append(f"{m.topic.value}={m.payload.decode()}")  # type: ignore[union-attr]
    return got


@pytest.mark.parametrize("kind", ["mosquitto", "embedded"])
async def test_a_node_cannot_impersonate_or_eavesdrop_on_another(
    kind, make_settings, mosquitto_factory
):
    settings = make_settings()
    registry = open_registry(settings)
    provs = seed(registry)
    t = registry.topics
    ctl = registry.controller_login()
    async with broker(kind, registry, mosquitto_factory) as (port, _reload):
        async with client(port, ctl.username, ctl.password) as controller:
            await controller.subscribe(f"{t.root}/node/+/state", qos=1)
            async with client(port, "n1", provs["n1"]["password"]) as n1:
                await n1.subscribe(t.cmd("n2"), qos=1)  # another node's commands: refused
                await n1.subscribe(t.area_alert("thon-2"), qos=1)  # another village: refused
                await n1.subscribe(t.cmd("n1"), qos=1)
                await n1.subscribe(t.area_alert("xa"), qos=1)  # its own commune: allowed
                await n1.publish(t.node_state("n1"), b"mine", qos=1)
                await n1.publish(t.node_state("n2"), b"forged", qos=1)
                await controller.publish(t.cmd("n2"), b"for-n2", qos=1)
                await controller.publish(t.area_alert("thon-2"), b"alert-thon-2", qos=1)
                await controller.publish(t.cmd("n1"), b"for-n1", qos=1)
                await controller.publish(t.area_alert("xa"), b"alert-xa", qos=1)
                got_n1 = await received(n1, 1.5)
            got_ctl = await received(controller, 0.5)
    assert got_ctl == [f"{t.node_state('n1')}=mine"]
    assert sorted(got_n1) == sorted([f"{t.cmd('n1')}=for-n1", f"{t.area_alert('xa')}=alert-xa"])


@pytest.mark.parametrize("kind", ["mosquitto", "embedded"])
async def test_wrong_password_and_retired_node_are_refused(kind, make_settings, mosquitto_factory):
    settings = make_settings()
    registry = open_registry(settings)
    provs = seed(registry)
    async with broker(kind, registry, mosquitto_factory) as (port, reload):
        with pytest.raises(aiomqtt.MqttError):
            async with client(port, "n1", "wrong-password"):
                pass
        async with client(port, "n2", provs["n2"]["password"]):
            pass
        with registry.db.session() as s:
            registry.retire_node(s, "n2")
            s.commit()
        registry.write_broker_files()
        reload()
        with pytest.raises(aiomqtt.MqttError):
            async with client(port, "n2", provs["n2"]["password"]):
                pass
