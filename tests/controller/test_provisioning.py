"""What the controller writes into a node's provisioning file: the broker's address as nodes
reach it (the TLS default port, never 0.0.0.0 or ::), the broker's CA itself rather than the
controller's path to it; and a node provisioned again (`radio node provision`, the API): the new
file logs in, the old one no longer does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from firmware_sim.config import NodeConfig
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import make_commune
from tests.controller.test_broker_access import client
from tests.controller.test_node_cli import Radio, embedded, mosquitto, refused
from tests.controller.test_tls import make_ca_and_cert


def add(radio: Radio, node_id: str = "loa-01", code: int = 0, **env: str) -> str:
    return radio("node", "add", node_id, "--name", "Loa", "--area", "thon-1", code=code, **env)


@pytest.mark.parametrize(
    ("url", "written"),
    [
        ("mqtts://c:secret@broker.example.vn", "mqtts://broker.example.vn:8883"),
        ("mqtt://c:secret@broker.example.vn", "mqtt://broker.example.vn:1883"),
        ("mqtts://c:secret@broker.example.vn:9883", "mqtts://broker.example.vn:9883"),
        ("mqtt://c:secret@[fd00::5]:1884", "mqtt://[fd00::5]:1884"),
    ],
)
def test_the_broker_url_keeps_the_schemes_default_port(
    tmp_path: Path, url: str, written: str
) -> None:
    radio = Radio(tmp_path, RADIO_MQTT_URL=url)
    radio.commune()
    add(radio)
    prov = radio.provisioning("loa-01")
    assert prov["mqtt_url"] == written
    broker = NodeConfig.model_validate(prov).broker()
    assert f"{broker.port}" == written.rsplit(":", 1)[1]
    assert broker.tls == written.startswith("mqtts:")


def test_no_address_nodes_cannot_reach_is_written(tmp_path: Path) -> None:
    radio = Radio(tmp_path, RADIO_MQTT_EMBEDDED_HOST="0.0.0.0")
    radio.commune()
    out = add(radio, code=2)
    assert "RADIO_MQTT_EMBEDDED_HOST is '0.0.0.0'" in out and "RADIO_PUBLIC_MQTT_HOST" in out
    out = add(radio, code=2, RADIO_MQTT_URL="mqtt://c:secret@[::]:1883")
    assert "the host of RADIO_MQTT_URL is '::'" in out
    # Nothing was registered, no file written: the first add that works takes the id.
    assert radio("node", "list", "--all", "--json") == ""
    assert not (radio.data / "provisioning" / "loa-01.json").exists()

    # Listening everywhere, the embedded broker is where nodes reach the controller's HTTP.
    add(radio, RADIO_PUBLIC_URL="http://10.0.0.5:8080")
    prov = radio.provisioning("loa-01")
    assert prov["mqtt_url"] == "mqtt://10.0.0.5:18830"
    assert prov["media_token_url"] == "http://10.0.0.5:8080/media/token"
    # An address given for nodes wins, for the embedded broker and for an external one.
    add(radio, "loa-02", RADIO_PUBLIC_MQTT_HOST="radio.xa-a.vn")
    assert radio.provisioning("loa-02")["mqtt_url"] == "mqtt://radio.xa-a.vn:18830"
    add(
        radio,
        "loa-03",
        RADIO_MQTT_URL="mqtts://c:secret@127.0.0.1:8884",
        RADIO_PUBLIC_MQTT_HOST="fd00::5",
    )
    assert radio.provisioning("loa-03")["mqtt_url"] == "mqtts://[fd00::5]:8884"
    # That address may not be a wildcard itself, nor carry a scheme or port.
    for bad, words in (("::", "an address to listen on"), ("mqtt://x:1883", "host name")):
        out = radio("node", "list", code=2, RADIO_PUBLIC_MQTT_HOST=bad)
        assert "Configuration error" in out and words in out, out

    # The HTTP side: listening everywhere without RADIO_PUBLIC_URL gives nodes no media address.
    http = Radio(tmp_path / "http", RADIO_HTTP_HOST="0.0.0.0")
    http.commune()
    out = add(http, code=2)
    assert "RADIO_PUBLIC_URL" in out and "http://0.0.0.0:8080" in out
    assert http("node", "list", "--all", "--json") == ""


def test_the_file_carries_the_brokers_ca_itself(tmp_path: Path) -> None:
    ca, _, key = make_ca_and_cert(tmp_path / "pki")
    junk = tmp_path / "pki" / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    radio = Radio(
        tmp_path,
        RADIO_MQTT_URL="mqtts://c:secret@broker.example.vn",
        RADIO_MQTT_CA_FILE=str(ca),
        RADIO_PUBLIC_URL="https://radio.example.vn",
    )
    radio.commune()
    add(radio)
    prov = radio.provisioning("loa-01")
    assert prov["ca_pem"] == ca.read_text() and "ca_file" not in prov
    context = NodeConfig.model_validate(prov).broker().tls_context()
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    trusted = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
    assert trusted == [{"commonName": "Radio test CA"}]  # the CA given, not the system's

    # A CA file the controller cannot use refuses the provisioning, naming the file.
    both = tmp_path / "pki" / "ca-and-key.pem"
    both.write_text(ca.read_text() + key.read_text())
    for bad, words in (
        (tmp_path / "none.pem", "cannot read it"),
        (key, "holds a private key"),
        (both, "holds a private key"),
        (junk, "not a PEM certificate"),
    ):
        out = add(radio, "loa-02", code=2, RADIO_MQTT_CA_FILE=str(bad))
        assert f"RADIO_MQTT_CA_FILE={bad}: {words}" in out, out
    assert not (radio.data / "provisioning" / "loa-02.json").exists()

    # A plain broker needs no CA: none is written.
    add(radio, "loa-02", RADIO_MQTT_URL="mqtt://c:secret@broker.example.vn")
    assert radio.provisioning("loa-02")["ca_pem"] is None


@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
async def test_a_node_provisioned_again_logs_in_with_its_new_file_only(
    kind: str, tmp_path: Path, mosquitto_factory
) -> None:
    radio = Radio(tmp_path)
    radio.commune()
    add(radio)
    add(radio, "loa-02")
    old = radio.provisioning("loa-01")
    other = radio.provisioning("loa-02")
    topic = f"{old['topic_prefix']}/v1/node/loa-01/state"
    ctl = json.loads((radio.data / "secrets" / "mqtt-controller.json").read_text())
    start = embedded if kind == "embedded" else mosquitto
    async with (
        start(radio, mosquitto_factory) as (port, env),
        client(port, ctl["username"], ctl["password"]) as controller,
    ):
        await controller.subscribe(topic, qos=1)
        copy = tmp_path / "usb" / "loa-01.json"
        copy.parent.mkdir()
        async with client(port, "loa-01", old["password"]) as stolen:
            await stolen.publish(topic, b"before", qos=1)
            out = radio("node", "provision", "loa-01", "--out", str(copy), **env)
            assert "old credentials revoked" in out and str(copy) in out
            new = radio.provisioning("loa-01")
            await wait_for(lambda: refused(port, "loa-01", old["password"]), 10, "old login out")
            # A session opened with the old file has no rights left (Mosquitto ends it).
            with contextlib.suppress(aiomqtt.MqttError):
                await stolen.publish(topic, b"after", qos=1)
        async with client(port, "loa-01", new["password"]) as node:
            await node.publish(topic, b"new", qos=1)
        async with asyncio.timeout(20):
            got = [m async for m in _until(controller, f"{topic}=new")]
        assert got == [f"{topic}=before", f"{topic}=new"]
        assert json.loads(copy.read_text(encoding="utf-8")) == new
        assert copy.stat().st_mode & 0o777 == 0o600
        assert new["password"] != old["password"] and new["media_token"] != old["media_token"]
        fresh = ("password", "media_token", "mqtt_url")  # the URL: RADIO_MQTT_URL of `env`
        assert {k: v for k, v in new.items() if k not in fresh} == {
            k: v for k, v in old.items() if k not in fresh
        }
        assert not await refused(port, "loa-02", other["password"])  # others untouched

        # Printed instead of copied; the file in the data directory is the newest either way.
        printed = json.loads(radio("node", "provision", "loa-01", "--out", "-", **env))
        assert printed == radio.provisioning("loa-01") and printed["password"] != new["password"]
        await wait_for(lambda: refused(port, "loa-01", new["password"]), 10, "the second login")

        # A retired node returns to service with a new file.
        radio("node", "retire", "loa-02", **env)
        out = radio("node", "provision", "loa-02", **env)
        assert "returned to service" in out
        listed = {n["id"]: n for n in map(json.loads, radio("node", "list", "--json").splitlines())}
        assert listed["loa-02"]["retired"] is False and listed["loa-02"]["status"] == "unknown"
        back = radio.provisioning("loa-02")
        await wait_for(
            lambda: _logs_in(port, "loa-02", back["password"]), 10, "the node back in service"
        )
    assert "does not exist" in radio("node", "provision", "ghost", code=2)
    unwritable = tmp_path / "no-such-dir" / "x.json"
    out = radio("node", "provision", "loa-01", "--out", str(unwritable), code=1)
    assert "cannot write it" in out and "provisioning/loa-01.json" in out


async def _until(c: aiomqtt.Client, last: str) -> AsyncIterator[str]:
    """What `c` receives, up to and with `last`."""
    async for m in c.messages:
        text = f"{m.topic.value}={m.payload.decode()}"  # type: ignore[union-attr]
        yield text
        if text == last:
            return


async def _logs_in(port: int, user: str, password: str) -> bool:
    return not await refused(port, user, password)


async def test_the_api_provisions_a_node_again(make_settings) -> None:
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 1)
        await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "Xã B", "kind": "commune"})
        r = await ctl.api("POST", "/nodes", json={"id": "n-b", "name": "Loa B", "area_id": "xa-b"})
        assert r.status_code == 201, r.text
        # The file to copy onto the device is in the data directory too, for its owner only.
        added = ctl.service.settings.provisioning_dir / "n-b.json"
        assert json.loads(added.read_text(encoding="utf-8")) == r.json()["provisioning"]
        assert added.stat().st_mode & 0o777 == 0o600
        tech = await ctl.login_as_new("tech", "technician", "xa-a")
        tech_b = await ctl.login_as_new("tech-b", "technician", "xa-b")
        officer = await ctl.login_as_new("officer", "officer", "xa-a")
        old = configs[0].broker()
        port = old.port

        assert (await ctl.api("POST", "/nodes/n0/provision", token=officer)).status_code == 403
        assert (await ctl.api("POST", "/nodes/n0/provision", token=tech_b)).status_code == 404
        assert (await ctl.api("POST", "/nodes/ghost/provision", token=tech)).status_code == 404
        assert not await refused(port, "n0", old.password or "")  # nothing changed by those

        r = await ctl.api("POST", "/nodes/n0/provision", token=tech)
        assert r.status_code == 200, r.text
        assert r.json()["node"]["id"] == "n0" and not r.json()["node"]["retired"]
        new = r.json()["provisioning"]
        on_disk = ctl.service.settings.provisioning_dir / "n0.json"
        assert json.loads(on_disk.read_text(encoding="utf-8")) == new
        await wait_for(lambda: refused(port, "n0", old.password or ""), 10, "the old login out")
        assert not await refused(port, "n0", new["password"])
        audit = (await ctl.api("GET", "/audit", params={"action": "node.provision"})).json()
        assert [(e["actor"], e["target"]) for e in audit][:1] == [("tech", "n0")]


async def test_the_api_refuses_to_provision_with_no_address_for_nodes(make_settings) -> None:
    # Listening on every interface, with no RADIO_PUBLIC_URL to say where nodes find it.
    async with running_controller(make_settings(http_host="0.0.0.0")) as ctl:
        await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        r = await ctl.api("POST", "/nodes", json={"id": "n1", "name": "Loa", "area_id": "xa"})
        assert r.status_code == 409 and r.json()["code"] == "controller_misconfigured"
        assert "RADIO_PUBLIC_URL" in r.json()["detail"]
        files = {"file": ("nodes.csv", "id,name,area\nn2,Loa 2,xa\n", "text/csv")}
        r = await ctl.api("POST", "/nodes/import", files=files)
        assert r.status_code == 409 and r.json()["code"] == "controller_misconfigured"
        assert (await ctl.api("GET", "/nodes", params={"include_retired": True})).json()[
            "items"
        ] == []
