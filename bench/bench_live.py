"""Live latency: a marked sound entering the controller to the same sound reaching each node,
beside a bare stream server's fan-out of pre-encoded frames to as many plain HTTP readers.

The controller runs as `radio serve` (the embedded broker, or a Mosquitto of our own); the
nodes (`firmware_sim` fleet) run in a second process, as do the bare readers; the source is
this process. The source sends 48 kHz PCM over the live WebSocket at the pace of speech:
silence while the nodes tune in, then a 440 Hz tone (the mark) after silence, three times, and
reads the controller's `stats` as a console does (a client that stops reading stops answering
pings too, and loses the connection after ~50 s). A node notes when the first MP3 frame
carrying sound arrives (a frame of encoded silence has a handful of distinct byte values, one
of a tone over a hundred); the latency is that time less the time the mark's first PCM left
the source (one machine clock). A real node adds its decoder's start (one or two frames,
~50 ms) and its card's buffer (100 ms).

Also reported: how many nodes tuned in (a node that learns of the live item more than 5 s
after its start reports it missed), when the item reached the nodes, the controller's CPU
while they listen beside the bare server's, the live start's times, and the most audio the
controller had not yet taken from the source (its backlog). `--profile` samples the loops of
the controller and of the fleet (`LoopWatch`) and prints where they spent their time.

Run: .venv/bin/python bench/bench_live.py [--nodes 10 200] [--broker embedded mosquitto]
     [--profile]                                  (~5 min on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARKS = 3
PASSWORD = "measure-pw-2026"
SILENCE_S, TONE_S = 2.0, 1.0


def is_sound(frame: bytes) -> bool:
    return len(set(frame[36:])) > 20


class Marks:
    """Times at which a listener's frames turned from silence to sound."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.sounding = False

    def feed(self, frames: list[bytes]) -> None:
        for frame in frames:
            sound = is_sound(frame)
            if sound and not self.sounding:
                self.times.append(time.time())
            self.sounding = sound


# --- the listening side (second process) ---------------------------------------------------


def fleet_main(
    provision_dir: Path, out: Path, bare_url: str | None, count: int, profile: bool
) -> None:
    import httpx

    import firmware_sim.node as node_module
    from firmware_sim.fleet import Fleet, load_fleet
    from firmware_sim.player import SimulatedPlayer
    from firmware_sim.sounds import Sounds
    from protocol.audio_frames import FrameReader

    marks: dict[str, Marks] = {}

    class MarkingPlayer(SimulatedPlayer):
        def __init__(self, node_id: str) -> None:
            super().__init__()
            self.node_id = node_id

        def open_stream(self, fmt, volume):  # type: ignore[no-untyped-def]
            sink = super().open_stream(fmt, volume)
            m = marks.setdefault(self.node_id, Marks())
            feed = sink.feed

            def both(frames: list[bytes]) -> None:
                feed(frames)
                m.feed(frames)

            sink.feed = both  # type: ignore[method-assign]
            return sink

    node_module.make_player = lambda config: MarkingPlayer(config.node_id)  # type: ignore[attr-defined]

    # Each node opens a client of its own for streams. Made as is, each loads the CA bundle
    # (~35 ms of CPU): 200 nodes starting the live item at once held this process's loop
    # for seconds, so most learned of the item over 5 s late and reported it missed. A real
    # node has its own CPU; here they share one verified context.
    shared_tls = httpx.create_ssl_context()

    def stream_http(self: Sounds) -> httpx.AsyncClient:
        if self._stream_http is None:
            limits = httpx.Limits(max_connections=4)
            self._stream_http = httpx.AsyncClient(limits=limits, verify=shared_tls)
        return self._stream_http

    Sounds.stream_http = property(stream_http)  # type: ignore[method-assign,assignment]

    async def bare_reader(i: int) -> None:
        m = marks.setdefault(f"reader-{i}", Marks())
        reader = FrameReader()
        async with httpx.AsyncClient(timeout=None, verify=shared_tls) as http:
            async with http.stream("GET", bare_url or "") as resp:
                async for chunk in resp.aiter_raw():
                    m.feed(reader.feed(chunk))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        watch = LoopWatch() if profile else None
        beat = asyncio.create_task(watch.heartbeat()) if watch else None
        if bare_url:
            jobs = [asyncio.create_task(bare_reader(i)) for i in range(count)]
        else:
            jobs = [asyncio.create_task(Fleet(load_fleet(provision_dir)).run(display=False))]
        await stop.wait()
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        out.write_text(json.dumps({k: m.times for k, m in marks.items()}))
        if watch is not None and beat is not None:
            beat.cancel()
            watch.stop()
            name = "bare readers" if bare_url else f"fleet of {count} nodes"
            out.with_suffix(".profile").write_text(watch.report(name))

    asyncio.run(run())


