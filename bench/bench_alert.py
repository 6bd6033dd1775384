"""Emergency alerts end to end, each figure beside a bare-broker baseline from the same run.

Starts `radio serve` (embedded amqtt broker, or a Mosquitto of our own with the project's
password and ACL files) and `python -m firmware_sim` fleets as separate processes, issues an
alert through `POST /api/v1/alerts` and reads the per-node receipts from
`GET /api/v1/alerts/{id}`: `received_at` (the node got and verified the signed alert) and
`started_at` (the node started sounding), both stamped by the node's clock (the same machine
clock as ours). The baseline is the bare broker's fan-out of one unsigned message of similar
size to as many plain aiomqtt subscribers, in as many processes as the fleet, on the same kind
of broker (plain anonymous amqtt 0.12 in its own process; a separate anonymous Mosquitto).

Run: .venv/bin/python bench/bench_alert.py            (everything, ~10-15 min on 2 cores)
     .venv/bin/python bench/bench_alert.py --quick    (100 nodes embedded only)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broadcast import broker_children, rss_mb

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RADIO = [PY, "-m", "radio.cli"]
PASSWORD = "measure-pw-2026"
# How often the bench reads the alert's view (what the console shows) while nodes confirm: the
# view's delay is measured to within this.
VIEW_POLL_S = 0.25
PAYLOAD_BYTES = 1024  # a signed alert envelope is of this order (measured: printed per run)
SETTLE_MIN_S = 18.0
SETTLE_MAX_S = 40.0  # nodes prefetch alert templates over their first 5 s after a timeline
QUIET_CORES = 0.35  # "settled": all our processes together use less than this many cores
PREFETCH_MAX_S = 600.0  # waiting for the fleets to hold every template, at most
PROFILE_DIR: Path | None = None  # --profile: py-spy samples of every process around the alert


# --- small helpers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_IDLE_S = 3.0
CPU_AFTER_S = 3.0
ROUNDS = 5  # template alerts (and bare fan-outs) per row: the delivery table gives their medians


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def stats(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    return pct(values, 0.5), pct(values, 0.95), max(values)


def split(n: int) -> list[int]:
    """Fleet (and baseline subscriber) processes: one per core once there are more than 500
    nodes (a real node has its own processor; an emulator process is one core's worth), the
    nodes shared evenly."""
    parts = max(1, min(os.cpu_count() or 1, math.ceil(n / 500)))
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def when(iso: str | None) -> float | None:
    if iso is None:
        return None
    d = datetime.fromisoformat(iso)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- Mosquitto --------------------------------------------------------------------------------


def start_mosquitto(
    directory: Path, port: int, passwd: Path | None = None, acl: Path | None = None
) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["user root", f"listener {port} 127.0.0.1", "persistence false"]
    # As docs/operations.md says for production: the default (1,000 per client) drops the
    # confirmations of a 5,000-node alert (15,000 in seconds) at the controller's subscription.
    lines.append("max_queued_messages 200000")
    if passwd is not None:
        lines += [f"password_file {passwd}", "allow_anonymous false"]
    else:
        lines += ["allow_anonymous true"]
    if acl is not None:
        lines.append(f"acl_file {acl}")
    conf = directory / "mosquitto.conf"
    if not conf.exists():
        conf.write_text("\n".join(lines) + "\n")
    out = open(directory / "mosquitto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc


# --- baseline: bare broker fan-out ------------------------------------------------------------


def _amqtt_broker(port: int) -> None:
    """Child process: a plain amqtt broker, anonymous, no plugins of ours."""
    from amqtt.broker import Broker

    config = {
        "listeners": {
            "default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 0}
        },
        "timeout_disconnect_delay": 0,
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()

    asyncio.run(main())


def _subscribers(n: int, port: int, topic: str, ready: Path, out: Path) -> None:
    """Child process: n plain aiomqtt clients on one topic; each notes when the message came."""
    import aiomqtt

    async def main() -> None:
        times: list[float | None] = [None] * n
        clients: list[aiomqtt.Client] = []
        sem = asyncio.Semaphore(20)

        async def connect(i: int) -> aiomqtt.Client:
            for attempt in range(20):
                c = aiomqtt.Client(
                    "127.0.0.1", port, identifier=f"sub-{os.getpid()}-{i}", keepalive=60, timeout=20
                )
                try:
                    async with sem:
                        await c.__aenter__()
                        await c.subscribe(topic, qos=1)
                    return c
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            raise RuntimeError("subscriber could not connect")

        clients = list(await asyncio.gather(*(connect(i) for i in range(n))))
        ready.write_text("ready")

        async def first(i: int, c: aiomqtt.Client) -> None:
            async for _ in c.messages:
                times[i] = time.time()
                return

        try:
            await asyncio.wait_for(
                asyncio.gather(*(first(i, c) for i, c in enumerate(clients))), 120
            )
        except TimeoutError:
            pass
        out.write_text(json.dumps(times))
        for c in clients:
            try:
                await asyncio.wait_for(c.__aexit__(None, None, None), 2)
            except Exception:
                pass

    asyncio.run(main())


def baseline(kind: str, n: int) -> dict[str, Any]:
    """One publish (QoS 1, retained, ~1 KB) to n plain subscribers on a bare broker."""
    import paho.mqtt.client as paho

    work = Path(tempfile.mkdtemp(prefix="radio-bench-base-"))
    port = free_port()
    broker: subprocess.Popen[Any] | None = None
    subs: list[subprocess.Popen[Any]] = []
    topic = "bench/v1/area/xa/alert"
    try:
        if kind == "embedded":
            broker = subprocess.Popen(
                [PY, __file__, "--_amqtt", str(port)], cwd=ROOT, stderr=subprocess.DEVNULL
            )
            wait_port(port)
        else:
            broker = start_mosquitto(work / "mosq", port)
        parts = split(n)
        for k, m in enumerate(parts):
            subs.append(
                subprocess.Popen(
                    [
                        PY,
                        __file__,
                        "--_subs",
                        str(m),
                        str(port),
                        topic,
                        str(work / f"r{k}"),
                        str(work / f"o{k}.json"),
                    ],
                    cwd=ROOT,
                )
            )
        deadline = time.time() + 60 + n / 20
        while not all((work / f"r{k}").exists() for k in range(len(parts))):
            if time.time() > deadline or any(p.poll() is not None for p in subs):
                raise TimeoutError("baseline subscribers did not connect")
            time.sleep(0.2)
        time.sleep(2.0)
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-pub")
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        time.sleep(0.5)
        t0 = time.time()
        info = pub.publish(topic, b"x" * PAYLOAD_BYTES, qos=1, retain=True)
        info.wait_for_publish(30)
        for p in subs:
            p.wait(150)
        pub.loop_stop()
        pub.disconnect()
        got: list[float] = []
        for k in range(len(parts)):
            got += [t - t0 for t in json.loads((work / f"o{k}.json").read_text()) if t is not None]
        return {"n": n, "received": len(got), "lat": got}
    finally:
        for p in subs:
            stop(p, 5)
        stop(broker)
        shutil.rmtree(work, ignore_errors=True)


# --- the system ----------------------------------------------------------------------------------


@dataclass
class System:
    kind: str
    n: int
    groups: list[int]
    data: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="radio-bench-alert-")))
    env: dict[str, str] = field(default_factory=dict)
    ctl: subprocess.Popen[Any] | None = None
    mosq: subprocess.Popen[Any] | None = None
    fleets: list[subprocess.Popen[Any]] = field(default_factory=list)
    http: Any = None
    database_url: str | None = None  # PostgreSQL (production mode); SQLite in data when None
    fleet_args: list[str] = field(default_factory=list)  # more arguments for firmware_sim
    controller_cmd: list[str] = field(default_factory=lambda: list(RADIO))  # then "serve" …
    fleet_cmd: list[str] = field(default_factory=lambda: [PY, "-m", "firmware_sim"])
    start_timeout: float = 60.0  # seconds for the controller to answer (tracing slows it)

    def pids(self) -> list[int]:
        procs = [self.ctl, self.mosq, *self.fleets]
        pids = [p.pid for p in procs if p is not None and p.poll() is None]
        return pids + (broker_children(self.ctl.pid) if self.ctl is not None else [])

    def prepare(self) -> None:
        self.env = {
            **os.environ,
            "RADIO_DATA_DIR": str(self.data),
            "RADIO_DEMO": "1",
            "RADIO_HTTP_PORT": str(free_port()),
            "RADIO_NEW_USER_PASSWORD": PASSWORD,
            "PYTHONPATH": str(ROOT),
        }
        if self.database_url:
            self.env["RADIO_DATABASE_URL"] = self.database_url
        if self.kind == "embedded":
            self.env["RADIO_MQTT_EMBEDDED_PORT"] = str(free_port())
        else:
            self.mport = free_port()
            self.mconf = self.data / "mosq" / "mosquitto.conf"
            self.env["RADIO_MQTT_URL"] = (
                f"mqtt://bench-controller:ctl-{random.getrandbits(64):x}@127.0.0.1:{self.mport}"
            )
            self.env["RADIO_BROKER_RELOAD_COMMAND"] = f"pkill -HUP -f {self.mconf}"
        sh = {"env": self.env, "cwd": ROOT, "check": True, "capture_output": True}
        subprocess.run([*RADIO, "db", "upgrade"], **sh)  # the schema first: `serve` checks it
        subprocess.run([*RADIO, "area", "add", "xa", "--name", "Xã", "--kind", "commune"], **sh)
        subprocess.run([*RADIO, "user", "add", "bench", "--role", "admin"], **sh)
        from controller.core.config import Settings
        from radio.simnodes import ensure_sim_nodes

        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            provs = ensure_sim_nodes(Settings(), self.n, "xa")
        finally:
            os.environ.clear()
            os.environ.update(old)
        start = 0
        for k, m in enumerate(self.groups):
            d = self.data / f"fleet{k}"
            d.mkdir()
            for p in provs[start : start + m]:
                (d / f"{p['node_id']}.json").write_text(json.dumps(p))
            start += m
        if self.kind == "mosquitto":
            broker = self.data / "broker"
            self.mconf.parent.mkdir(parents=True, exist_ok=True)
            self.mosq = start_mosquitto(
                self.mconf.parent, self.mport, broker / "passwd", broker / "acl"
            )

    def start_controller(self) -> None:
        import httpx

        base = f"http://127.0.0.1:{self.env['RADIO_HTTP_PORT']}"
        out = open(self.data / "controller.log", "wb")  # noqa: SIM115
        self.ctl = subprocess.Popen(
            [*self.controller_cmd, "serve", "--log-level", "WARNING"],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + self.start_timeout
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or self.ctl.poll() is not None:
                raise RuntimeError(
                    "controller did not start: see " + str(self.data / "controller.log")
                )
            time.sleep(0.2)
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=120)
        self.login()

    def announce(self, text: str = "Xin thông báo: chiều nay họp dân lúc 14 giờ.") -> int:
        """A spoken announcement (rendered by the controller); its id."""
        r = self.http.post("/announcements", json={"title": "Thông báo", "text": text})
        r.raise_for_status()
        return int(r.json()["id"])

    def schedule(self, announcement_id: int, at: datetime) -> dict[str, Any]:
        """The announcement once at `at`, for every node (area xa)."""
        body = {
            "announcement_id": announcement_id,
            "starts_at": at.isoformat(),
            "targets": {"areas": ["xa"]},
        }
        r = self.http.post("/schedules", json=body)
        r.raise_for_status()
        return dict(r.json())

    def dispose(self) -> None:
        """Stop everything; the data directory is kept when RADIO_BENCH_KEEP is set."""
        self.close()
        if os.environ.get("RADIO_BENCH_KEEP"):
            log(f"kept {self.data}")
        else:
            shutil.rmtree(self.data, ignore_errors=True)

    def login(self) -> None:
        """A fresh access token (they last 15 minutes: a long bench logs in again)."""
        tok = self.http.post("/auth/token", data={"username": "bench", "password": PASSWORD})
        tok.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"

    def start_fleet(self, k: int) -> float:
        out = open(self.data / f"fleet{k}.log", "wb")  # noqa: SIM115
        t = time.time()
        self.fleets.append(
            subprocess.Popen(
                [
                    *self.fleet_cmd,
                    "--provision-dir",
                    str(self.data / f"fleet{k}"),
                    "--status-file",
                    str(self.data / f"fleet{k}.status.json"),
                    "--log-level",
                    "WARNING",
                    *self.fleet_args,
                ],
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        )
        return t

    def online(self) -> int:
        return int(self.http.get("/nodes", params={"status": "online", "limit": 1}).json()["total"])

    def wait_online(self, count: int) -> float:
        t = time.time()
        deadline = t + 60 + count / 20
        while (c := self.online()) < count:
            if time.time() > deadline:
                raise TimeoutError(f"only {c} of {count} nodes came online")
            # The list of every node is work for the controller too: ask less often when large.
            time.sleep(max(0.5, count / 2000))
        return time.time() - t

    def prefetching(self) -> int:
        """Nodes still fetching alert templates, from the fleets' status files (-1: unknown)."""
        total = 0
        for k in range(len(self.fleets)):
            try:
                total += json.loads((self.data / f"fleet{k}.status.json").read_text())[
                    "prefetching"
                ]
            except (OSError, ValueError, KeyError):
                return -1
        return total

    def settle(self) -> float:
        """Let template prefetching finish: at least SETTLE_MIN_S, until no node is still
        fetching templates (a process fetches a few at a time: minutes for thousands of nodes),
        then until CPU is quiet."""
        t = time.time()
        time.sleep(SETTLE_MIN_S)
        while self.prefetching() != 0 and time.time() - t < PREFETCH_MAX_S:
            time.sleep(2.0)
        log(f"  templates pre-fetched everywhere after {time.time() - t:.0f} s")
        hz = os.sysconf("SC_CLK_TCK")
        t_quiet = time.time()
        while time.time() - t_quiet < SETTLE_MAX_S:
            a = cpu_ticks(self.pids())
            time.sleep(2.0)
            if (cpu_ticks(self.pids()) - a) / hz / 2.0 < QUIET_CORES:
                break
        return time.time() - t

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        for p in self.fleets:
            stop(p)
        stop(self.ctl, 20)
        stop(self.mosq)

    def tail(self) -> str:
        parts = []
        for name in ["controller.log", *(f"fleet{k}.log" for k in range(len(self.groups)))]:
            p = self.data / name
            if p.exists():
                parts.append(f"--- {name}\n" + p.read_text(errors="replace")[-1500:])
        return "\n".join(parts)


def alert_view(s: System, aid: str, **page: Any) -> dict[str, Any]:
    r = s.http.get(f"/alerts/{aid}", params={"silent_after_s": 3600, **page})
    r.raise_for_status()
    return r.json()


def profile(s: System, seconds: int = 3) -> list[subprocess.Popen[Any]]:
    """py-spy, in collapsed-stack form, on the controller and each fleet for the first seconds
    of an alert (it slows what it samples: profile runs are not for the tables)."""
    assert PROFILE_DIR is not None
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    spy = str(Path(PY).with_name("py-spy"))
    spies = []
    for pid in s.pids():
        out = PROFILE_DIR / f"{s.kind}-{s.n}-{pid}-{int(time.time())}.txt"
        cmd = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200"]
        cmd += ["--format", "raw", "--nonblocking", "-o", str(out)]
        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # attached before the call
    return spies


def issue_and_watch(
    s: System, body: dict[str, Any], expect: int, timeout: float, late: Any = None
) -> dict[str, Any]:
    """POST the alert, then poll its counts until `expect` nodes have started; the per-node
    view (every node's stamps) is read once at the end. The polls ask for the counts and one
    node, as a console on a phone asks for a page: reading all the nodes' rows while the alert
    fans out took the cores from the emulated nodes being measured (at 10,000 nodes one read
    of the whole view costs the controller about a quarter of a second)."""
    fleet = [p.pid for p in s.fleets]
    idle_from, idle_ticks = time.time(), cpu_ticks(fleet)
    time.sleep(CPU_IDLE_S)  # the fleets' own cost meanwhile (heartbeats, timers)
    idle_rate = (cpu_ticks(fleet) - idle_ticks) / (time.time() - idle_from)
    spies = profile(s) if PROFILE_DIR is not None else []
    busy_ticks = cpu_ticks(fleet)
    t0 = time.time()
    r = s.http.post("/alerts", json=body)
    r.raise_for_status()
    api_s = time.time() - t0
    aid = r.json()["id"]
    seen_received = seen_started = None
    late_at = None
    deadline = t0 + timeout
    while True:
        if late is not None and late_at is None and time.time() - t0 >= late[0]:
            late_at = late[1]()
        counts = alert_view(s, aid, limit=1)["counts"]
        now = time.time() - t0
        nrec = sum(counts.values()) - counts.get("pending", 0) - counts.get("silent", 0)
        nst = sum(counts.get(k, 0) for k in ("playing", "done", "stopped"))
        if seen_received is None and nrec >= expect:
            seen_received = now
        if nst >= expect:
            seen_started = now
            break
        if time.time() > deadline:
            break
        time.sleep(VIEW_POLL_S)
    time.sleep(CPU_AFTER_S)  # the last confirmations leave the nodes (they wait for quiet)
    busy_s = time.time() - t0
    last_sent = max(
        json.loads((s.data / f"fleet{k}.status.json").read_text()).get("last_report_at", 0.0)
        for k in range(len(s.fleets))
    )
    alert_ticks = cpu_ticks(fleet) - busy_ticks - idle_rate * busy_s
    for spy in spies:
        spy.wait()
    v = alert_view(s, aid)
    rows = v["nodes"]
    rec = {x["node_id"]: when(x["received_at"]) for x in rows}
    st = {x["node_id"]: when(x["started_at"]) for x in rows}
    return {
        "id": aid,
        "t0": t0,
        "api_s": api_s,
        "rows": len(rows),
        "rec": rec,
        "st": st,
        "seen_received": seen_received,
        "seen_started": seen_started,
        "counts": v["counts"],
        "late_at": late_at,
        "duration_s": r.json()["duration_s"],
        # The emulators' CPU for the alert, per node: receive, verify, journal, take the
        # speaker, start, confirm (above their idle rate just before).
        "node_cpu_us": max(0.0, alert_ticks) / CLOCK_TICKS * 1e6 / expect,
        # When the last node's report went out (the fleets' status, written every 2 s).
        "last_sent": last_sent - t0 if last_sent else math.nan,
    }


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    t0 = res["t0"]
    rec = [t - t0 for t in res["rec"].values() if t is not None]
    st = [t - t0 for t in res["st"].values() if t is not None]
    gap = [
        res["st"][k] - res["rec"][k]
        for k in res["rec"]
        if res["rec"][k] is not None and res["st"].get(k) is not None
    ]
    return {
        "received": len(rec),
        "started": len(st),
        "rec": stats(rec) if rec else (math.nan,) * 3,
        "st": stats(st) if st else (math.nan,) * 3,
        "gap": stats(gap) if gap else (math.nan,) * 3,
    }


def run_system(kind: str, n: int, free_text: bool) -> list[dict[str, Any]]:
    s = System(kind, n, split(n))
    out: list[dict[str, Any]] = []
    try:
        s.prepare()
        s.start_controller()
        for k in range(len(s.groups)):
            s.start_fleet(k)
        up = s.wait_online(n)
        settled = s.settle()
        log(f"{kind} {n}: online in {up:.1f} s, settled {settled:.1f} s; issuing template alert")
        mem_before = rss_mb(s.ctl.pid) if s.ctl else 0
        res = issue_and_watch(
            s, {"areas": ["xa"], "template": "flood", "repeat": 1}, n, 30 + n / 50
        )
        out.append(
            {
                "kind": kind,
                "n": n,
                "alert": "template (flood), cached",
                **res,
                **summarise(res),
                "ctl_mb": (mem_before, rss_mb(s.ctl.pid)),
                "fleet_mb": sum(rss_mb(p.pid) for p in s.fleets),
            }
        )
        log(f"  template: {out[-1]['counts']}")
        emit_row(out[-1])
        if free_text and out[-1]["started"] == n:
            s.http.post(f"/alerts/{res['id']}/cancel").raise_for_status()
            time.sleep(3 + n / 500)
            text = (
                f"Thông báo khẩn số {random.randint(100, 999)}: nước sông Hồng đang lên nhanh. "
                "Bà con ở ven sông di chuyển người và tài sản lên chỗ cao ngay."
            )
            res2 = issue_and_watch(s, {"areas": ["xa"], "text": text, "repeat": 1}, n, 30 + n / 50)
            out.append(
                {
                    "kind": kind,
                    "n": n,
                    "alert": "free text, audio inside the alert",
                    **res2,
                    **summarise(res2),
                }
            )
            log(f"  free text: {out[-1]['counts']}")
            emit_row(out[-1])
            last = res2["id"]
            # More template alerts for the delivery's median (one fan-out is a noisy sample).
            for k in range(1, ROUNDS):
                s.http.post(f"/alerts/{last}/cancel")
                time.sleep(3 + n / 500)
                again = issue_and_watch(
                    s, {"areas": ["xa"], "template": "flood", "repeat": 1}, n, 30 + n / 50
                )
                last = again["id"]
                out.append(
                    {"kind": kind, "n": n, "alert": f"template (flood), round {k + 1}", **again}
                    | summarise(again)
                )
                emit_row(out[-1])
        return out
    except Exception:
        log(s.tail())
        raise
    finally:
        s.close()
        if not os.environ.get("RADIO_BENCH_KEEP"):
            shutil.rmtree(s.data, ignore_errors=True)


def run_offline(kind: str, n: int = 1000, late_after_s: float = 10.0) -> dict[str, Any]:
    """Only 90 % online when the alert (repeat 0, 5 min) goes out; the rest start later."""
    late_n = n // 10
    s = System(kind, n, [n - late_n, late_n])
    try:
        s.prepare()
        s.start_controller()
        s.start_fleet(0)
        s.wait_online(n - late_n)
        s.settle()
        log(
            f"offline: {n - late_n} online; issuing repeat-0 alert, {late_n} more in {late_after_s:.0f} s"
        )
        res = issue_and_watch(
            s,
            {"areas": ["xa"], "template": "flood", "repeat": 0, "expires_in_min": 5},
            n,
            late_after_s + 60,
            late=(late_after_s, lambda: s.start_fleet(1)),
        )
        late_ids = sorted(
            json.loads(p.read_text())["node_id"] for p in (s.data / "fleet1").glob("*.json")
        )
        la = res["late_at"]
        early = [k for k in res["st"] if k not in set(late_ids)]
        late_st = [res["st"][k] - la for k in late_ids if res["st"].get(k) is not None]
        late_rec = [res["rec"][k] - la for k in late_ids if res["rec"].get(k) is not None]
        early_st = [res["st"][k] - res["t0"] for k in early if res["st"].get(k) is not None]
        late_gap = [
            res["st"][k] - res["rec"][k]
            for k in late_ids
            if res["st"].get(k) is not None and res["rec"].get(k) is not None
        ]
        log(f"  offline: {res['counts']}")
        return {
            "kind": kind,
            "n": n,
            "late_n": late_n,
            "late_after_s": la - res["t0"],
            "started_total": sum(v is not None for v in res["st"].values()),
            "early_started": len(early_st),
            "early_st": stats(early_st) if early_st else (math.nan,) * 3,
            "late_started": len(late_st),
            "late_rec": stats(late_rec) if late_rec else (math.nan,) * 3,
            "late_st": stats(late_st) if late_st else (math.nan,) * 3,
            "late_gap": stats(late_gap) if late_gap else (math.nan,) * 3,
            "seen_started": res["seen_started"],
        }
    except Exception:
        log(s.tail())
        raise
    finally:
        s.close()
        if not os.environ.get("RADIO_BENCH_KEEP"):
            shutil.rmtree(s.data, ignore_errors=True)


# --- report ----------------------------------------------------------------------------------------


def emit_row(r: dict[str, Any]) -> None:
    """As soon as a figure exists, so that an interrupted run still leaves its results."""
    log(
        f"  RESULT {r['kind']} {r['n']} {r['alert']}: API {r['api_s']:.3f} s; received "
        f"{r['received']}/{r['n']} p50/p95/max {f3(r['rec'])}; started {r['started']}/{r['n']} "
        f"p50/p95/max {f3(r['st'])}; received->started p50/max {r['gap'][0]:.3f}/{r['gap'][2]:.3f}; "
        f"controller saw all started at {r['seen_started']}; emulator CPU per node "
        f"{r['node_cpu_us']:.0f} µs"
    )


def f3(t: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.3f}" for x in t)


def main() -> None:
    global ROUNDS
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 nodes on the embedded broker only")
    ap.add_argument("--with-5000", action="store_true", help="add 5,000 nodes on Mosquitto")
    ap.add_argument("--no-offline", action="store_true")
    ap.add_argument("--settle", type=float, default=None, help="fixed wait before the alert, s")
    ap.add_argument("--only", help="one row, e.g. mosquitto:1000 (its baseline too)")
    ap.add_argument("--profile", type=Path, help="write py-spy samples of the alert here")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="template alerts per row")
    args = ap.parse_args()
    ROUNDS = max(1, args.rounds)
    global PROFILE_DIR
    PROFILE_DIR = args.profile
    if args.settle is not None:
        global SETTLE_MIN_S, SETTLE_MAX_S
        SETTLE_MIN_S = SETTLE_MAX_S = args.settle
    plan = [("embedded", 100), ("embedded", 1000), ("mosquitto", 1000), ("mosquitto", 5000)]
    if args.quick:
        plan = [("embedded", 100)]
    if not args.with_5000:
        plan = [p for p in plan if p[1] != 5000]
    if args.only:
        kind, _, count = args.only.partition(":")
        plan = [(kind, int(count))]
    if shutil.which("mosquitto") is None:
        log("mosquitto not installed: Mosquitto rows skipped")
        plan = [p for p in plan if p[0] != "mosquitto"]
    started = time.time()
    rows: list[dict[str, Any]] = []
    bases: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, n in plan:
        rows += run_system(kind, n, free_text=True)
        runs = []
        for k in range(ROUNDS):
            log(f"baseline {kind} {n} ({k + 1} of {ROUNDS})")
            runs.append(baseline(kind, n))
            log(
                f"  RESULT baseline {kind} {n}: {runs[-1]['received']} received, "
                f"p50/p95/max {f3(stats(runs[-1]['lat']))}"
            )
        bases[(kind, n)] = runs
        log(f"  elapsed {time.time() - started:.0f} s")
    off_kind = "mosquitto" if shutil.which("mosquitto") else "embedded"
    offline = None if args.quick or args.no_offline else run_offline(off_kind)

    print(
        "\n### Delivery: API call → every node received and verified the alert "
        "(beside a bare broker's fan-out of one message)\n"
    )
    print(
        "| broker | nodes | rounds | alert: received p50 / p95 / max, s (medians) "
        "| bare broker: p50 / p95 / max, s (medians) | ratio p95 | ratio max | ≤ 2.0× (max) "
        "| emulator CPU per node, µs |"
    )
    print("|---|---:|---:|---|---|---:|---:|---|---:|")
    for kind, n in plan:
        mine = [r for r in rows if (r["kind"], r["n"]) == (kind, n) and "template" in r["alert"]]
        if not mine or (kind, n) not in bases:
            continue
        # The median over the rounds of each statistic, the alert's beside the bare broker's.
        alert: tuple[float, float, float] = tuple(  # type: ignore[assignment]
            statistics.median(r["rec"][i] for r in mine) for i in range(3)
        )
        bare: tuple[float, float, float] = tuple(  # type: ignore[assignment]
            statistics.median(stats(b["lat"])[i] for b in bases[(kind, n)]) for i in range(3)
        )
        got = min(r["received"] for r in mine)
        recv = f" ({got} of {n})" if got < n else ""
        cpu = statistics.median(r["node_cpu_us"] for r in mine)
        rp95, rmax = alert[1] / bare[1], alert[2] / bare[2]
        print(
            f"| {kind} | {n} | {len(mine)} | {f3(alert)}{recv} | {f3(bare)} "
            f"| {rp95:.1f}× | {rmax:.1f}× | {'met' if rmax <= 2.0 else 'not met'} | {cpu:.0f} |"
        )

    print("\n### End to end: API call → every node playing (node-stamped `started_at`)\n")
    print(
        "| broker | nodes | alert (media path) | API call returned, s | started p50 / p95 / max, s "
        "| received → started p50 / max, s | controller view showed all started, s "
        "| view behind the last node's start, s | last report sent, s | view behind it, s "
        "| ≤ 1 s (max) | view within 1 s (1,000) / 2 s (5,000) of the last report |"
    )
    print("|---|---:|---|---:|---|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        seen = f"{r['seen_started']:.2f}" if r["seen_started"] is not None else "timeout"
        behind = r["seen_started"] - r["st"][2] if r["seen_started"] is not None else math.nan
        # The view polls every VIEW_POLL_S: it saw all at most that long after they were shown.
        after_sent = (
            r["seen_started"] - r["last_sent"] if r["seen_started"] is not None else math.nan
        )
        view_goal = 1.0 if r["n"] <= 1000 else 2.0
        st_note = f" ({r['started']} of {r['n']})" if r["started"] < r["n"] else ""
        print(
            f"| {r['kind']} | {r['n']} | {r['alert']} | {r['api_s']:.3f} | {f3(r['st'])}{st_note} "
            f"| {r['gap'][0]:.3f} / {r['gap'][2]:.3f} | {seen} | {behind:.2f} "
            f"| {r['last_sent']:.2f} | {after_sent:.2f} "
            f"| {'met' if r['started'] == r['n'] and r['st'][2] <= 1.0 else 'not met'} "
            f"| {'met' if after_sent <= view_goal else 'not met'} |"
        )

    print("\n### Resources while the template alert ran\n")
    print("| broker | nodes | controller RSS MB (before → after) | fleet RSS MB (all processes) |")
    print("|---|---:|---|---:|")
    for r in rows:
        if "ctl_mb" in r:
            print(
                f"| {r['kind']} | {r['n']} | {r['ctl_mb'][0]:.0f} → {r['ctl_mb'][1]:.0f} "
                f"| {r['fleet_mb']:.0f} |"
            )

    if offline is not None:
        o = offline
        print(
            "\n### 10 % offline: 900 online at the alert (repeat 0, expires in 5 min), "
            "100 started later\n"
        )
        print(
            "| broker | nodes | late ones started after alert, s | started (all) | on time: started "
            "p50 / p95 / max after API call, s | late: received p50 / p95 / max after their "
            "launch, s | late: started p50 / p95 / max after launch, s | late: received → "
            "started p50 / max, s |"
        )
        print("|---|---:|---:|---|---|---|---|---|")
        print(
            f"| {o['kind']} | {o['n']} | {o['late_after_s']:.1f} | {o['started_total']} of {o['n']} "
            f"({o['early_started']} + {o['late_started']} late) | {f3(o['early_st'])} "
            f"| {f3(o['late_rec'])} | {f3(o['late_st'])} | {o['late_gap'][0]:.3f} / "
            f"{o['late_gap'][2]:.3f} |"
        )
    print(f"\ntotal run {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_amqtt":
        _amqtt_broker(int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--_subs":
        _subscribers(
            int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]), Path(sys.argv[6])
        )
    else:
        main()
