"""Bad telemetry published straight to a real Mosquitto: missing fields, impossible values,
unknown nodes and a flood from one node are counted, logged without flooding the log, never
stop ingestion and never create nodes; good heartbeats are stored in batches."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import func, select

from controller.core.models import Node, NodeEventRecord, NodeStateChange, TelemetrySample
from controller.core.time import utc_datetime
from controller.mqtt.ingest import registry_stamp
from protocol.messages import ControllerState, NodeEvent, NodeState, NodeStatus, Telemetry
from tests.conftest import running_controller, wait_for
from tests.controller.health_support import prometheus


def heartbeat(node_id: str, **fields: object) -> bytes:
    return json.dumps({"v": 1, "node_id": node_id, "ts": 1_790_000_000_000, **fields}).encode()


async def one_node(ctl) -> None:
    """The commune `xa` and its node `n1`, registered through the API."""
    assert (
        await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
    ).status_code == 201
    r = await ctl.api("POST", "/nodes", json={"id": "n1", "name": "Loa", "area_id": "xa"})
    assert r.status_code == 201


def samples(ctl, node_id: str) -> int:
    with ctl.service.db.session() as s:
        return int(
            s.exec(
                select(func.count())
                .select_from(TelemetrySample)
                .where(TelemetrySample.node_id == node_id)
            ).one()
        )


@pytest.mark.mosquitto
async def test_bad_telemetry_is_counted_and_never_stops_ingestion(
    make_settings, mosquitto_factory, caplog
):
    broker = mosquitto_factory()  # anonymous: anyone may publish anything, as an attacker would
    settings = make_settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", ingest_node_burst=20)
    async with running_controller(settings) as ctl:
        await one_node(ctl)
        await wait_for(lambda: "n1" in ctl.service.ingest.known_nodes, 10)
        topics = ctl.service.topics
        caplog.set_level(logging.WARNING)
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            t = topics.telemetry("n1")
            await client.publish(t, heartbeat("n1"), qos=1)
            await wait_for(lambda: samples(ctl, "n1") == 1, 10, "a good heartbeat stored")

            await client.publish(t, b'{"v": 1, "node_id": "n1"}', qos=1)  # no ts
            await client.publish(t, heartbeat("n1", temperature_c=500), qos=1)  # impossible
            await client.publish(t, heartbeat("n1", uptime_s=10**12), qos=1)  # 31,000 years
            # Beyond what the database column holds, and a load no machine has.
            await client.publish(t, heartbeat("n1", memory_free_mb=2**63), qos=1)
            await client.publish(t, heartbeat("n1", load_1m=float("inf")), qos=1)
            await client.publish(t, heartbeat("n1", volume="loud"), qos=1)
            await client.publish(t, b"\xff\xfe not json", qos=1)
            await client.publish(t, heartbeat("n2"), qos=1)  # body names another node
            await client.publish(topics.telemetry("ghost"), heartbeat("ghost"), qos=1)
            # A flood: 600 heartbeats from one node at once.
            for _ in range(600):
                await client.publish(t, heartbeat("n1"), qos=0)
            stats = ctl.service.ingest.stats
            await wait_for(lambda: stats["rejected:unknown_node"] >= 1, 15, "ghost dropped")
            await wait_for(
                lambda: stats["rejected:flood"] + stats["accepted:telemetry"] >= 601,
                15,
                "the flood to arrive",
            )
            assert stats["rejected:invalid_fields"] == 3
            assert stats["rejected:implausible"] == 3
            assert stats["rejected:malformed_json"] == 1
            assert stats["rejected:node_mismatch"] == 1
            # The bucket lets a burst through, then about one heartbeat per second.
            assert stats["rejected:flood"] >= 550
            assert stats["accepted:telemetry"] <= 50

        # Every heartbeat accepted is stored (by the writer, a moment after it is counted), and
        # ingestion goes on; no node was invented.
        await wait_for(
            lambda: samples(ctl, "n1") == stats["accepted:telemetry"],
            15,
            "every accepted heartbeat stored",
        )
        before = samples(ctl, "n1")
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(
                topics.node_state("n1"),
                json.dumps({"node_id": "n1", "status": "online", "ts": 1}).encode(),
                qos=1,
            )
        await wait_for(lambda: ctl.service.ingest.stats["accepted:state"] == 1, 10)
        with ctl.service.db.session() as s:
            assert s.get(Node, "ghost") is None
            assert s.exec(select(func.count()).select_from(Node)).one() == 1
        node = (await ctl.api("GET", "/nodes/n1")).json()
        assert node["state"] == "online"

        r = await ctl.api("GET", "/stats")
        assert r.json()["ingest"]["rejected:flood"] == stats["rejected:flood"]
        m = prometheus(
            (
                await ctl.http.get(
                    f"{ctl.base_url}/metrics", headers={"Authorization": f"Bearer {ctl.token}"}
                )
            ).text
        )
        assert (
            m['radio_ingest_reports_total{outcome="rejected",reason="flood"}']
            == stats["rejected:flood"]
        )
        assert m["radio_telemetry_samples_written_total"] == before
        # Logged, but not once per message: the flood is one line (per 10 s), not hundreds.
        flood_lines = [r for r in caplog.records if "floods the broker" in r.getMessage()]
        assert 1 <= len(flood_lines) <= 2


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg's DeadlockDetected carries


async def test_a_batch_rolled_back_as_a_deadlock_victim_is_written_again(
    make_settings, monkeypatch, caplog
):
    """PostgreSQL may roll a batch back to break a deadlock: ingestion writes it again and
    says so in one warning line, not as an error with a traceback."""
    async with running_controller(make_settings()) as ctl:
        await one_node(ctl)
        ingest = ctl.service.ingest
        write = ingest.write
        calls: list[int] = []

        def deadlocked_once(batch: list[Any]) -> Any:
            calls.append(len(batch))
            if len(calls) == 1:
                raise OperationalError("SELECT … FOR NO KEY UPDATE", {}, _Deadlock("deadlock"))
            return write(batch)

        monkeypatch.setattr(ingest, "write", deadlocked_once)
        caplog.set_level(logging.WARNING, logger="controller.mqtt.ingest")
        now = ctl.service.clock.now_ms()
        report = Telemetry(node_id="n1", ts=now)
        ingest.queue.put_nowait(("n1", "telemetry", report, utc_datetime(now)))
        await wait_for(lambda: samples(ctl, "n1") == 1, 10, "the heartbeat stored after all")
        assert calls[:2] == [1, 1]
        lines = [r for r in caplog.records if r.name == "controller.mqtt.ingest"]
        assert [r.levelname for r in lines] == ["WARNING"], lines
        assert "rolled back (deadlock)" in lines[0].getMessage()
        assert lines[0].exc_info is None


async def test_a_batch_that_failed_while_the_queue_filled_goes_again_first_and_whole(
    make_settings, monkeypatch
):
    """The database fails a batch while the queue fills up behind it: once it is back, the
    failed batch is written first and then the rest, and no report is lost (the batch used to
    go back into the queue, where a full queue had no room for it)."""
    async with running_controller(make_settings()) as ctl:
        await one_node(ctl)
        ingest = ctl.service.ingest
        waiting = ingest.queue  # the writer waits on it now
        monkeypatch.setattr(ingest, "queue", asyncio.Queue(maxsize=3))
        write = ingest.write
        calls: list[int] = []
        filled = threading.Event()

        def fails_once_the_queue_is_full(batch: list[Any]) -> Any:
            calls.append(len(batch))
            if len(calls) == 2:
                assert filled.wait(30)
                raise OperationalError("INSERT …", {}, ConnectionError("server closed"))
            return write(batch)

        monkeypatch.setattr(ingest, "write", fails_once_the_queue_is_full)
        now = ctl.service.clock.now_ms()

        def report(i: int) -> tuple[str, str, Any, datetime]:
            return ("n1", "telemetry", Telemetry(node_id="n1", ts=now + i), utc_datetime(now + i))

        waiting.put_nowait(report(0))  # wakes the writer
        await wait_for(lambda: samples(ctl, "n1") == 1, 10, "the first heartbeat stored")
        for i in (1, 2, 3):
            ingest.queue.put_nowait(report(i))
        await wait_for(lambda: len(calls) == 2, 10, "the batch that fails")
        for i in (4, 5, 6):
            ingest.queue.put_nowait(report(i))
        assert ingest.queue.full()
        assert ingest.waiting == 6  # the three queued, and the three of the batch in hand
        filled.set()
        await wait_for(lambda: samples(ctl, "n1") == 7, 20, "every heartbeat stored")
        assert calls[:3] == [1, 3, 3]  # the failed batch again, whole, before the three after it
        await wait_for(lambda: ingest.waiting == 0, 10, "nothing left waiting")
        with ctl.service.db.session() as s:
            stored = s.exec(select(TelemetrySample.ts).where(TelemetrySample.node_id == "n1"))
            assert len(set(stored.all())) == 7


async def test_a_failed_batch_goes_again_report_by_report(make_settings, monkeypatch, caplog):
    """After a failure that is neither a deadlock nor the database going away, the batch goes
    again one report at a time: a report that cannot be written is dropped and counted (not
    retried for ever), and when the database fails part-way, what is left goes again (and what
    was written is not written twice)."""
    async with running_controller(make_settings()) as ctl:
        await one_node(ctl)
        ingest = ctl.service.ingest
        write = ingest.write
        now = ctl.service.clock.now_ms()
        calls: list[list[int]] = []

        def flaky(batch: list[Any]) -> Any:
            offsets = [item[2].ts - now for item in batch]
            calls.append(offsets)
            if 2 in offsets:  # an error of SQLAlchemy's that is not the database failing
                raise ProgrammingError("INSERT …", {}, TypeError("cannot adapt this value"))
            if offsets == [3] and calls.count([3]) == 1:
                raise OperationalError("INSERT …", {}, ConnectionError("server closed"))
            return write(batch)

        monkeypatch.setattr(ingest, "write", flaky)
        caplog.set_level(logging.WARNING, logger="controller.mqtt.ingest")
        for i in (1, 2, 3):
            report = Telemetry(node_id="n1", ts=now + i)
            ingest.queue.put_nowait(("n1", "telemetry", report, utc_datetime(now + i)))
        await wait_for(lambda: samples(ctl, "n1") == 2, 20, "the two good reports stored")
        assert calls == [[1, 2, 3], [1], [2], [3], [3]]
        assert ingest.stats["dropped:error"] == 1
        warnings = [r.getMessage() for r in caplog.records if r.name == "controller.mqtt.ingest"]
        assert any("1 left" in w for w in warnings), warnings


@pytest.mark.mosquitto
async def test_a_report_the_database_refuses_is_dropped_alone(make_settings, mosquitto_factory):
    """An event whose detail holds a NUL character (PostgreSQL stores no NUL in text), in the
    same burst as good heartbeats: the good ones are stored, the refused one is dropped and
    counted, and ingestion goes on. SQLite stores it as it is."""
    broker = mosquitto_factory()
    settings = make_settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}")
    async with running_controller(settings) as ctl:
        assert (
            await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        ).status_code == 201
        for node_id in ("n1", "n2"):
            r = await ctl.api(
                "POST", "/nodes", json={"id": node_id, "name": "Loa", "area_id": "xa"}
            )
            assert r.status_code == 201
        await wait_for(lambda: {"n1", "n2"} <= ctl.service.ingest.known_nodes, 10)
        refuses = ctl.service.db.engine.dialect.name == "postgresql"
        topics = ctl.service.topics
        stats = ctl.service.ingest.stats
        now = 1_790_000_000_000

        def event(k: int, detail: str) -> bytes:
            body = {"id": f"{k:032x}", "node_id": "n1", "ts": now + k, "type": "playback_failed"}
            return json.dumps({**body, "item_id": "s1@0", "detail": detail}).encode()

        def stored_events() -> int:
            with ctl.service.db.session() as s:
                return int(s.exec(select(func.count()).select_from(NodeEventRecord)).one())

        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(topics.events("n1"), event(1, "card\x00lost"), qos=1)
            for k in range(5):
                await client.publish(
                    topics.telemetry("n2"), heartbeat("n2", uptime_s=60 + k), qos=1
                )
            await wait_for(lambda: samples(ctl, "n2") == 5, 15, "the good heartbeats stored")
            await client.publish(topics.events("n1"), event(2, "card lost"), qos=1)
            await wait_for(lambda: stored_events() == (1 if refuses else 2), 15, "the next event")
        assert stats["dropped:unstorable"] == (1 if refuses else 0)


def test_the_registry_stamp_changes_with_every_registration_retirement_and_removal(
    commune_database,
):
    """What tells ingestion to read the nodes again, without reading every node's row."""
    db = commune_database
    t0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

    def stamp():
        with db.session() as s:
            return registry_stamp(s)

    def change(do):
        with db.session() as s:
            do(s)
            s.commit()

    seen = [stamp()]

    def add(node_id: str, minutes: int):
        change(
            lambda s: s.add(
                Node(
                    id=node_id,
                    name=node_id,
                    area_id="xa",
                    created_at=t0 + timedelta(minutes=minutes),
                )
            )
        )

    def retire(node_id: str, retired: bool):
        def do(s):
            s.get(Node, node_id).retired = retired

        change(do)

    add("a", 0)
    add("b", 1)
    seen.append(stamp())
    retire("a", True)
    seen.append(stamp())
    retire("a", False)  # back: as before it was retired
    assert stamp() == seen[-2]
    retire("b", True)  # another one retired: not the same as `a` retired
    seen.append(stamp())
    change(lambda s: s.delete(s.get(Node, "a")))
    seen.append(stamp())
    add("c", 2)
    seen.append(stamp())
    assert len(set(seen)) == len(seen), seen
    assert stamp() == seen[-1]  # nothing changed: the same stamp


