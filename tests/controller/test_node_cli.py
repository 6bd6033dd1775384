"""The registry from the `radio` command line (and the API's import and retire): add, bulk import
from CSV (all rows checked, all or nothing), list, firmware catalogue; a retired node can no
longer log in to the embedded broker or to a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
from typer.testing import CliRunner

from controller.mqtt.embedded_broker import EmbeddedBroker
from firmware_sim.config import NodeConfig
from radio.cli import app
from tests.conftest import free_port, running_controller
from tests.controller.test_broadcast_e2e import make_commune
from tests.controller.test_broker_access import client, received

GOOD_CSV = """id,name,area,lat,lon,hardware,installed_on
loa-02,Loa chợ,thon-1,10.51,106.2,loa-v2,2025-03-15
loa-03,"Loa nhà văn hóa, thôn 1",thon-1,,,,14/03/2025
"""

BAD_CSV = """\ufeffid;name;area;lat;lon;hardware;installed_on
loa-02;Loa chợ;thon-1;10.51;106.2;loa-v2;2025-03-15
Loa 3!;Loa 3;thon-1;;;;
loa-04;;thon-1;91;;x;2025-13-01
loa-02;Loa 2 again;thon-1;;;;
loa-01;Again;thon-9;;;;
loa-05;Too;many;fields;;;;;
"""


class Radio:
    """`radio …` run in-process against one data directory."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.data = tmp_path / "data"
        self.env = {
            "RADIO_DATA_DIR": str(self.data),
            "RADIO_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "RADIO_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            **env,
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, **env: str) -> str:
        result = self.runner.invoke(app, list(args), env={**self.env, **env})
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    def commune(self) -> None:
        self("area", "add", "xa-a", "--name", "Xã A", "--kind", "commune")
        self("area", "add", "thon-1", "--name", "Thôn 1", "--kind", "village", "--parent", "xa-a")

    def provisioning(self, node_id: str) -> dict:
        return dict(json.loads((self.data / "provisioning" / f"{node_id}.json").read_text()))


def test_nodes_are_added_imported_and_listed(tmp_path):
    radio = Radio(tmp_path)
    radio.commune()
    out = radio(
        "node", "add", "loa-01", "--name", "Loa cổng UBND", "--area", "thon-1",
        "--lat", "10.5", "--lon", "106.1", "--hardware", "loa-v2", "--installed-on", "14/03/2025",
    )  # fmt: skip
    path = radio.data / "provisioning" / "loa-01.json"
    assert f"provisioning file: {path}" in out
    prov = radio.provisioning("loa-01")
    assert prov["username"] == "loa-01" and prov["password"] and prov["media_token"]
    radio("node", "add", "loa-01", "--name", "x", "--area", "thon-1", code=2)
    radio("node", "add", "loa-x", "--name", "x", "--area", "thon-1", "--lat", "10", code=2)

    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    out = radio("node", "import", str(bad), code=2)
    assert "6 problem(s) in the CSV file; nothing was imported" in out
    for words in (
        "line 3: id 'Loa 3!'",
        "line 4: name is missing; lat 91 is outside -90…90; install date '2025-13-01'",
        "line 5: node loa-02 is also on line 2",
        "line 6: node loa-01 is already registered",
        "line 6: area thon-9 does not exist",
        "line 7: 9 fields, the header has 7",
    ):
        assert words in out, (words, out)
    assert json.loads(radio("node", "list", "--json"))["id"] == "loa-01"  # nothing imported

    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    out = radio("node", "import", str(good))
    assert "2 node(s) registered" in out
    assert radio.provisioning("loa-03")["areas"] == ["thon-1", "xa-a"]
    listed = [json.loads(line) for line in radio("node", "list", "--json").splitlines()]
    assert [(n["id"], n["installed_on"], n["hardware"]) for n in listed] == [
        ("loa-01", "2025-03-14", "loa-v2"),
        ("loa-02", "2025-03-15", "loa-v2"),
        ("loa-03", "2025-03-14", ""),
    ]
    assert all("mqtt_password_hash" not in n for n in listed)
    assert listed[2]["name"] == "Loa nhà văn hóa, thôn 1"
    table = radio("node", "list", "--area", "xa-a")
    assert "loa-02" in table and "3 node(s)" in table
    radio("node", "retire", "loa-02")
    assert "loa-02" not in radio("node", "list") and "retired" in radio("node", "list", "--all")
    assert "already retired" in radio("node", "retire", "loa-02", code=2)
    assert "does not exist" in radio("node", "retire", "ghost", code=2)


