"""Relay fan-out: one station pulled once by the controller and served to N listeners at once,
beside a bare HTTP server fanning out the same encoding to as many listeners.

A station (ffmpeg making a sine in real time, served over HTTP on 127.0.0.1, as the relay tests
do) is written in a playlist as a `via_controller` stream entry. The controller (`radio serve`,
embedded broker) reads it with its own HTTP client into one ffmpeg and one hub, and serves
`/media/relay/<entry>.mp3`.
A few simulated nodes play it through a schedule the whole time; for each N, a reader process
opens N plain HTTP/1.1 connections to the same URL, decodes the chunked responses into MP3
frames and counts them over a window. The bare server (a second process) has ffmpeg pull the
station with the same encoding and writes every chunk to every connection, nothing else.

Measured per N, for both: listeners that kept up (received at least 95 % of the audio the
window lasted, and were not cut off), audio received per wall-clock second, payload and wire
bytes per listener (HTTP chunk framing included), the server's CPU (its ffmpeg apart) and
resident memory.

Run: .venv/bin/python bench/bench_relay.py [--listeners 50 200 500 1000] [--window 20]
(~6 min on 2 cores; the readers share the machine with the servers they measure)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_live import register  # noqa: E402  (the area, the admin and the nodes)

PASSWORD = "measure-pw-2026"
KEPT_UP = 0.95  # a listener keeps up if it got this share of the window's audio
FRAME_MS = 24.0  # MPEG-1 layer III at 48 kHz: 1152 samples


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes: CPU and memory from /proc -----------------------------------------------------


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def ffmpeg_children(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        try:
            if "ffmpeg" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode():
                found.append(child)
        except OSError:
            pass
    return found


@dataclass
class Usage:
    wall: float
    server: float
    ffmpeg: float
    rss: float

    @classmethod
    def of(cls, pid: int) -> Usage:
        encoders = ffmpeg_children(pid)
        return cls(time.monotonic(), cpu_s(pid), sum(cpu_s(p) for p in encoders), rss_mb(pid))


# --- the listeners (a child process) ----------------------------------------------------------


class Listener:
    """One HTTP/1.1 response read to the end: chunked framing removed, MP3 frames counted."""

    def __init__(self) -> None:
        from protocol.audio_frames import FrameReader

        self.frames = FrameReader()
        self.wire = 0
        self.payload = 0
        self.count = 0
        self.ended = False
        self.first = asyncio.Event()

    async def run(self, host: str, port: int, path: str, token: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            head = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            )
            writer.write(head.encode() + b"Icy-MetaData: 0\r\n\r\n")
            status = await reader.readuntil(b"\r\n\r\n")
            self.wire += len(status)
            if b" 200 " not in status.split(b"\r\n", 1)[0]:
                raise RuntimeError(status.split(b"\r\n", 1)[0].decode())
            chunked = b"transfer-encoding: chunked" in status.lower()
            while True:
                if chunked:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    data = await reader.readexactly(size + 2)
                    self.wire += len(size_line) + len(data)
                    if size == 0:
                        break
                    data = data[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        break
                    self.wire += len(data)
                self.payload += len(data)
                self.count += len(self.frames.feed(data))
                self.first.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.ended = True
            self.first.set()
            writer.close()

    def snapshot(self) -> tuple[int, int, int, bool]:
        return self.wire, self.payload, self.count, self.ended


def readers_main(url: str, token: str, count: int, window: float) -> None:
    """Open `count` listeners; print `start` when all hear audio, then `end <json>`."""
    from urllib.parse import urlparse

    u = urlparse(url)

    async def run() -> None:
        listeners = [Listener() for _ in range(count)]
        tasks = []
        for k, lst in enumerate(listeners):
            tasks.append(
                asyncio.create_task(lst.run(u.hostname or "", u.port or 80, u.path, token))
            )
            if k % 50 == 49:
                await asyncio.sleep(0.05)  # a village's nodes do not all ask in one millisecond
        try:
            await asyncio.wait_for(asyncio.gather(*(lst.first.wait() for lst in listeners)), 120)
        except TimeoutError:
            heard = sum(lst.first.is_set() for lst in listeners)
            errors = {t.exception() for t in tasks if t.done() and t.exception()}
            print(f"only {heard} of {count} heard audio; {errors or ''}", file=sys.stderr)
            raise
        await asyncio.sleep(2.0)
        before = [lst.snapshot() for lst in listeners]
        t0 = time.monotonic()
        print("start", flush=True)
        await asyncio.sleep(window)
        after = [lst.snapshot() for lst in listeners]
        lasted = time.monotonic() - t0
        result = [
            {
                "wire": a[0] - b[0],
                "payload": a[1] - b[1],
                "frames": a[2] - b[2],
                "ended": a[3],
            }
            for b, a in zip(before, after, strict=True)
        ]
        print("end " + json.dumps({"lasted": lasted, "listeners": result}), flush=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


# --- the bare server (a child process) --------------------------------------------------------


def bare_main(station: str, port: int, kbps: int, ready: Path) -> None:
    """The floor: one ffmpeg pulling the station itself with the controller's encoding, and
    each chunk written to every listener (the controller reads the station with its own
    client and feeds ffmpeg's input instead: controller/core/station_hosts.py)."""
    from audio.ffmpeg import ffmpeg_exe
    from controller.live.live_encoder import mp3_out

    args = ["-reconnect", "1", "-reconnect_streamed", "1", "-i", station, *mp3_out(kbps)]
    listeners: set[asyncio.StreamWriter] = set()
    limit = 200 * 4096  # about what the controller's hub lets a listener fall behind

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        listeners.add(writer)
        try:
            await reader.read()
        except ConnectionError:
            pass
        finally:
            listeners.discard(writer)
            writer.close()

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        ready.write_text("ready")
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            for writer in list(listeners):
                if writer.transport.get_write_buffer_size() > limit:
                    listeners.discard(writer)
                    writer.transport.abort()
                else:
                    writer.write(framed)
        server.close()

    loop_stop = asyncio.Event()

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, loop_stop.set)
        task = asyncio.create_task(run())
        await loop_stop.wait()
        task.cancel()

    asyncio.run(main())