@pytest.mark.mosquitto
async def test_events_sent_together_are_stored_each_once(make_settings, mosquitto_factory):
    """A node's events in one message (a JSON array): each good one stored once, a bad one
    refused and counted without the others; sent again, nothing is stored twice; from a node
    registered by another instance, kept until the registry is read again."""
    broker = mosquitto_factory()
    settings = make_settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}")
    async with running_controller(settings) as ctl:
        await one_node(ctl)
        await wait_for(lambda: "n1" in ctl.service.ingest.known_nodes, 10)
        topics = ctl.service.topics
        stats = ctl.service.ingest.stats

        def event(k: int, node_id: str = "n1") -> dict[str, Any]:
            return {"v": 1, "id": f"{k:032x}", "node_id": node_id, "ts": 1_790_000_000_000 + k}

        def stored(node_id: str) -> list[int]:
            with ctl.service.db.session() as s:
                rows = s.exec(
                    select(NodeEventRecord.ts).where(NodeEventRecord.node_id == node_id)
                ).all()
            return sorted(int(ts.timestamp() * 1000) - 1_790_000_000_000 for ts in rows)

        ok = {"type": "media_ready", "item_id": "s1@0"}
        batch = [{**event(1), **ok}, {**event(2), "type": "no_such_type"}, {**event(3), **ok}]
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(topics.events("n1"), json.dumps(batch).encode(), qos=1)
            await client.publish(topics.events("n1"), json.dumps(batch).encode(), qos=1)
            await wait_for(lambda: stats["rejected:invalid_fields"] == 2, 10, "both refusals")
            await client.publish(topics.events("n1"), json.dumps([{**event(4), **ok}]).encode())
            await wait_for(lambda: stored("n1") == [1, 3, 4], 15, "each good event once")
            # Registered by another instance: in the database, not yet in this one's memory.
            with ctl.service.db.session() as s:
                s.add(Node(id="n2", name="Loa", area_id="xa"))
                s.commit()
            later = [{**event(5, "n2"), **ok}, {**event(6, "n2"), **ok}]
            await client.publish(topics.events("n2"), json.dumps(later).encode(), qos=1)
            await wait_for(lambda: stored("n2") == [5, 6], 15, "stored once n2 is known")
        assert stats["accepted:events"] == 7