def test_the_firmware_catalogue_from_the_command_line(tmp_path):
    radio = Radio(tmp_path)
    image = tmp_path / "radio-2.1.0.bin"
    image.write_bytes(b"\x7fELF" + bytes(4096))
    out = radio("firmware", "add", str(image), "--version", "2.1.0", "--draft")
    assert "firmware 2.1.0 (4100 bytes" in out and "draft" in out
    assert image.exists()  # copied, never moved
    radio("firmware", "add", str(image), "--version", "2.0.0", "--notes", "Bản ổn định")
    listing = radio("firmware", "list").splitlines()
    assert listing[0].startswith("  2.1.0") and "draft" in listing[0]
    assert listing[1].startswith("* 2.0.0") and "Bản ổn định" in listing[1]
    radio("firmware", "release", "2.1.0")
    assert radio("firmware", "list").startswith("* 2.1.0")
    assert "already in the catalogue" in radio(
        "firmware", "add", str(image), "--version", "2.1.0", code=2
    )
    assert "no such file" in radio(
        "firmware", "add", str(tmp_path / "none.bin"), "--version", "3", code=2
    )
    assert "letters, digits" in radio("firmware", "add", str(image), "--version", "a b", code=2)
    assert "not in the catalogue" in radio("firmware", "release", "9.9", code=2)


@contextlib.asynccontextmanager
async def embedded(radio: Radio, _factory: object) -> AsyncIterator[tuple[int, dict[str, str]]]:
    port = free_port()
    broker_dir = radio.data / "broker"
    b = EmbeddedBroker("127.0.0.1", port, broker_dir / "passwd", broker_dir / "acl")
    await b.start()
    try:
        yield port, {}  # it re-reads the files when they change
    finally:
        await b.stop()


@contextlib.asynccontextmanager
async def mosquitto(radio: Radio, factory) -> AsyncIterator[tuple[int, dict[str, str]]]:
    broker_dir = radio.data / "broker"
    m = factory(broker_dir / "passwd", broker_dir / "acl")
    assert m.proc is not None
    # As in production: the controller talks to this broker and tells it to reload its files.
    yield (
        m.port,
        {
            "RADIO_MQTT_URL": f"mqtt://127.0.0.1:{m.port}",
            "RADIO_BROKER_RELOAD_COMMAND": f"kill -HUP {m.proc.pid}",
        },
    )


async def refused(port: int, user: str, password: str) -> bool:
    try:
        async with client(port, user, password):
            return False
    except aiomqtt.MqttError:
        return True