# --- real simulated nodes on the controller (a child process) ---------------------------------


def fleet_main(provision_dir: Path, out: Path) -> None:
    """The nodes, counting the frames their player gets; totals written at SIGTERM."""
    import firmware_sim.node as node_module
    from firmware_sim.fleet import Fleet, load_fleet
    from firmware_sim.player import SimulatedPlayer

    heard: dict[str, list[float]] = {}  # node: [frames, first, last]

    class CountingPlayer(SimulatedPlayer):
        def __init__(self, node_id: str) -> None:
            super().__init__()
            self.node_id = node_id

        def open_stream(self, fmt, volume):  # type: ignore[no-untyped-def]
            sink = super().open_stream(fmt, volume)
            feed = sink.feed

            def count(frames: list[bytes]) -> None:
                feed(frames)
                now = time.monotonic()
                h = heard.setdefault(self.node_id, [0, now, now])
                h[0] += len(frames)
                h[2] = now

            sink.feed = count  # type: ignore[method-assign]
            return sink

    node_module.make_player = lambda config: CountingPlayer(config.node_id)  # type: ignore[attr-defined]

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        fleet = asyncio.create_task(Fleet(load_fleet(provision_dir)).run(display=False))
        await stop.wait()
        fleet.cancel()
        await asyncio.gather(fleet, return_exceptions=True)
        out.write_text(json.dumps(heard))

    asyncio.run(run())


# --- the measurement (this process) -----------------------------------------------------------


@dataclass
class Round:
    server: str
    listeners: int
    kept_up: int
    cut_off: int
    audio_ratio: float  # median audio seconds received per wall second
    payload_kbps: float  # median per listener
    wire_kbps: float
    cpu: float  # share of one core, the server's own process
    ffmpeg_cpu: float
    rss: float  # MB at the end of the window
    rss_idle: float