# --- where a process's loop goes (--profile) ---------------------------------------------


class LoopWatch:
    """A process's event loop, watched: a heartbeat every 50 ms measures how late the loop
    runs, and a thread samples the loop thread's stack every 5 ms (py-spy's idea, in-process).
    `report()`: the functions (own and inclusive) most often on the stack while the loop was
    busy, overall and in each of the longest delays of the loop."""

    def __init__(self) -> None:
        import threading

        self.main_id = threading.get_ident()
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self.lags: list[tuple[float, float]] = []
        self.notes: list[str] = []
        self.up = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            frame = sys._current_frames().get(self.main_id)
            if frame is None or frame.f_code.co_filename.endswith("selectors.py"):
                continue  # idle: waiting in select
            stack = []
            while frame is not None and len(stack) < 60:
                code = frame.f_code
                where = code.co_filename.replace(str(ROOT) + "/", "")
                where = where.split("site-packages/")[-1].split("/lib/python3.11/")[-1]
                stack.append(f"{where}:{code.co_name}")
                frame = frame.f_back
            self.samples.append((time.time(), tuple(stack)))

    async def heartbeat(self) -> None:
        self.up = time.time()
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            late = time.monotonic() - t - 0.05
            if late > 0.1:
                self.lags.append((time.time(), late))

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    @staticmethod
    def _top(chosen: list[tuple[str, ...]], n: int) -> list[str]:
        import collections

        own = collections.Counter(s[0] for s in chosen)
        incl: collections.Counter[str] = collections.Counter()
        for s in chosen:
            incl.update(set(s))
        total = max(1, len(chosen))
        lines = [f"    own  {c / total:5.0%}  {f}" for f, c in own.most_common(n)]
        lines += [
            f"    incl {c / total:5.0%}  {f}"
            for f, c in incl.most_common(4 * n)
            if not f.startswith(("asyncio/", "threading", "bench/", "<frozen"))
        ][: 2 * n]
        return lines

    def report(self, title: str) -> str:
        running = [s for t, s in self.samples if t >= self.up]
        out = [f"== {title}: {len(running)} busy samples of 5 ms", *self._top(running, 12)]
        for end, late in sorted(self.lags, key=lambda x: -x[1])[:6]:
            window = [s for t, s in self.samples if end - late - 0.06 <= t <= end]
            at = time.strftime("%H:%M:%S", time.localtime(end))
            out.append(f"  loop {late * 1000:.0f} ms late at {at} ({len(window)} samples):")
            out += self._top(window, 5)
        total = sum(x for _, x in self.lags)
        out.append(f"  delays of the loop over 100 ms: {len(self.lags)}, {total:.1f} s in all")
        return "\n".join(out + self.notes) + "\n"