@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
async def test_a_retired_node_can_no_longer_log_in(kind, tmp_path, mosquitto_factory):
    radio = Radio(tmp_path)
    radio.commune()
    radio("node", "add", "loa-01", "--name", "Loa 1", "--area", "thon-1")
    radio("node", "add", "loa-02", "--name", "Loa 2", "--area", "thon-1")
    prov = radio.provisioning("loa-01")
    topic = f"{prov['topic_prefix']}/v1/node/loa-01/state"
    other = radio.provisioning("loa-02")
    other_topic = f"{prov['topic_prefix']}/v1/node/loa-02/state"
    ctl = json.loads((radio.data / "secrets" / "mqtt-controller.json").read_text())
    start = embedded if kind == "embedded" else mosquitto
    async with start(radio, mosquitto_factory) as (port, env):
        async with client(port, ctl["username"], ctl["password"]) as controller:
            await controller.subscribe(topic, qos=1)
            await controller.subscribe(other_topic, qos=1)
            async with client(port, "loa-01", prov["password"]) as node:
                await node.publish(topic, b"before", qos=1)
                radio("node", "retire", "loa-01", **env)
                assert not (radio.data / "provisioning" / "loa-01.json").exists()
                for _ in range(50):  # the reload is asynchronous for Mosquitto
                    if await refused(port, "loa-01", prov["password"]):
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("the retired node could still log in")
                # A session opened before the retirement has lost every right, too.
                with contextlib.suppress(aiomqtt.MqttError):
                    await node.publish(topic, b"after", qos=1)
            # Other nodes are untouched; what one of them says after it is the end of what the
            # controller could have heard from the retired node.
            async with client(port, "loa-02", other["password"]) as loa_02:
                await loa_02.publish(other_topic, b"end", qos=1)
            got = await received(controller, f"{other_topic}=end")
        assert got == [f"{topic}=before", f"{other_topic}=end"]


async def test_the_api_imports_a_csv_and_retires_nodes(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 0)
        await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "Xã B", "kind": "commune"})
        tech = await ctl.login_as_new("tech", "technician", "xa-a")
        officer = await ctl.login_as_new("officer", "officer", "xa-a")

        async def send(text: str | bytes, token: str | None = None) -> httpx.Response:
            files = {"file": ("nodes.csv", text, "text/csv")}
            return await ctl.api("POST", "/nodes/import", files=files, token=token)

        r = await send(BAD_CSV.replace("thon-9", "thon-2"), tech)
        assert r.status_code == 422 and "nothing was imported" in r.json()["detail"]
        assert "line 4: name is missing" in r.json()["detail"]
        assert (await send(GOOD_CSV, officer)).status_code == 403
        outside = GOOD_CSV + "loa-09,Loa xã B,xa-b,,,,\n"
        r = await send(outside, tech)
        assert r.status_code == 403 and "xa-b" in r.json()["detail"]
        assert (await send("id,name,area\n\xff".encode("latin-1"), tech)).status_code == 422
        assert (await send(b"id,name,area\nn\x00,x,thon-1\n", tech)).status_code == 422
        assert (await ctl.api("GET", "/nodes")).json()["items"] == []  # nothing half-imported

        r = await send(GOOD_CSV, tech)
        assert r.status_code == 201, r.text
        imported = r.json()
        assert imported["imported"] == 2
        first = imported["nodes"][0]
        assert first["node"]["installed_on"] == "2025-03-15" and first["provisioning"]["password"]
        for each in imported["nodes"]:  # each file is in the data directory too
            kept = ctl.service.settings.provisioning_dir / f"{each['node']['id']}.json"
            assert json.loads(kept.read_text(encoding="utf-8")) == each["provisioning"]

        config = NodeConfig.model_validate(first["provisioning"])
        broker = config.broker()
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=broker.username,
        ):
            pass  # it may log in
        given = await ctl.api(
            "POST",
            "/commands",
            json={"command": "reboot", "nodes": ["loa-02"], "offline": "send", "timeout_s": 600},
        )
        r = await ctl.api("POST", "/nodes/loa-02/retire", token=tech)
        assert r.status_code == 200 and r.json()["retired"]
        view = (await ctl.api("GET", f"/commands/{given.json()['id']}")).json()
        assert view["command"]["done"] and view["nodes"][0]["detail"] == "node retired"
        assert await refused(broker.port, "loa-02", broker.password or "")
        audit = (await ctl.api("GET", "/audit", params={"action": "node."})).json()
        assert {e["action"] for e in audit} >= {"node.import", "node.retire"}