async def one_round(
    server: str, pid: int, url: str, token: str, count: int, window: float
) -> Round:
    idle_rss = rss_mb(pid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--read", url, "--token", token, "--count", str(count),
        "--window", str(window), stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=2**24,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 180)
    if line.strip() != b"start":
        raise RuntimeError(f"{server}: {count} listeners did not all start: {line!r}")
    u0 = Usage.of(pid)
    line = await asyncio.wait_for(proc.stdout.readline(), window + 60)
    u1 = Usage.of(pid)
    await proc.wait()
    data = json.loads(line.decode().removeprefix("end "))
    lasted = data["lasted"]
    rows = data["listeners"]
    ratios = [r["frames"] * FRAME_MS / 1000 / lasted for r in rows]
    wall = u1.wall - u0.wall
    return Round(
        server=server,
        listeners=count,
        kept_up=sum(
            1 for r, q in zip(rows, ratios, strict=True) if q >= KEPT_UP and not r["ended"]
        ),
        cut_off=sum(1 for r in rows if r["ended"]),
        audio_ratio=statistics.median(ratios),
        payload_kbps=statistics.median(r["payload"] for r in rows) * 8 / lasted / 1000,
        wire_kbps=statistics.median(r["wire"] for r in rows) * 8 / lasted / 1000,
        cpu=(u1.server - u0.server) / wall,
        ffmpeg_cpu=(u1.ffmpeg - u0.ffmpeg) / wall,
        rss=u1.rss,
        rss_idle=idle_rss,
    )


def spawn(
    args: list[str], env: dict[str, str] | None = None, log_to: Path | None = None
) -> subprocess.Popen[bytes]:
    err = open(log_to, "wb") if log_to is not None else None  # noqa: SIM115
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)


def start_controller(work: Path, nodes: int) -> tuple[subprocess.Popen[bytes], str]:
    """`radio serve` (embedded broker) with an admin, an area and `nodes` nodes registered."""
    from tests.conftest import free_port, wait_port

    port = free_port()
    env = {
        **os.environ, "RADIO_DATA_DIR": str(work / "data"), "RADIO_DEMO": "1",
        "RADIO_HTTP_PORT": str(port), "RADIO_MQTT_EMBEDDED_PORT": str(free_port()),
        "RADIO_NEW_USER_PASSWORD": PASSWORD, "RADIO_PRERENDER_ALERT_TEMPLATES": "0",
        "RADIO_STREAM_ALLOWED_HOSTS": "127.0.0.1", "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    register(env, nodes, work / "prov")
    ctl = spawn(
        [sys.executable, "-m", "radio.cli", "serve", "--log-level", "WARNING"],
        env,
        work / "controller.log",
    )
    try:
        wait_port(port, 60)
    except TimeoutError:
        ctl.kill()
        raise RuntimeError((work / "controller.log").read_text()[-2000:]) from None
    return ctl, f"http://127.0.0.1:{port}"


async def measure(
    counts: list[int], window: float, nodes: int, kbps: int, work: Path
) -> tuple[list[Round], str]:
    import httpx

    from tests.conftest import free_port, wait_port
    from tests.stream_station import Station

    station = await Station("mp3", kbps=kbps).start()
    ctl, base = await asyncio.to_thread(start_controller, work, nodes)
    bare_port = free_port()
    bare_ready = work / "bare.ready"
    bare = spawn(
        [sys.executable, __file__, "--bare-serve", station.url, "--port", str(bare_port),
         "--kbps", str(kbps), "--ready", str(bare_ready)], log_to=work / "bare.log",
    )  # fmt: skip
    fleet: subprocess.Popen[bytes] | None = None
    rounds: list[Round] = []
    nodes_line = ""
    try:
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=60) as http:
            form = {"username": "bench", "password": PASSWORD}
            token = (await http.post("/auth/token", data=form)).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            entry = {"kind": "stream", "url": station.url, "duration_ms": 3_600_000}
            body = {"title": "Tiếp sóng đài tỉnh", "items": [{**entry, "via_controller": True}]}
            r = await http.post("/playlists", json=body)
            r.raise_for_status()
            playlist = r.json()["id"]
            with sqlite3.connect(work / "data" / "radio.db") as db:
                (entry_id,) = db.execute(
                    "SELECT id FROM playlistitem WHERE playlist_id = ?", (playlist,)
                ).fetchone()
            relay_url = f"{base}/media/relay/{entry_id}.mp3"
            if nodes:
                fleet = spawn(
                    [sys.executable, __file__, "--fleet", str(work / "prov"), "--out",
                     str(work / "fleet.json")], log_to=work / "fleet.log",
                )  # fmt: skip
                online = {"status": "online"}
                while len((await http.get("/nodes", params=online)).json()) < nodes:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                starts = datetime.now(UTC) + timedelta(seconds=3)
                r = await http.post(
                    "/schedules",
                    json={"announcement_id": playlist, "starts_at": starts.isoformat(),
                          "targets": {"areas": ["xa"]}},
                )  # fmt: skip
                r.raise_for_status()
            await asyncio.to_thread(wait_port, bare_port, 30)
            for _ in range(100):
                if bare_ready.exists():
                    break
                await asyncio.sleep(0.1)
            bare_url = f"http://127.0.0.1:{bare_port}/live.mp3"
            for count in counts:
                for name, pid, url in (
                    ("controller", ctl.pid, relay_url),
                    ("bare", bare.pid, bare_url),
                ):
                    log(f"{name}: {count} listeners")
                    rounds.append(await one_round(name, pid, url, token, count, window))
                    await asyncio.sleep(2)
        if fleet is not None:
            fleet.send_signal(signal.SIGTERM)
            await asyncio.to_thread(fleet.wait, 30)
            heard = json.loads((work / "fleet.json").read_text())
            rates = [h[0] * FRAME_MS / 1000 / (h[2] - h[1]) for h in heard.values() if h[2] > h[1]]
            nodes_line = (
                f"{len(heard)} of {nodes} simulated nodes played the relay through the controller "
                f"the whole time; audio per second: min {min(rates, default=0):.3f} s, median "
                f"{statistics.median(rates or [0]):.3f} s"
            )
    finally:
        for proc in (ctl, bare, fleet):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, 30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        await station.close()
    return rounds, nodes_line