@pytest.mark.mosquitto
@pytest.mark.parametrize("arrays", [True, False])
async def test_the_controller_state_says_whether_it_reads_event_arrays(
    make_settings, mosquitto_factory, arrays: bool
):
    """`RADIO_MQTT_EVENT_ARRAYS=false` (a group being upgraded): the retained state tells the
    nodes to send one event per message."""
    broker = mosquitto_factory()
    settings = make_settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", mqtt_event_arrays=arrays)
    async with running_controller(settings) as ctl:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe(ctl.service.topics.controller_state, qos=1)
            async with asyncio.timeout(15):
                async for message in client.messages:
                    state = ControllerState.model_validate_json(message.payload)  # type: ignore[arg-type]
                    if state.status == "online":
                        break
    assert state.event_arrays is arrays


async def test_a_batch_written_again_judges_each_nodes_state_as_the_first_time(make_settings):
    """One node's report that the database refuses sends its whole batch again, report by
    report. Another node's `online` in that batch is taken as the first time: what presence
    noted in memory during the attempt that was rolled back is put back (the `online` was
    judged stale, the change counted twice toward flapping)."""
    async with running_controller(make_settings()) as ctl:
        await one_node(ctl)
        r = await ctl.api("POST", "/nodes", json={"id": "n2", "name": "Loa 2", "area_id": "xa"})
        assert r.status_code == 201
        ingest, presence = ctl.service.ingest, ctl.service.health.presence
        now = ctl.service.clock.now_ms()
        online = NodeState(node_id="n1", status=NodeStatus.online, ts=now - 200, boot=3)
        # A number past what the databases store (both refuse it): dropped, counted.
        refused = NodeEvent(
            id="deadbeef01", node_id="n2", ts=now, type="timeline_applied", timeline_version=2**64
        )
        # Put together, they are one batch.
        ingest.queue.put_nowait(("n1", "state", online, utc_datetime(now)))
        ingest.queue.put_nowait(("n2", "events", refused, utc_datetime(now)))
        await wait_for(lambda: ingest.stats["dropped:unstorable"] == 1, 20, "the refused event")
        await wait_for(lambda: ingest.waiting == 0, 20, "the batch written")
        with ctl.service.db.session() as s:
            n1 = s.get(Node, "n1")
            assert n1 is not None and (n1.status, n1.boot) == ("online", 3)
            changes = s.exec(select(NodeStateChange).where(NodeStateChange.node_id == "n1"))
            assert [(c.state, c.reason) for c in changes.all()] == [("online", "connected")]
        assert len(presence._changes["n1"]) == 1 and presence.stale == 0
