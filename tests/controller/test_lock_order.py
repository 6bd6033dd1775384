"""On PostgreSQL, ingestion and the timeline computation run in different tasks (and in two
controller instances) and both write node rows. They take those rows in one order, ascending id,
so neither can hold one node while waiting for another that the other holds: no deadlock.

Each test holds the row of node "n-a" in its own transaction, starts the writer with work for
"n-b" before "n-a", and checks that while the writer waits for "n-a" it has not taken "n-b"."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from sqlmodel import select

from controller.core.models import Node, NodeEventRecord
from controller.core.time import utc_datetime
from controller.mqtt.ingest import lock_nodes
from controller.programme.timelines import TimelineService
from protocol.messages import EventType, NodeEvent
from tests.conftest import running_controller, wait_for


async def two_nodes(ctl) -> None:
    r = await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
    assert r.status_code == 201, r.text
    # "n-b" first: the table's physical order is then not the id order.
    for node_id in ("n-b", "n-a"):
        r = await ctl.api("POST", "/nodes", json={"id": node_id, "name": node_id, "area_id": "xa"})
        assert r.status_code == 201, r.text


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


async def writer_waits_without_holding_n_b(url: str, writer) -> object:
    """Hold "n-a", run the writer in a thread, and prove "n-b" is still free while it waits."""
    with (
        psycopg.connect(plain(url)) as holder,
        psycopg.connect(plain(url), autocommit=True) as watcher,
    ):
        holder.execute("UPDATE node SET name = name WHERE id = 'n-a'")
        holder_pid = holder.info.backend_pid
        task = asyncio.create_task(asyncio.to_thread(writer))

        def writer_is_blocked_by_holder() -> bool:
            # A backend of this database waits for a lock that the holder has: the writer,
            # stopped at "n-a" (what it took before that is what the test checks next).
            assert not task.done(), "the writer finished while n-a was locked: it wrote nothing?"
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND %s = ANY(pg_blocking_pids(pid))",
                (holder_pid,),
            ).fetchone()
            return bool(row and row[0])

        await wait_for(writer_is_blocked_by_holder, 30, "the writer to wait for n-a")
        try:
            holder.execute("SELECT id FROM node WHERE id = 'n-b' FOR UPDATE NOWAIT")
        except psycopg.errors.LockNotAvailable:
            holder.rollback()
            await task
            pytest.fail("the writer held n-b while it waited for n-a: the order is not by id")
        holder.commit()
    return await asyncio.wait_for(task, 30)


@pytest.mark.postgres
async def test_ingestion_takes_node_rows_in_id_order(make_settings, postgres_url):
    async with running_controller(make_settings(database_url=postgres_url)) as ctl:
        await two_nodes(ctl)
        ingest = ctl.service.ingest
        await wait_for(lambda: {"n-a", "n-b"} <= ingest.known_nodes, 10)
        now = ctl.service.clock.now_ms()
        batch = [
            (
                node_id,
                "events",
                NodeEvent(
                    id=str(uuid.uuid4()),
                    node_id=node_id,
                    ts=now,
                    type=EventType.media_ready,
                    item_id="x",
                ),
                utc_datetime(now),
            )
            for node_id in ("n-b", "n-a")
        ]
        await writer_waits_without_holding_n_b(postgres_url, lambda: ingest.write(batch))
        with ctl.service.db.session() as s:
            stored = {e.node_id for e in s.exec(select(NodeEventRecord)).all()}
        assert stored == {"n-a", "n-b"}


@pytest.mark.postgres
async def test_timeline_computation_takes_node_rows_in_id_order(make_settings, postgres_url):
    async with running_controller(make_settings(database_url=postgres_url)) as ctl:
        await two_nodes(ctl)
        timelines: TimelineService = ctl.service.timelines
        with ctl.service.db.session() as s:
            before = {n.id: n.timeline_version for n in s.exec(select(Node)).all()}
            # Make both timelines look changed; "n-b" written first, so that a scan in the
            # table's physical order would meet it before "n-a".
            for node_id in ("n-b", "n-a"):
                node = s.get(Node, node_id)
                assert node is not None
                node.timeline_digest = "stale"
                s.add(node)
                s.commit()
        pubs = await writer_waits_without_holding_n_b(
            postgres_url, lambda: timelines.compute({"n-a", "n-b"}, False)
        )
        assert sorted(p.node_id for p in pubs) == ["n-a", "n-b"]
        with ctl.service.db.session() as s:
            after = {n.id: n.timeline_version for n in s.exec(select(Node)).all()}
        assert after == {k: v + 1 for k, v in before.items()}


@pytest.mark.postgres
async def test_ingestion_leaves_node_rows_free_for_rows_that_name_them(make_settings, postgres_url):
    """While ingestion holds a node's row, an alarm for that node can still be inserted (its
    foreign-key check takes a key-share lock): the alarm rules insert alarms in their own
    order, and a lock that blocked them deadlocked with ingestion under a soak."""
    async with running_controller(make_settings(database_url=postgres_url)) as ctl:
        await two_nodes(ctl)
        with ctl.service.db.session() as s, psycopg.connect(plain(postgres_url)) as other:
            assert set(lock_nodes(s, {"n-a", "n-b"})) == {"n-a", "n-b"}  # held until rollback
            other.execute("SET lock_timeout = '5s'")
            other.execute(
                "INSERT INTO alarm (node_id, kind, severity, state, detail, raised_at, ack_note,"
                " clear_detail, notifications) VALUES ('n-a', 'offline', 'major', 'open', '',"
                " now(), '', '', 0)"
            )
            other.rollback()
            # Another writer of the node itself still waits, as it must.
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("UPDATE node SET name = name WHERE id = 'n-b'")
            s.rollback()