def table(rounds: list[Round], kbps: int) -> str:
    lines = [
        f"| listeners | server | kept up (≥ {KEPT_UP:.0%} of real time) | audio per second "
        "(median) | per listener: payload / wire | CPU (server / its ffmpeg) | memory "
        "(idle → serving) | per listener: CPU, memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        per_cpu = r.cpu / r.listeners * 1000  # ms of CPU per second
        per_mem = (r.rss - r.rss_idle) / r.listeners * 1024
        lines.append(
            f"| {r.listeners} | {r.server} | {r.kept_up} of {r.listeners}"
            f"{f' ({r.cut_off} cut off)' if r.cut_off else ''} | {r.audio_ratio:.3f} s "
            f"| {r.payload_kbps:.1f} / {r.wire_kbps:.1f} kb/s | {r.cpu:.0%} / {r.ffmpeg_cpu:.0%} "
            f"| {r.rss_idle:.0f} → {r.rss:.0f} MB | {per_cpu:.2f} ms/s, {per_mem:.0f} KB |"
        )
    by = {(r.server, r.listeners): r for r in rounds}
    lines += ["", f"Ratios, controller ÷ bare server ({kbps} kb/s):", ""]
    lines += ["| listeners | CPU | memory growth | wire bytes per listener |", "|---|---|---|---|"]
    for count in sorted({r.listeners for r in rounds}):
        c, b = by.get(("controller", count)), by.get(("bare", count))
        if c is None or b is None:
            continue
        growth = (c.rss - c.rss_idle) / max(0.1, b.rss - b.rss_idle)
        lines.append(
            f"| {count} | {c.cpu / max(b.cpu, 1e-3):.1f}× | {growth:.1f}× "
            f"| {c.wire_kbps / max(b.wire_kbps, 1e-3):.2f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listeners", type=int, nargs="*", default=[50, 200, 500, 1000])
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--nodes", type=int, default=10, help="simulated nodes playing the relay")
    parser.add_argument("--kbps", type=int, default=64)
    parser.add_argument("--read")
    parser.add_argument("--token", default="")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--bare-serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--fleet", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.read:
        readers_main(args.read, args.token, args.count, args.window)
    elif args.bare_serve:
        bare_main(args.bare_serve, args.port, args.kbps, args.ready)
    elif args.fleet:
        fleet_main(args.fleet, args.out)
    else:
        with tempfile.TemporaryDirectory() as work:
            rounds, nodes_line = asyncio.run(
                measure(args.listeners, args.window, args.nodes, args.kbps, Path(work))
            )
        print(table(rounds, args.kbps))
        if nodes_line:
            print(f"\n{nodes_line}.")


if __name__ == "__main__":
    main()
