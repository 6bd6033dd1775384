"""Faults at the worst moments, each asserting that nothing is lost or played twice:
the broker restarting across a broadcast's air time, and the controller killed (SIGKILL)
between scheduling and air time and during an alert."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from firmware_sim.config import NodeConfig
from firmware_sim.node import Node
from tests.clocks import SteppedClock
from tests.conftest import Mosquitto, free_port, running_controller, wait_for
from tests.controller.test_broadcast_e2e import (
    announce,
    deliveries,
    fleet_of,
    make_commune,
    schedule_at,
    started_events,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "fault-test-pw-2026"
# How far ahead of now a controller in its own process schedules (it cannot share a test clock).
LEAD_S = 20


def restart(m: Mosquitto) -> None:
    m.log = open(m.directory / "mosquitto.log", "ab")  # noqa: SIM115
    m.start()


async def states(ctl, schedule_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict((await deliveries(ctl, schedule_id))["counts"])


def last_seq(node: Node, topic: str) -> int:
    """The sequence number of the last signed message the node accepted on `topic`: it grows
    with every message the controller signs, a republished retained copy included."""
    return node.verifier.replay.last.get(topic, (0, ""))[0]


def timeline_seq(node: Node) -> int:
    return last_seq(node, node.topics.timeline(node.node_id))


@pytest.mark.slow
async def test_broker_restart_across_air_time_loses_and_doubles_nothing(
    make_settings, mosquitto_factory
):
    broker = mosquitto_factory()
    settings = make_settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}")
    clock = SteppedClock()
    async with running_controller(settings, clock) as ctl:
        configs = await make_commune(ctl, 4)
        async with fleet_of(configs, clock) as fleet:
            for node in fleet.nodes:
                node.backoff_max_s = 3.0  # a fleet's 30 s cap would only make the test wait
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            ann = await announce(ctl)
            # Held still until the broker is down: air time cannot come first.
            clock.pause()
            sched = await schedule_at(ctl, ann["id"], clock.now_ms() + 4000, areas=["xa-a"])

            async def ready() -> bool:
                return (await states(ctl, sched["id"])).get("downloaded", 0) == 4

            await wait_for(ready, 30, "every node to hold the media")
            broker.stop()  # down before air time, back after it: the nodes play alone
            await wait_for(lambda: fleet.summary().connected == 0, 20, "nodes to lose the broker")
            seqs = [timeline_seq(n) for n in fleet.nodes]
            assert not any(n.played for n in fleet.nodes)
            clock.resume()
            await wait_for(
                lambda: all(n.played for n in fleet.nodes),
                ann["duration_s"] + 60,
                "every node to play without the broker",
            )
            assert all(len(n.played) == 1 for n in fleet.nodes)
            assert fleet.summary().connected == 0
            restart(broker)

            async def finished() -> bool:
                st = await states(ctl, sched["id"])
                return st.get("finished", 0) == 4

            await wait_for(finished, 40, "the reports kept during the outage")
            # The controller republished every retained timeline to the empty broker; the
            # nodes took the same version again and played nothing twice.
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to reconnect")
            await wait_for(
                lambda: all(
                    timeline_seq(n) > seq for n, seq in zip(fleet.nodes, seqs, strict=True)
                ),
                30,
                "every node to take the timeline republished to the restarted broker",
            )
            assert [len(n.played) for n in fleet.nodes] == [1, 1, 1, 1]
            assert started_events(ctl) == 4


class ServeProcess:
    """`radio serve` as its own process (embedded broker, SQLite), to be killed for real."""

    def __init__(self, data: Path) -> None:
        self.env = {
            **os.environ,
            "RADIO_DATA_DIR": str(data),
            "RADIO_DEMO": "1",
            "RADIO_HTTP_PORT": str(free_port()),
            "RADIO_MQTT_EMBEDDED_PORT": str(free_port()),
            "RADIO_NEW_USER_PASSWORD": PASSWORD,
            "RADIO_PRERENDER_ALERT_TEMPLATES": "false",
            "RADIO_HEARTBEAT_S": "2",
            "PYTHONPATH": str(ROOT),
        }
        self.base = f"http://127.0.0.1:{self.env['RADIO_HTTP_PORT']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def radio(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "radio.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        self.radio("db", "upgrade")  # as in production: `radio serve` only checks the schema
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radio.cli", "serve", "--log-level", "WARNING"],
            env=self.env,
            cwd=ROOT,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def client(self) -> httpx.AsyncClient:
        http = httpx.AsyncClient(base_url=f"{self.base}/api/v1", timeout=30)

        async def up() -> bool:
            try:
                return (await http.get("/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(up, 90, "the controller to answer")
        r = await http.post("/auth/token", data={"username": "chief", "password": PASSWORD})
        assert r.status_code == 200, r.text
        http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        return http


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    s = ServeProcess(tmp_path / "data")
    s.radio("area", "add", "xa-a", "--name", "Xã A", "--kind", "commune")
    s.radio("user", "add", "chief", "--role", "admin")
    yield s
    s.stop()


async def register(http: httpx.AsyncClient, n: int) -> list[NodeConfig]:
    configs = []
    for i in range(n):
        r = await http.post("/nodes", json={"id": f"k{i}", "name": f"Loa {i}", "area_id": "xa-a"})
        assert r.status_code == 201, r.text
        configs.append(NodeConfig.model_validate(r.json()["provisioning"]))
    return configs


@pytest.mark.slow
async def test_controller_killed_between_scheduling_and_air_time(serve: ServeProcess):
    serve.start()
    http = await serve.client()
    configs = await register(http, 3)
    async with fleet_of(configs) as fleet:
        for node in fleet.nodes:
            node.backoff_max_s = 3.0
        await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
        ann = (await http.post("/announcements", json={"title": "t", "text": "Xin chào."})).json()
        # The controller runs in its own process, on the real clock: air time is far enough
        # ahead for the download and the kill to come first even on a loaded machine.
        starts = datetime.now(UTC) + timedelta(seconds=LEAD_S)
        r = await http.post(
            "/schedules",
            json={
                "announcement_id": ann["id"],
                "starts_at": starts.isoformat(),
                "targets": {"areas": ["xa-a"]},
            },
        )
        assert r.status_code == 201, r.text
        sched = r.json()

        async def held() -> bool:
            d = (await http.get(f"/schedules/{sched['id']}/deliveries")).json()
            return d["counts"].get("downloaded", 0) == 3

        await wait_for(held, LEAD_S, "every node to hold the media")
        serve.kill()  # controller and its embedded broker gone before air time
        assert not any(n.played or n.playback.now_playing for n in fleet.nodes)
        await http.aclose()
        await wait_for(lambda: fleet.summary().connected == 0, 20, "nodes to lose the broker")
        seqs = [timeline_seq(n) for n in fleet.nodes]
        await wait_for(
            lambda: all(n.played for n in fleet.nodes),
            LEAD_S + ann["duration_s"] + 60,
            "every node to play without the controller",
        )
        assert [len(n.played) for n in fleet.nodes] == [1, 1, 1]

        serve.start()
        http = await serve.client()

        async def finished() -> bool:
            d = (await http.get(f"/schedules/{sched['id']}/deliveries")).json()
            return d["counts"].get("finished", 0) == 3

        await wait_for(finished, 60, "the reports after the restart")
        # The restarted controller republished the timelines; each node has taken its copy.
        await wait_for(
            lambda: all(timeline_seq(n) > seq for n, seq in zip(fleet.nodes, seqs, strict=True)),
            30,
            "every node to take the timeline the restarted controller published",
        )
        assert [len(n.played) for n in fleet.nodes] == [1, 1, 1]
        d = (await http.get(f"/schedules/{sched['id']}/deliveries")).json()
        assert d["nodes"] == 3 and d["counts"] == {"finished": 3}
        await http.aclose()


@pytest.mark.slow
async def test_controller_killed_during_an_alert(serve: ServeProcess):
    serve.start()
    http = await serve.client()
    configs = await register(http, 3)
    async with fleet_of(configs) as fleet:
        for node in fleet.nodes:
            node.backoff_max_s = 3.0
        await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
        r = await http.post(
            "/alerts",
            json={"areas": ["xa-a"], "text": "Lũ quét. Sơ tán ngay.", "repeat": 2, "test": True},
        )
        assert r.status_code == 201, r.text
        alert = r.json()
        await wait_for(
            lambda: all(n.alerts.active is not None for n in fleet.nodes), 20, "the alert to reach"
        )
        serve.kill()  # mid-alert: the nodes finish it on their own
        await http.aclose()
        await wait_for(lambda: fleet.summary().connected == 0, 20, "nodes to lose the broker")
        received = [n.alerts_received for n in fleet.nodes]
        await wait_for(
            lambda: all(len(n.alerts_played) == 1 for n in fleet.nodes), 60, "the alert to end"
        )
        serve.start()
        http = await serve.client()

        async def confirmed() -> bool:
            view = (await http.get(f"/alerts/{alert['id']}")).json()
            return sum(1 for n in view["nodes"] if n["state"] == "done") == 3

        await wait_for(confirmed, 60, "the confirmations after the restart")

        # Every node played it out: the restarted controller finishes it (no longer retained),
        # whether it republished it first (nodes take it as already played) or not.
        async def finished() -> bool:
            return bool(
                (await http.get(f"/alerts/{alert['id']}")).json()["alert"]["status"] == "finished"
            )

        await wait_for(finished, 30, "the played-out alert to finish")
        assert all(n.alerts_received >= r for n, r in zip(fleet.nodes, received, strict=True))
        assert [len(n.alerts_played) for n in fleet.nodes] == [1, 1, 1]
        assert all(n.alerts.active is None and not n.alerts.runs for n in fleet.nodes)
        r = await http.post(f"/alerts/{alert['id']}/cancel")
        assert r.status_code == 409, r.text  # over already
        await http.aclose()
