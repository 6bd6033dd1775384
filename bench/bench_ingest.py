"""Ingestion: node reports (heartbeats and events) per second that the controller receives and
persists, beside the broker's raw throughput for the same messages in the same run (a bare
aiomqtt subscriber), and the controller's memory per node.

A Mosquitto (anonymous, so that a few load connections can speak for thousands of nodes) and
`radio serve` (SQLite, or PostgreSQL with --postgres) run as separate processes; N nodes are registered straight in the
database. Each node sends HEARTBEATS heartbeats (QoS 0) and EVENTS playback events (QoS 1),
all at once, as a fleet does when the broker comes back.

Run: .venv/bin/python bench/bench_ingest.py [N ...] [--postgres]   (default: 1000 5000; with
--postgres a fresh database on RADIO_BENCH_POSTGRES_URL's server, 127.0.0.1:5432 by default)
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_broadcast import free_port, rss_mb

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
HEARTBEATS = 5
EVENTS = 2
LOAD_CONNECTIONS = 8
PREFIX = "bench"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def register(url: str, n: int) -> list[str]:
    """N nodes written straight into the migrated database (no broker logins are needed)."""
    from controller.core.db import Database
    from controller.core.models import Area, AreaKind, Node

    database = Database(url)
    database.migrate()  # what `radio db upgrade` does; `radio serve` only checks it
    ids = [f"n{i:05d}" for i in range(n)]
    with database.session() as s:
        s.add(Area(id="xa", name="Xã", kind=AreaKind.commune))
        s.flush()
        s.add_all([Node(id=i, name=i, area_id="xa") for i in ids])
        s.commit()
    database.dispose()
    return ids


def count(url: str, table: str) -> int:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    engine = _engines.get(url) or _engines.setdefault(url, create_engine(url))
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


_engines: dict[str, Any] = {}


def fresh_postgres(admin_url: str) -> str:
    """A new, empty PostgreSQL database next to `admin_url`'s."""
    name = f"radio_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def messages(ids: list[str]) -> list[tuple[str, bytes, int]]:
    now = int(time.time() * 1000)
    out = []
    for k in range(HEARTBEATS):
        for node in ids:
            body = {"node_id": node, "ts": now + k, "uptime_s": 60 + k, "temperature_c": 40.5}
            out.append((f"{PREFIX}/v1/node/{node}/telemetry", json.dumps(body).encode(), 0))
    for _k in range(EVENTS):
        for node in ids:
            body = {
                "id": uuid.uuid4().hex,
                "node_id": node,
                "ts": now,
                "type": "playback_finished",
                "item_id": "s1@0",
            }
            out.append((f"{PREFIX}/v1/node/{node}/events", json.dumps(body).encode(), 1))
    return out


def start(
    n: int, postgres: str | None
) -> tuple[Path, str, subprocess.Popen[bytes], subprocess.Popen[bytes], int, list[str]]:
    """Broker, database with N nodes (SQLite, or a fresh PostgreSQL database), and the
    controller, ready."""
    work = Path(tempfile.mkdtemp(prefix="radio-bench-ingest-"))
    broker, port = start_mosquitto(work)
    url = fresh_postgres(postgres) if postgres else f"sqlite:///{work / 'radio.db'}"
    ids = register(url, n)
    http_port = free_port()
    env = {
        **os.environ,
        "RADIO_DATA_DIR": str(work),
        "RADIO_DEMO": "1",
        "RADIO_HTTP_PORT": str(http_port),
        "RADIO_MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "RADIO_TOPIC_PREFIX": PREFIX,
        "RADIO_PRERENDER_ALERT_TEMPLATES": "0",
        "PYTHONPATH": str(ROOT),
    }
    if postgres:
        env["RADIO_DATABASE_URL"] = url
    ctl = subprocess.Popen(
        [PY, "-m", "radio.cli", "serve", "--log-level", "WARNING"], env=env, cwd=ROOT
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/api/v1/ready").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    time.sleep(2)
    return work, url, broker, ctl, port, ids


async def measure(
    n: int, db: str, ctl: subprocess.Popen[bytes], port: int, ids: list[str]
) -> dict[str, float]:
    idle_mb = rss_mb(ctl.pid)
    batch = messages(ids)
    total = len(batch)
    raw = 0
    raw_done = asyncio.Event()

    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-raw") as sub:
        await sub.subscribe(f"{PREFIX}/v1/node/+/telemetry", qos=1)
        await sub.subscribe(f"{PREFIX}/v1/node/+/events", qos=1)

        async def count_raw() -> None:
            nonlocal raw
            async for _m in sub.messages:
                raw += 1
                if raw == total:
                    raw_done.set()

        counter = asyncio.create_task(count_raw())
        clients = [
            aiomqtt.Client("127.0.0.1", port, identifier=f"bench-load-{i}")
            for i in range(LOAD_CONNECTIONS)
        ]
        for c in clients:
            await c.__aenter__()
        t0 = time.perf_counter()

        async def send(c: aiomqtt.Client, part: list[tuple[str, bytes, int]]) -> None:
            for topic, payload, qos in part:
                await c.publish(topic, payload, qos=qos)

        await asyncio.gather(*(send(c, batch[i::LOAD_CONNECTIONS]) for i, c in enumerate(clients)))
        t_sent = time.perf_counter() - t0
        await asyncio.wait_for(raw_done.wait(), 300)
        t_raw = time.perf_counter() - t0
        stored = 0
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            stored = count(db, "telemetrysample") + count(db, "nodeeventrecord")
            if stored >= total:
                break
            await asyncio.sleep(0.2)
        t_ctl = time.perf_counter() - t0
        loaded_mb = rss_mb(ctl.pid)
        counter.cancel()
        for c in clients:
            await c.__aexit__(None, None, None)
    return {
        "nodes": n,
        "messages": total,
        "sent_s": t_sent,
        "raw_s": t_raw,
        "raw_per_s": total / t_raw,
        "stored": stored,
        "controller_s": t_ctl,
        "controller_per_s": stored / t_ctl,
        "rss_idle_mb": idle_mb,
        "rss_loaded_mb": loaded_mb,
        "kb_per_node": (loaded_mb - idle_mb) * 1024 / n,
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sizes = [int(a) for a in args] or [1000, 5000]
    postgres = (
        os.environ.get("RADIO_BENCH_POSTGRES_URL", POSTGRES) if "--postgres" in sys.argv else None
    )
    print(f"database: {'PostgreSQL' if postgres else 'SQLite'}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")  # fmt: skip
    print(
        "| nodes | reports | broker raw: all received, s | raw reports/s | controller: all "
        "stored, s | stored reports/s | stored / raw | stored | controller RSS MB (idle → after) "
        "| KB per node |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for n in sizes:
        _work, url, broker, ctl, port, ids = start(n, postgres)
        try:
            r = asyncio.run(measure(n, url, ctl, port, ids))
        finally:
            ctl.terminate()
            ctl.wait(30)
            broker.terminate()
            broker.wait(10)
            for engine in _engines.values():
                engine.dispose()
            _engines.clear()
        print(
            f"| {n:,} | {r['messages']:,} | {r['raw_s']:.1f} | {r['raw_per_s']:,.0f} | "
            f"{r['controller_s']:.1f} | {r['controller_per_s']:,.0f} | "
            f"{r['controller_per_s'] / r['raw_per_s']:.2f}× | {r['stored']:,} | "
            f"{r['rss_idle_mb']:.0f} → {r['rss_loaded_mb']:.0f} | {r['kb_per_node']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
