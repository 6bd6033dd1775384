"""Mobile data per node: bytes on the wire between a node and the system, through counting TCP
proxies, over TLS as a province runs it (mqtts to Mosquitto; the media over the controller's
HTTP address).

Two proxies sit between the measured nodes and the system: one before Mosquitto's TLS listener
(the nodes connect with `mqtts://` and the project's CA), one before the controller's HTTP port
(the controller's public address is the proxy's, so every media download and media-token
renewal of a node goes through it). Each counts the bytes it passes in each direction and the
reads it made (about the TCP segments carrying them). Phases:

- connect: from the node's start until it is quiet (online, timeline, keys, the six alert
  templates fetched ahead);
- idle: IDLE minutes with nothing to play (heartbeats, keep-alives, timeline refreshes),
  given per day and per 30-day month;
- broadcast: one scheduled announcement (its timeline, the audio download, the reports);
- alert: one template alert (the node holds its audio already).

The proxy counts TCP payload (for TLS, the TLS records). The IP and TCP headers a mobile
operator also bills (about 52 bytes per packet with IPv4 and TCP timestamps, and the bare
acknowledgements) are not seen by a proxy: the table gives the reads beside the bytes and an
estimate with headers (each read taken as one segment and one bare acknowledgement of 52 bytes
of headers each), marked as such.

Run: .venv/bin/python bench/bench_mobile_data.py [--nodes 2] [--idle-minutes 10]
     [--heartbeat-s S] [--keepalive-s S]     (defaults: the controller's and the node's own)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_alert import System, free_port, log, wait_port

DAY_S = 86400
MONTH_DAYS = 30
HEADER_BYTES = 52  # IPv4 (20) + TCP with timestamps (32) per packet: an estimate, not measured
PACKETS_PER_READ = 2  # the segment and the bare acknowledgement it gets back (an estimate)


@dataclass
class Counter:
    up: int = 0  # node → system
    down: int = 0  # system → node
    reads_up: int = 0
    reads_down: int = 0
    connections: int = 0

    def snapshot(self) -> Counter:
        return Counter(self.up, self.down, self.reads_up, self.reads_down, self.connections)

    def minus(self, other: Counter) -> Counter:
        return Counter(
            self.up - other.up,
            self.down - other.down,
            self.reads_up - other.reads_up,
            self.reads_down - other.reads_down,
            self.connections - other.connections,
        )


@dataclass
class Proxy:
    """A TCP proxy on 127.0.0.1:port to 127.0.0.1:target that counts what it passes."""

    target: int
    port: int = field(default_factory=free_port)
    count: Counter = field(default_factory=Counter)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.count.up += len(data)
                    self.count.reads_up += 1
                else:
                    self.count.down += len(data)
                    self.count.reads_down += 1
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
        )

    async def serve(self) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        async with server:
            await server.serve_forever()


def start_proxies(proxies: list[Proxy]) -> None:
    def run() -> None:
        async def main() -> None:
            await asyncio.gather(*(p.serve() for p in proxies))

        asyncio.run(main())

    threading.Thread(target=run, daemon=True).start()
    for p in proxies:
        wait_port(p.port)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (openssl), and its key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def quiet(proxies: list[Proxy], nodes: int, still_s: float = 20.0, limit_s: float = 300.0) -> float:
    """Wait until nothing more than heartbeats has passed for `still_s`: returns the time it
    took."""
    t = time.time()
    last = sum(p.count.up + p.count.down for p in proxies)
    last_change = time.time()
    while time.time() - t < limit_s:
        time.sleep(1.0)
        now = sum(p.count.up + p.count.down for p in proxies)
        if now - last > 1500 * nodes:  # more than a heartbeat's worth
            last_change = time.time()
        last = now
        if time.time() - last_change >= still_s:
            break
    return time.time() - t


def row(name: str, c: Counter, nodes: int, scale: float = 1.0) -> dict[str, Any]:
    per = (c.up + c.down) / nodes * scale
    packets = (c.reads_up + c.reads_down) / nodes * scale
    return {
        "phase": name,
        "up": c.up / nodes * scale,
        "down": c.down / nodes * scale,
        "bytes": per,
        "packets": packets,
        "with_headers": per + packets * PACKETS_PER_READ * HEADER_BYTES,
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    s = System("mosquitto", args.nodes, [args.nodes])
    extra: dict[str, str] = {}
    if args.heartbeat_s:
        extra["RADIO_HEARTBEAT_S"] = str(args.heartbeat_s)
        extra["RADIO_OFFLINE_AFTER_S"] = str(args.heartbeat_s * 3)
    http_port = free_port()
    tls_port = free_port()
    mqtt_proxy = Proxy(tls_port)
    http_proxy = Proxy(http_port)
    os.environ.update(extra)
    try:
        s.env = {}
        # The controller's public address is the HTTP proxy's: the nodes' media goes through it.
        os.environ["RADIO_PUBLIC_URL"] = f"http://127.0.0.1:{http_proxy.port}"
        s.prepare()
        s.env["RADIO_HTTP_PORT"] = str(http_port)
        cert, key = self_signed(s.data / "tls")
        conf = s.mconf.read_text() + (
            f"listener {tls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"
        )
        if s.mosq is not None:
            s.mosq.terminate()
            s.mosq.wait()
        s.mconf.write_text(conf)
        s.mosq = subprocess.Popen(
            ["mosquitto", "-c", str(s.mconf)],
            stdout=open(s.data / "mosq" / "mosquitto.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_port(tls_port)
        for f in (s.data / "fleet0").glob("*.json"):
            p = json.loads(f.read_text())
            p["mqtt_url"] = f"mqtts://127.0.0.1:{mqtt_proxy.port}"
            p["ca_pem"] = cert.read_text()
            if args.keepalive_s:
                p["keepalive_s"] = args.keepalive_s
            f.write_text(json.dumps(p))
        start_proxies([mqtt_proxy, http_proxy])
        s.start_controller()
        proxies = [mqtt_proxy, http_proxy]
        announcement = s.announce()
        s.start_fleet(0)
        s.wait_online(args.nodes)
        took = quiet(proxies, args.nodes)
        connect = sum_counts(proxies)
        log(f"connected and quiet after {took:.0f} s; idle for {args.idle_minutes:g} min")
        a = sum_counts(proxies)
        t = time.time()
        time.sleep(args.idle_minutes * 60)
        idle_s = time.time() - t
        idle = sum_counts(proxies).minus(a)
        s.login()  # access tokens last 15 minutes
        a = sum_counts(proxies)
        made = s.schedule(announcement, datetime.now(UTC) + timedelta(seconds=20))
        time.sleep(20 + made.get("duration_s", 10) + 5)
        quiet(proxies, args.nodes, 10.0, 120.0)
        broadcast = sum_counts(proxies).minus(a)
        a = sum_counts(proxies)
        r = s.http.post("/alerts", json={"areas": ["xa"], "template": "flood", "repeat": 1})
        r.raise_for_status()
        time.sleep(r.json().get("duration_s", 30) + 5)
        quiet(proxies, args.nodes, 10.0, 120.0)
        alert = sum_counts(proxies).minus(a)
        heartbeat = json.loads(next((s.data / "fleet0").glob("*.json")).read_text())["heartbeat_s"]
    except Exception:
        log(s.tail())
        raise
    finally:
        s.dispose()
        for k in extra:
            os.environ.pop(k, None)
        os.environ.pop("RADIO_PUBLIC_URL", None)
    n = args.nodes
    day = DAY_S / idle_s
    return [
        {"heartbeat_s": heartbeat, "keepalive_s": args.keepalive_s or "node default"},
        row("connect", connect, n),
        row(f"idle, {idle_s / 60:.0f} min measured", idle, n),
        row("idle, per day", idle, n, day),
        row("idle, per 30-day month", idle, n, day * MONTH_DAYS),
        row("one broadcast", broadcast, n),
        row("one alert", alert, n),
    ]


def sum_counts(proxies: list[Proxy]) -> Counter:
    total = Counter()
    for p in proxies:
        c = p.count
        total.up += c.up
        total.down += c.down
        total.reads_up += c.reads_up
        total.reads_down += c.reads_down
        total.connections += c.connections
    return total


def human(b: float) -> str:
    for unit, size in (("MB", 1e6), ("KB", 1e3)):
        if b >= size:
            return f"{b / size:,.1f} {unit}"
    return f"{b:,.0f} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--idle-minutes", type=float, default=10)
    parser.add_argument("--heartbeat-s", type=float, default=None)
    parser.add_argument("--keepalive-s", type=float, default=None)
    rows = run(parser.parse_args())
    settings, *phases = rows
    print(
        f"\nPer node, TLS; heartbeat every {settings['heartbeat_s']:g} s, "
        f"MQTT keep-alive {settings['keepalive_s']}\n"
    )
    print(
        "| phase | node → system | system → node | both (TCP payload) | reads | with IP/TCP headers (estimate) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in phases:
        print(
            f"| {r['phase']} | {human(r['up'])} | {human(r['down'])} | {human(r['bytes'])} "
            f"| {r['packets']:,.0f} | {human(r['with_headers'])} |"
        )


if __name__ == "__main__":
    main()