def serve_sampled(report: Path, log_level: str) -> None:
    """`radio serve` under a LoopWatch, the live start's two phases timed; report at exit."""
    from controller.programme.timelines import TimelineService
    from radio.cli import load_settings, serve_app, setup_logging

    watch = LoopWatch()
    compute, refresh = TimelineService.compute, TimelineService.refresh

    def timed_compute(self: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.monotonic()
        out = compute(self, *args, **kwargs)
        watch.notes.append(f"  computed {len(out)} timelines in {time.monotonic() - t:.2f} s")
        return out

    async def timed_refresh(self: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.monotonic()
        sent = await refresh(self, *args, **kwargs)
        took = time.monotonic() - t
        watch.notes.append(f"  computed and published {sent} timelines in {took:.2f} s")
        return sent

    TimelineService.compute = timed_compute  # type: ignore[method-assign]
    TimelineService.refresh = timed_refresh  # type: ignore[method-assign]

    async def run() -> None:
        beat = asyncio.create_task(watch.heartbeat())
        try:
            await serve_app(load_settings())
        finally:
            beat.cancel()
            watch.stop()
            report.write_text(watch.report("controller"))

    setup_logging(log_level)
    # uvicorn raises the signal it stopped on again once served: let that end us normally.
    signal.signal(signal.SIGTERM, lambda *_: None)
    asyncio.run(run())


# --- the controller and the source (this process) -------------------------------------------


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pcm(seconds: float, hz: int) -> bytes:
    n = int(seconds * 48000)
    if hz == 0:
        return bytes(2 * n)
    return struct.pack(
        f"<{n}h", *(int(9000 * math.sin(2 * math.pi * hz * i / 48000)) for i in range(n))
    )


class Source:
    """The officer's side of the WebSocket: PCM out at the pace of speech, and the controller's
    `stats` read as they come (a client that stops reading stops answering pings, too). The
    backlog is what was sent but had not reached the encoder at a `stats`."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.sent = 0
        self.backlog_s = 0.0
        self.reading = asyncio.create_task(self._read())

    async def speak(self, data: bytes) -> None:
        step, t0 = 1920, time.monotonic()  # 20 ms
        for k, i in enumerate(range(0, len(data), step)):
            await self.ws.send(data[i : i + step])
            self.sent += len(data[i : i + step])
            await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))

    async def _read(self) -> None:
        async for message in self.ws:
            event = json.loads(message)
            if event.get("type") == "stats":
                self.backlog_s = max(self.backlog_s, (self.sent - event["bytes_in"]) / 96000)


async def listeners_of(process: asyncio.subprocess.Process, out: Path) -> dict[str, list[float]]:
    process.send_signal(signal.SIGTERM)
    await process.wait()
    return json.loads(out.read_text())


def latencies(found: dict[str, list[float]], sent: list[float]) -> list[float]:
    out = []
    for times in found.values():
        for t_sent in sent:
            after = [t for t in times if t >= t_sent]
            if after and after[0] - t_sent < 10:
                out.append(after[0] - t_sent)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "no marks heard"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (n={len(values)})"


def start_mosquitto(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """A Mosquitto of our own on a free port, reading the controller's password and ACL files."""
    broker = directory / "broker"
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"user root\nlistener {port} 127.0.0.1\npersistence false\n"
        f"password_file {broker / 'passwd'}\nallow_anonymous false\nacl_file {broker / 'acl'}\n"
    )
    log = open(directory / "mosquitto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    from tests.conftest import wait_port

    wait_port(port)
    return proc


def register(env: dict[str, str], count: int, prov: Path) -> None:
    """The area, the admin and `count` nodes, written before the controller starts."""
    from controller.core.config import Settings
    from radio.simnodes import ensure_sim_nodes

    radio = [sys.executable, "-m", "radio.cli"]
    sh: dict[str, Any] = {"env": env, "cwd": ROOT, "check": True, "capture_output": True}
    subprocess.run([*radio, "db", "upgrade"], **sh)  # the schema first: `serve` only checks it
    subprocess.run([*radio, "area", "add", "xa", "--name", "Xã", "--kind", "commune"], **sh)
    subprocess.run([*radio, "user", "add", "bench", "--role", "admin"], **sh)
    if not count:
        return
    old = dict(os.environ)
    os.environ.update(env)
    try:
        provs = ensure_sim_nodes(Settings(), count, "xa")
    finally:
        os.environ.clear()
        os.environ.update(old)
    prov.mkdir()
    for p in provs:
        (prov / f"{p['node_id']}.json").write_text(json.dumps(p))


SETTLED = ("started", "missed", "failed", "preempted")


async def tuning(
    http: Any, auth: dict[str, str], live: dict[str, Any]
) -> tuple[int, dict[str, int]]:
    """Listeners of the stream now, and the live item's deliveries by state."""
    tuned = (await http.get(f"/api/v1/live/{live['id']}", headers=auth)).json()["listeners"]
    path = f"/api/v1/schedules/{live['schedule_id']}/deliveries"
    return tuned, (await http.get(path, headers=auth)).json()["counts"]


async def timeline_reached(http: Any, auth: dict[str, str], live: dict[str, Any]) -> str:
    """When the nodes told of the live item (their first report on it), after its start."""
    from datetime import datetime

    def ts(v: str) -> float:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()

    path = f"/api/v1/schedules/{live['schedule_id']}/deliveries"
    rows = (await http.get(path, headers=auth)).json()["deliveries"]
    late = sorted(ts(r["delivered_at"]) - ts(r["planned_start"]) for r in rows if r["delivered_at"])
    if not late:
        return "–"
    return f"{statistics.median(late):.1f} s / {late[-1]:.1f} s"


async def measure(count: int, work: Path, broker: str, profile: bool) -> str:
    import httpx
    from websockets.asyncio.client import connect

    from protocol.audio_frames import FrameReader
    from tests.conftest import free_port, wait_port

    port = free_port()
    env = {
        **os.environ, "RADIO_DATA_DIR": str(work / "data"), "RADIO_DEMO": "1",
        "RADIO_HTTP_PORT": str(port), "RADIO_NEW_USER_PASSWORD": PASSWORD,
        "RADIO_PRERENDER_ALERT_TEMPLATES": "0", "RADIO_LIVE_SOURCE_GRACE_S": "600",
        "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    mosquitto: subprocess.Popen[bytes] | None = None
    if broker == "mosquitto":
        mport = free_port()
        env["RADIO_MQTT_URL"] = (
            f"mqtt://bench-controller:ctl-{os.urandom(8).hex()}@127.0.0.1:{mport}"
        )
    else:
        env["RADIO_MQTT_EMBEDDED_PORT"] = str(free_port())
    prov = work / "prov"
    await asyncio.to_thread(register, env, count, prov)
    if broker == "mosquitto":
        mosquitto = await asyncio.to_thread(start_mosquitto, work / "data", mport)
        env["RADIO_BROKER_RELOAD_COMMAND"] = f"kill -HUP {mosquitto.pid}"
    report = work / "profile.txt"
    if profile:
        serve = [__file__, "--serve-sampled", str(report)]
    else:
        serve = ["-m", "radio.cli", "serve", "--log-level", "WARNING"]
    controller = await asyncio.create_subprocess_exec(sys.executable, *serve, env=env, cwd=ROOT)
    await asyncio.to_thread(wait_port, port, 60)
    base = f"http://127.0.0.1:{port}"
    fleet: asyncio.subprocess.Process | None = None
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            form = {"username": "bench", "password": PASSWORD}
            token = (await http.post("/api/v1/auth/token", data=form)).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            fleet_out = work / "fleet.json"
            fleet = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--fleet", str(prov), "--out", str(fleet_out),
                "--count", str(count), *(["--profile"] if profile else []),
            )  # fmt: skip
            while (  # noqa: ASYNC110
                len(
                    [
                        n
                        for n in (
                            await http.get("/api/v1/nodes", headers=auth, params={"limit": 500})
                        ).json()["items"]
                        if n["status"] == "online"
                    ]
                )
                < count
            ):
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # the fleet's first reports are in
            t_start = time.monotonic()
            live = (
                await http.post(
                    "/api/v1/live",
                    json={"title": "bench", "priority": "priority", "targets": {"areas": ["xa"]}},
                    headers=auth,
                )
            ).json()
            start_s = time.monotonic() - t_start
            ws_url = base.replace("http", "ws") + live["audio_url"] + "?format=pcm"
            sent: list[float] = []
            async with connect(ws_url, additional_headers=auth) as ws:
                await ws.recv()
                source = Source(ws)
                # Silence while the nodes tune in, until each plays it or has given it up.
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    await source.speak(pcm(0.5, 0))
                    tuned, counts = await tuning(http, auth, live)
                    if tuned >= count or (
                        sum(counts.get(k, 0) for k in SETTLED) >= count
                        and tuned >= counts.get("started", 0)
                    ):
                        break
                tune_s = time.monotonic() - t_start
                reached = await timeline_reached(http, auth, live)
                ctl_cpu, ctl_wall = cpu_s(controller.pid), time.monotonic()
                for _ in range(MARKS):
                    await source.speak(pcm(SILENCE_S, 0))
                    sent.append(time.time())
                    await source.speak(pcm(TONE_S, 440))
                await source.speak(pcm(SILENCE_S, 0))
                ctl_cpu = (cpu_s(controller.pid) - ctl_cpu) / (time.monotonic() - ctl_wall)
                source.reading.cancel()
            found = await listeners_of(fleet, fleet_out)
            await http.post(f"/api/v1/live/{live['id']}/stop", headers=auth)
    finally:
        controller.terminate()
        try:
            await asyncio.wait_for(controller.wait(), 30)
        except TimeoutError:
            controller.kill()
            await controller.wait()
        if fleet is not None and fleet.returncode is None:
            fleet.kill()
        if mosquitto is not None:
            mosquitto.terminate()
            await asyncio.to_thread(mosquitto.wait)
        for path in (report, work / "fleet.profile"):
            if profile and path.exists():
                print(path.read_text(), file=sys.stderr)

    # The bare server: the same MP3 (encoded before), each frame written on time to every reader.
    frames = FrameReader().feed(_encode(pcm(SILENCE_S, 0) + pcm(TONE_S, 440)))
    writers: set[asyncio.StreamWriter] = set()
    port = free_port()
    bare = await asyncio.start_server(lambda r, w: _serve_bare(writers, r, w), "127.0.0.1", port)
    bare_out = work / "bare.json"
    readers = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--fleet", str(prov), "--out", str(bare_out), "--count", str(count),
        "--bare", f"http://127.0.0.1:{port}/live.mp3",
    )  # fmt: skip
    while len(writers) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    bare_sent = []
    bare_cpu, bare_wall = time.process_time(), time.monotonic()
    for _ in range(MARKS):
        for k, frame in enumerate(frames):
            if is_sound(frame) and (k == 0 or not is_sound(frames[k - 1])):
                bare_sent.append(time.time())
            for writer in writers:
                writer.write(frame)
            await asyncio.sleep(0.024)
    bare_cpu = (time.process_time() - bare_cpu) / (time.monotonic() - bare_wall)
    bare_found = await listeners_of(readers, bare_out)
    for writer in writers:
        writer.close()
    bare.close()
    node_lat = latencies(found, sent)
    bare_lat = latencies(bare_found, bare_sent)
    missed = counts.get("missed", 0)
    return (
        f"| {count} | {broker} | {tuned}{f' ({missed} missed it)' if missed else ''} "
        f"| {reached} | {summary(node_lat)} | {summary(bare_lat)} "
        f"| {ctl_cpu:.0%} / {bare_cpu:.0%} | {start_s:.1f} s / {tune_s:.1f} s "
        f"| {source.backlog_s:.2f} s |"
    )


def _encode(raw: bytes) -> bytes:
    from audio.ffmpeg import ffmpeg_exe
    from controller.live.live_encoder import mp3_out

    args = [
        ffmpeg_exe(),
        "-loglevel",
        "error",
        "-f",
        "s16le",
        "-ar",
        "48000",
        "-ac",
        "1",
        "-i",
        "pipe:0",
    ]
    return subprocess.run([*args, *mp3_out(64)], input=raw, capture_output=True, check=True).stdout


async def _serve_bare(
    writers: set[asyncio.StreamWriter], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n")
    writers.add(writer)
    try:
        await reader.read()
    except ConnectionError:
        pass
    finally:
        writers.discard(writer)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="*", default=[10, 200])
    parser.add_argument(
        "--broker", nargs="+", choices=["embedded", "mosquitto"], default=["embedded", "mosquitto"]
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the loops of controller and fleet (stderr)"
    )
    parser.add_argument("--fleet", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--bare")
    parser.add_argument("--serve-sampled", type=Path)
    args = parser.parse_args()
    if args.serve_sampled:
        serve_sampled(args.serve_sampled, "INFO")
        return
    if args.fleet:
        fleet_main(args.fleet, args.out, args.bare, args.count, args.profile)
        return
    brokers = args.broker
    if "mosquitto" in brokers and shutil.which("mosquitto") is None:
        print("mosquitto is not installed: its rows are left out", file=sys.stderr)
        brokers = [b for b in brokers if b != "mosquitto"]
    print(
        "| nodes | broker | tuned in | live item at the nodes after its start (median / last) "
        "| live: PCM in → node has the frame | bare stream server "
        "| CPU while they listen: controller / bare server "
        "| live start: API answered / all tuned in | source backlog (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for broker in brokers:
        for count in args.nodes:
            with tempfile.TemporaryDirectory() as work:
                print(asyncio.run(measure(count, Path(work), broker, args.profile)), flush=True)


if __name__ == "__main__":
    main()
