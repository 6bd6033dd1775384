"""Time from a node's death to its offline alarm, against the configured timeouts.

`radio serve` (embedded broker, SQLite) runs as its own process; twenty simulated nodes run
in this one. Then, one after another, nodes die in two ways:
- their connection is cut without a goodbye (power cut, dead link): the broker publishes the
  last will at once, and the alarm follows after `alarm_offline_after_s`;
- they hang with the connection up (a "silent death"): only the heartbeat timeout
  (`offline_after_s`) notices, then the same alarm threshold applies.
The alarm's `raised_at` (controller clock) minus the moment of death is the latency.

Run: .venv/bin/python bench/bench_offline_alarm.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_broadcast import free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SETTINGS = {
    "RADIO_HEARTBEAT_S": "5",
    "RADIO_OFFLINE_AFTER_S": "15",
    "RADIO_ALARM_OFFLINE_AFTER_S": "10",
    "RADIO_ALARM_CHECK_S": "1",
}
NODES = 20
DEATHS = 5  # of each kind
PASSWORD = "measure-pw-2026"


def start() -> tuple[subprocess.Popen[bytes], int, list[dict]]:
    """The controller with NODES registered nodes, and their provisioning."""
    data = Path(tempfile.mkdtemp(prefix="radio-bench-offline-"))
    port = free_port()
    env = {
        **os.environ,
        **SETTINGS,
        "RADIO_DATA_DIR": str(data),
        "RADIO_DEMO": "1",
        "RADIO_HTTP_PORT": str(port),
        "RADIO_MQTT_EMBEDDED_PORT": str(free_port()),
        "RADIO_PRERENDER_ALERT_TEMPLATES": "0",
        "RADIO_NEW_USER_PASSWORD": PASSWORD,
        "PYTHONPATH": str(ROOT),
    }
    sh = {"env": env, "cwd": ROOT, "check": True, "capture_output": True}
    radio = [PY, "-m", "radio.cli"]
    subprocess.run([*radio, "db", "upgrade"], **sh)  # the schema first: `serve` only checks it
    subprocess.run([*radio, "area", "add", "xa", "--name", "Xã", "--kind", "commune"], **sh)
    subprocess.run([*radio, "user", "add", "bench", "--role", "admin"], **sh)
    from controller.core.config import Settings
    from radio.simnodes import ensure_sim_nodes

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        provs = ensure_sim_nodes(Settings(), NODES, "xa")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    ctl = subprocess.Popen([*radio, "serve", "--log-level", "WARNING"], env=env, cwd=ROOT)
    return ctl, port, provs


async def measure(ctl: subprocess.Popen[bytes], port: int, provs: list[dict]) -> None:
    from firmware_sim.config import NodeConfig
    from firmware_sim.fleet import Fleet
    from firmware_sim.health import cut_link
    from protocol import SystemClock

    base = f"http://127.0.0.1:{port}/api/v1"
    fleet_task = None
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{base}/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            token = (
                await http.post(
                    f"{base}/auth/token", data={"username": "bench", "password": PASSWORD}
                )
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            fleet = Fleet([NodeConfig.model_validate(p) for p in provs], SystemClock())
            fleet_task = asyncio.create_task(fleet.run(display=False))
            while True:
                nodes = (
                    await http.get(f"{base}/nodes", headers=auth, params={"limit": 500})
                ).json()["items"]
                if sum(n["state"] == "online" for n in nodes) == NODES:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(6)  # a heartbeat from everyone
            deaths: dict[str, tuple[str, float]] = {}
            for i in range(DEATHS):
                will, silent = fleet.nodes[2 * i], fleet.nodes[2 * i + 1]
                deaths[will.node_id] = ("will", time.time())
                cut_link(will)
                deaths[silent.node_id] = ("heartbeat timeout", time.time())
                silent.health.hung = True
                await asyncio.sleep(3)  # spread the deaths over the sweep's period
            raised: dict[str, float] = {}
            deadline = time.time() + 120
            while len(raised) < len(deaths) and time.time() < deadline:
                r = await http.get(f"{base}/alarms", params={"kind": "offline"}, headers=auth)
                for a in r.json():
                    raised[a["node_id"]] = datetime.fromisoformat(a["raised_at"]).timestamp()
                await asyncio.sleep(0.2)
    finally:
        if fleet_task is not None:
            fleet_task.cancel()
            with contextlib.suppress(BaseException):
                await fleet_task
    print(
        "settings: "
        + ", ".join(f"{k.removeprefix('RADIO_').lower()}={v}" for k, v in SETTINGS.items())
    )
    print("| death | nodes | alarm after death, s: min | median | max | expected |")
    print("|---|---:|---:|---:|---:|---|")
    expected = {
        "will": "alarm_offline_after_s (10) + up to one check (1)",
        "heartbeat timeout": "offline_after_s (15) + up to one sweep (5) + 10 + up to 1",
    }
    for how in ("will", "heartbeat timeout"):
        lat = [raised[n] - t for n, (k, t) in deaths.items() if k == how and n in raised]
        missing = sum(1 for n, (k, _t) in deaths.items() if k == how and n not in raised)
        if lat:
            print(
                f"| {how} | {len(lat)}{f' ({missing} never)' if missing else ''} | "
                f"{min(lat):.1f} | {statistics.median(lat):.1f} | {max(lat):.1f} | "
                f"{expected[how]} |"
            )


def main() -> None:
    ctl, port, provs = start()
    try:
        asyncio.run(measure(ctl, port, provs))
    finally:
        ctl.terminate()
        ctl.wait(30)


if __name__ == "__main__":
    main()
