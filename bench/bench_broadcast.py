"""One broadcast end to end with separate controller and emulator processes: how long from
scheduling until every node has reported playing it, and what each process costs in memory.

Run: .venv/bin/python bench/bench_broadcast.py [N ...]   (default: 20 200)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RADIO = [PY, "-m", "radio.cli"]
LEAD_S = 8.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process, with the embedded broker's process it runs (0 if gone)."""
    total = 0.0
    for p in (pid, *broker_children(pid)):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def broker_children(pid: int) -> list[int]:
    """The embedded broker's process under a controller (`controller.mqtt.broker_process`)."""
    found = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for kid in kids:
            if b"controller.mqtt.broker_process" in Path(f"/proc/{kid}/cmdline").read_bytes():
                found.append(int(kid))
    except OSError:
        pass
    return found


def run(n: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="radio-bench-"))
    env = {
        **os.environ,
        "RADIO_DATA_DIR": str(data),
        "RADIO_DEMO": "1",
        "RADIO_HTTP_PORT": str(free_port()),
        "RADIO_MQTT_EMBEDDED_PORT": str(free_port()),
        "RADIO_NEW_USER_PASSWORD": "measure-pw-2026",
        "PYTHONPATH": str(ROOT),
    }
    sh = {"env": env, "cwd": ROOT, "check": True, "capture_output": True}
    subprocess.run([*RADIO, "db", "upgrade"], **sh)  # the schema first: `serve` only checks it
    subprocess.run([*RADIO, "area", "add", "xa", "--name", "Xã", "--kind", "commune"], **sh)
    subprocess.run([*RADIO, "user", "add", "bench", "--role", "admin"], **sh)
    from controller.core.config import Settings
    from radio.simnodes import ensure_sim_nodes

    old = dict(os.environ)
    os.environ.update(env)
    try:
        provs = ensure_sim_nodes(Settings(), n, "xa")
    finally:
        os.environ.clear()
        os.environ.update(old)
    prov_dir = data / "fleet"
    prov_dir.mkdir()
    for p in provs:
        (prov_dir / f"{p['node_id']}.json").write_text(json.dumps(p))
    base = f"http://127.0.0.1:{env['RADIO_HTTP_PORT']}"
    ctl = subprocess.Popen([*RADIO, "serve", "--log-level", "WARNING"], env=env, cwd=ROOT)
    sim = None
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        ctl_idle = rss_mb(ctl.pid)
        sim = subprocess.Popen(
            [PY, "-m", "firmware_sim", "--provision-dir", str(prov_dir), "--log-level", "WARNING"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        http = httpx.Client(base_url=f"{base}/api/v1", timeout=60)
        tok = http.post("/auth/token", data={"username": "bench", "password": "measure-pw-2026"})
        http.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"
        deadline = time.time() + 120
        while sum(x["status"] == "online" for x in http.get("/nodes").json()) < n:
            if time.time() > deadline:
                raise TimeoutError("nodes did not come online")
            time.sleep(0.5)
        ann = http.post("/announcements", json={"title": "b", "text": "Xin chào bà con."}).json()
        t0 = time.time()
        starts = datetime.now(UTC) + timedelta(seconds=LEAD_S)
        sched = http.post(
            "/schedules",
            json={
                "announcement_id": ann["id"],
                "starts_at": starts.isoformat(),
                "targets": {"areas": ["xa"]},
            },
        ).json()
        while True:
            counts = http.get(f"/schedules/{sched['id']}/deliveries").json()["counts"]
            if counts.get("finished", 0) == n:
                break
            if time.time() > deadline + 120:
                raise TimeoutError(f"not all played: {counts}")
            time.sleep(0.2)
        total = time.time() - t0
        rows = http.get(f"/schedules/{sched['id']}/deliveries").json()["deliveries"]
        planned = datetime.fromisoformat(sched["starts_at"])
        offsets = sorted(
            (datetime.fromisoformat(r["started_at"]) - planned).total_seconds() * 1000 for r in rows
        )
        return {
            "start_spread_ms": offsets[-1] - offsets[0],
            "start_p50_ms": offsets[len(offsets) // 2],
            "start_max_ms": max(abs(o) for o in offsets),
            "nodes": n,
            "audio_s": ann["duration_s"],
            "schedule_to_all_finished_s": total,
            "after_air_end_s": total - LEAD_S - ann["duration_s"],
            "controller_idle_mb": ctl_idle,
            "controller_mb": rss_mb(ctl.pid),
            "emulator_mb": rss_mb(sim.pid),
        }
    finally:
        for p in (sim, ctl):
            if p is not None:
                p.terminate()
                p.wait(20)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [20, 200]
    results = []
    print(
        "| nodes | audio s | schedule → all reported finished, s | reports after air end, s "
        "| controller MB (idle → loaded) | emulator MB | emulator KB per node |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        r = run(n)
        results.append(r)
        print(
            f"| {n} | {r['audio_s']:.1f} | {r['schedule_to_all_finished_s']:.1f} "
            f"(lead {LEAD_S:.0f} + audio) | {r['after_air_end_s']:.2f} "
            f"| {r['controller_idle_mb']:.0f} → {r['controller_mb']:.0f} | {r['emulator_mb']:.0f} "
            f"| {r['emulator_mb'] * 1024 / n:.0f} |",
            flush=True,
        )
    print("\nStart skew: node-stamped start of one occurrence against its planned time\n")
    print("| nodes | spread (last − first start), ms | median offset, ms | worst offset, ms |")
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r['nodes']} | {r['start_spread_ms']:.0f} | {r['start_p50_ms']:.0f} "
            f"| {r['start_max_ms']:.0f} |"
        )


if __name__ == "__main__":
    main()
