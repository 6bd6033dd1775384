"""Per-node broker credentials and ACLs, proven on a real Mosquitto and on the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controller.core.models import AreaKind
from controller.fleet.registry import Registry
from controller.mqtt.broker_access import client_id_for
from controller.mqtt.broker_process import BrokerProcess
from controller.mqtt.embedded_broker import EmbeddedBroker
from radio.tools import open_registry
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
        # In its own process, as the controller runs it.
        b = BrokerProcess("127.0.0.1", port, d / "passwd", d / "acl")
        await b.start()
        try:
            yield port, lambda: None  # re-reads the files by itself
        finally:
            await b.stop()


def client(port: int, user: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, identifier=user)


async def received(c: aiomqtt.Client, last: str) -> list[str]:
    """What `c` receives up to and including `last` (`topic=payload`), a message sent after
    the others: what was refused has had its chance to arrive by then."""
    got: list[str] = []
    async with asyncio.timeout(30):
        async for m in c.messages:
            got.append(f"{m.topic.value}={m.payload.decode()}")  # type: ignore[union-attr]
            if got[-1] == last:
                return got
    raise AssertionError(f"the connection closed before {last}")


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
                await controller.publish(t.cmd("n1"), b"end", qos=1)
                got_n1 = await received(n1, f"{t.cmd('n1')}=end")
                await n1.publish(t.node_state("n1"), b"end", qos=1)
            got_ctl = await received(controller, f"{t.node_state('n1')}=end")
    assert got_ctl == [f"{t.node_state('n1')}=mine", f"{t.node_state('n1')}=end"]
    assert sorted(got_n1) == sorted(
        [f"{t.cmd('n1')}=for-n1", f"{t.area_alert('xa')}=alert-xa", f"{t.cmd('n1')}=end"]
    )


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


@contextlib.asynccontextmanager
async def bound_broker(
    kind: str, registry: Registry, tmp_path: Path
) -> AsyncIterator[tuple[int, Callable[[], None]]]:
    """A broker as the project configures it: the embedded one, or a Mosquitto run with the
    listener configuration the controller writes beside the password and ACL files."""
    d = registry.settings.broker_dir
    if kind == "embedded":
        async with broker(kind, registry, lambda *a: None) as found:  # type: ignore[arg-type]
            yield found
        return
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    m = Mosquitto(tmp_path / "bound-mosquitto", d / "passwd", d / "acl")
    generated = (d / "mosquitto.conf").read_text()
    m.conf.write_text("user root\npersistence false\n" + generated.replace("1883", str(m.port), 1))
    m.start()
    try:
        yield m.port, m.reload
    finally:
        m.stop()


async def alive(sender: aiomqtt.Client, receiver: aiomqtt.Client, topic: str) -> bool:
    """Whether a message from `sender` reaches `receiver` (subscribed to `topic`) now: proof
    that both connections still stand."""
    marker = uuid.uuid4().hex.encode()
    try:
        await sender.publish(topic, marker, qos=1)
        async with asyncio.timeout(5):
            async for m in receiver.messages:
                if m.payload == marker:
                    return True
    except (aiomqtt.MqttError, TimeoutError):
        return False
    return False


@pytest.mark.parametrize("kind", ["mosquitto", "embedded"])
async def test_a_login_cannot_take_over_another_clients_id(kind, make_settings, tmp_path):
    """With n1's login, connecting with n2's client id, or with the controller's, must not cut
    n2 or the controller off (a broker drops the older of two connections with one id)."""
    settings = make_settings()
    registry = open_registry(settings)
    provs = seed(registry)
    t = registry.topics
    ctl = registry.controller_login()
    ctl_id = client_id_for(ctl.username, settings.instance)  # the gateway's id
    async with bound_broker(kind, registry, tmp_path) as (port, _reload):
        async with (
            aiomqtt.Client(
                "127.0.0.1", port, username=ctl.username, password=ctl.password, identifier=ctl_id
            ) as controller,
            client(port, "n2", provs["n2"]["password"]) as n2,
        ):
            await controller.subscribe(t.node_state("n2"), qos=1)
            await n2.subscribe(t.cmd("n2"), qos=1)
            assert await alive(controller, n2, t.cmd("n2"))
            for victim in ("n2", ctl_id):
                # Refused by the embedded broker; Mosquitto makes the id n1's own login.
                with contextlib.suppress(aiomqtt.MqttError):
                    async with aiomqtt.Client(
                        "127.0.0.1",
                        port,
                        username="n1",
                        password=provs["n1"]["password"],
                        identifier=victim,
                    ):
                        pass
                assert await alive(controller, n2, t.cmd("n2")), f"{victim} was cut off"
                assert await alive(n2, controller, t.node_state("n2")), f"{victim} was cut off"


async def test_the_running_controller_keeps_its_connection(make_settings):
    """The controller's own client id, as the gateway uses it, cannot be taken with a node's
    login, and unauthenticated readiness no longer names it."""
    from tests.conftest import running_controller, wait_for
    from tests.controller.test_broadcast_e2e import make_commune

    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 1)
        service = ctl.service
        login = service.registry.controller_login()
        ready = (await ctl.http.get(f"{ctl.base_url}/api/v1/ready")).json()
        assert service.settings.instance not in json.dumps(ready)
        port = service.settings.mqtt_embedded_port
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1",
                port,
                username=configs[0].username,
                password=configs[0].password,
                identifier=client_id_for(login.username, service.settings.instance),
            ):
                pass
        # A report still reaches the controller through the connection it had all along.
        async with client(port, configs[0].username, configs[0].password) as n0:
            state = {"v": 1, "node_id": "n0", "status": "online", "ts": 1}
            await n0.publish(service.topics.node_state("n0"), json.dumps(state).encode(), qos=1)
            await wait_for(lambda: service.gateway.received >= 1, 10, "the report")
        assert service.gateway.connects == 1 and service.gateway.connected.is_set()


@pytest.mark.parametrize("kind", ["embedded"])
async def test_a_will_only_on_topics_the_login_may_write(kind, make_settings, tmp_path):
    """A will is a publish: n1 may not leave one on n2's state, nor an empty retained one that
    would clear an area's alert. amqtt 0.12 published wills unchecked; the embedded broker
    refuses such a CONNECT. (Mosquitto accepts the CONNECT and checks the ACL when it sends
    the will.)"""
    settings = make_settings()
    registry = open_registry(settings)
    provs = seed(registry)
    t = registry.topics
    password = provs["n1"]["password"]
    async with bound_broker(kind, registry, tmp_path) as (port, _reload):
        for topic, payload in ((t.node_state("n2"), b"lost"), (t.area_alert("xa"), b"")):
            will = aiomqtt.Will(topic, payload, qos=1, retain=True)
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    "127.0.0.1", port, username="n1", password=password, identifier="n1", will=will
                ):
                    pass
        own = aiomqtt.Will(t.node_state("n1"), b"lost", qos=1, retain=True)
        async with aiomqtt.Client(
            "127.0.0.1", port, username="n1", password=password, identifier="n1", will=own
        ):
            pass


async def test_a_client_too_slow_to_acknowledge_is_one_line_of_warning(tmp_path: Path) -> None:
    import io
    import logging

    EmbeddedBroker("127.0.0.1", free_port(), tmp_path / "passwd", tmp_path / "acl")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    broker_log = logging.getLogger("amqtt.broker")
    broker_log.addHandler(handler)
    try:
        try:
            raise TimeoutError("Timeout waiting for PUBACK for packet ID 3")
        except TimeoutError:
            broker_log.exception("Task failed and will be skipped: <Task ...>")
        try:
            raise ValueError("a real fault")
        except ValueError:
            broker_log.exception("Task failed and will be skipped: <Task ...>")
    finally:
        broker_log.removeHandler(handler)
    first, *rest = out.getvalue().splitlines()
    assert first == (
        "WARNING amqtt.broker: a client did not acknowledge in time: "
        "Timeout waiting for PUBACK for packet ID 3"
    )
    # Any other failure keeps its traceback.
    assert rest[0].startswith("ERROR amqtt.broker: Task failed") and "Traceback" in rest[1]
