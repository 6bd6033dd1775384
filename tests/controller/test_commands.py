"""Commands from the controller: given to nodes or areas, followed to each node's answer or
timeout; bad commands refused clearly; bad, duplicate, late and misdirected acks counted."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from controller.core.events import CommandAckHeard
from controller.core.models import NodeCommand
from firmware_sim.config import NodeConfig
from protocol import CommandAck, SystemClock
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune


async def give(ctl: RunningController, token: str | None = None, **body: Any) -> dict[str, Any]:
    r = await ctl.api("POST", "/commands", json=body, token=token)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def follow(ctl: RunningController, command_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        v = (await ctl.api("GET", f"/commands/{command_id}")).json()
        return v if v["command"]["done"] else None

    return dict(await wait_for(done, 20, f"command {command_id} to finish"))


@contextlib.asynccontextmanager
async def as_node(config: NodeConfig) -> AsyncIterator[aiomqtt.Client]:
    """A raw MQTT session with a node's own login: it says what a real node would never say."""
    broker = config.broker()
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"{config.node_id}:raw-{uuid.uuid4().hex[:6]}",
    ) as client:
        yield client


async def ack(client: aiomqtt.Client, ctl: RunningController, node: str, **fields: Any) -> None:
    body = CommandAck(node_id=node, ts=SystemClock().now_ms(), **fields)
    await client.publish(ctl.service.topics.cmd_ack(node), body.model_dump_json(), qos=1)


async def test_commands_reach_nodes_and_areas_and_report_each_answer(make_settings):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 3)  # n0, n2 in thon-1 (n2 never runs); n1 in thon-2
        async with fleet_of(configs[:2]) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            await wait_for(
                lambda: ctl.service.ingest.stats["accepted:state"] >= 2, 10, "online states"
            )

            async def stored_online() -> bool:
                # Accepted on arrival is not yet written: the command reads the stored firmware.
                r = await ctl.api("GET", "/nodes/n0")
                return r.json().get("status") == "online" and r.json().get("firmware") is not None

            await wait_for(stored_online, 20, "n0's state stored")
            n0 = fleet.nodes[0]
            cmd = await give(ctl, command="volume", args={"level": 40}, nodes=["n0"])
            assert cmd["counts"] == {"pending": 1} and not cmd["done"]
            v = await follow(ctl, cmd["id"])
            [row] = v["nodes"]
            assert row["state"] == "ok" and row["detail"] == "volume 40" and n0.health.volume == 40
            assert row["sent_at"] and row["finished_at"] and row["firmware"] == "sim-1.0.0"

            # "Every node of this village": n2 is offline, so it is skipped, not waited for.
            tone = await give(ctl, command="test_tone", args={"duration_ms": 200}, areas=["thon-1"])
            v = await follow(ctl, tone["id"])
            assert v["command"]["counts"] == {"ok": 1, "skipped": 1}
            skipped = next(n for n in v["nodes"] if n["node_id"] == "n2")
            assert skipped["detail"].startswith("not sent: the node is")

            # Sent anyway to an offline node: it times out, and says so.
            late = await give(ctl, command="reboot", nodes=["n2"], offline="send", timeout_s=1)
            v = await follow(ctl, late["id"])
            [row] = v["nodes"]
            assert row["state"] == "timed_out" and "no answer within 1 s (node" in row["detail"]

            r = await ctl.api("POST", "/commands", json={"command": "stop", "nodes": ["n2"]})
            assert r.status_code == 409 and "offline=send" in r.json()["detail"]
            assert r.json()["code"] == "targets_offline"  # the console's words for it

            listed = (await ctl.api("GET", "/commands", params={"node_id": "n0"})).json()
            assert [c["command"] for c in listed] == ["test_tone", "volume"]
            assert listed[0]["counts"] == {"ok": 1, "skipped": 1}
            audit = (await ctl.api("GET", "/audit", params={"action": "command."})).json()
            assert {e["action"] for e in audit} >= {"command.volume", "command.test_tone"}


async def test_bad_commands_are_refused_with_the_reason(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 3)
        r = await ctl.api("POST", "/nodes/n1/retire")
        assert r.status_code == 200 and r.json()["retired"]
        cases = [
            ({"command": "stop", "nodes": ["nowhere"]}, 404, "nowhere"),
            ({"command": "stop", "nodes": ["n1"]}, 422, "retired"),
            ({"command": "stop", "areas": ["atlantis"]}, 404, "atlantis"),
            ({"command": "stop"}, 422, "name the nodes"),
            ({"command": "volume", "args": {"level": 300}, "nodes": ["n0"]}, 422, "0 to 100"),
            ({"command": "volume", "args": {"level": True}, "nodes": ["n0"]}, 422, "0 to 100"),
            ({"command": "volume", "args": {"lvl": 3}, "nodes": ["n0"]}, 422, "does not take lvl"),
            ({"command": "reboot", "args": {"now": 1}, "nodes": ["n0"]}, 422, "no arguments"),
            ({"command": "self_destruct", "nodes": ["n0"]}, 422, "command"),
            ({"command": "update_firmware", "nodes": ["n0"]}, 422, "args.version"),
            (
                {"command": "update_firmware", "args": {"version": "9"}, "nodes": ["n0"]},
                404,
                "not in the catalogue",
            ),
            ({"command": "stop", "nodes": ["n0"], "timeout_s": 0}, 422, "timeout_s"),
        ]
        for body, code, words in cases:
            r = await ctl.api("POST", "/commands", json=body)
            assert r.status_code == code and words in r.text, (body, r.status_code, r.text)
            if words == "0 to 100":
                assert r.json()["code"] == "volume_level"
        officer = await ctl.login_as_new("officer", "officer", "xa-a")
        r = await ctl.api(
            "POST", "/commands", json={"command": "stop", "nodes": ["n0"]}, token=officer
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "B", "kind": "commune"})
        tech_b = await ctl.login_as_new("tech-b", "technician", "xa-b")
        body = {"command": "stop", "nodes": ["n0"], "offline": "send"}
        r = await ctl.api("POST", "/commands", json=body, token=tech_b)
        assert r.status_code == 403 and "outside your area" in r.text
        assert r.json()["code"] == "outside_area"
        assert (await ctl.api("POST", "/nodes/n1/retire")).status_code == 409
        assert (await ctl.api("POST", "/nodes/ghost/retire")).status_code == 404
        assert (await ctl.api("GET", "/commands/0123abc")).status_code == 404
        assert (await ctl.api("GET", "/commands", params={"node_id": "ghost"})).status_code == 404
        assert (await ctl.api("GET", "/commands")).json() == []


async def test_unknown_duplicate_late_and_misdirected_acks_are_counted(make_settings, database_url):
    clock = SteppedClock()  # held: the 2 s timeout passes when the test says, not before
    async with running_controller(make_settings(database_url=database_url), clock) as ctl:
        configs = await make_commune(ctl, 2)
        stats = ctl.service.commands.stats
        async with as_node(configs[0]) as n0, as_node(configs[1]) as n1:
            clock.pause()
            cmd = await give(ctl, command="stop", nodes=["n0", "n1"], offline="send", timeout_s=2)
            with ctl.service.db.session() as s:
                wire = {r.node_id: r.cmd_id for r in s.exec(select(NodeCommand)).all()}
            await ack(n0, ctl, "n0", cmd_id=uuid.uuid4().hex, ok=True)  # never given
            await ack(n1, ctl, "n1", cmd_id=wire["n0"], ok=False, detail="forged")  # n0's
            await ack(n0, ctl, "n0", cmd_id=wire["n0"], ok=True, detail="stopped")
            await ack(n0, ctl, "n0", cmd_id=wire["n0"], ok=False, detail="again")  # duplicate
            await ack(n0, ctl, "n0", cmd_id=wire["n0"], ok=True, final=False, stage="verifying")
            await n0.publish(ctl.service.topics.cmd_ack("n0"), b'{"v":1,"node_id":"n0"}', qos=1)
            await n0.publish(ctl.service.topics.cmd_ack("n0"), b"\xff\xfe not json", qos=1)
            await wait_for(lambda: stats["ack:stale_progress"] == 1, 10, "the acks to be counted")
            v = (await ctl.api("GET", f"/commands/{cmd['id']}")).json()
            by_node = {n["node_id"]: n for n in v["nodes"]}
            assert by_node["n0"]["state"] == "ok" and by_node["n0"]["detail"] == "stopped"
            assert by_node["n1"]["state"] == "pending"

            # n1 answers after its timeout: the answer is kept, marked late.
            clock.advance(3000)
            await wait_for(lambda: stats["commands:timed_out"] == 1, 10, "n1 to time out")
            await ack(n1, ctl, "n1", cmd_id=wire["n1"], ok=True, detail="nothing playing")
            await wait_for(lambda: stats["ack:late"] == 1, 10, "the late ack")
        v = await follow(ctl, cmd["id"])
        assert v["nodes"][1]["state"] == "ok"
        assert v["nodes"][1]["detail"] == "(answered after the timeout) nothing playing"
        assert stats["ack:unknown_command"] == 1 and stats["ack:wrong_node"] == 1
        assert stats["ack:duplicate"] == 1 and stats["ack:final"] == 1
        counters = (await ctl.api("GET", "/stats")).json()
        assert counters["ingest"]["rejected:invalid_fields"] == 1
        assert counters["ingest"]["rejected:malformed_json"] == 1
        assert counters["commands"]["ack:wrong_node"] == 1
        assert (await ctl.api("GET", "/health")).status_code == 200


async def test_an_answer_written_before_the_sending_keeps_the_sent_time(make_settings):
    """A fast node's answer can be written before the controller records that it sent the
    command (under load, seen in CI): the part is then done and must still say when it was sent."""
    from controller.commands import command_progress as progress

    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        commands = ctl.service.commands
        mark_sent = commands._mark_sent

        def answer_first(command_id: str, sent: list[str], *rest: Any) -> None:
            with ctl.service.db.session() as s:
                [row] = s.exec(select(NodeCommand).where(NodeCommand.command_id == command_id))
                answer = CommandAck(node_id="n0", cmd_id=row.cmd_id, ts=0, ok=True, detail="ok")
                touched = progress.record_acks(s, [("n0", answer, commands.now())], commands.stats)
                progress.close_finished(s, touched, commands.now())
                s.commit()
            mark_sent(command_id, sent, *rest)

        commands._mark_sent = answer_first  # the order seen under load
        cmd = await give(ctl, command="stop", nodes=["n0"], offline="send")
        v = await follow(ctl, cmd["id"])
        [row] = v["nodes"]
        assert row["state"] == "ok" and row["finished_at"], row

        async def sent_recorded() -> Any:
            v = (await ctl.api("GET", f"/commands/{cmd['id']}")).json()
            return v["nodes"][0]["sent_at"]

        # Recorded just after the answer (before the fix: never).
        await wait_for(sent_recorded, 20, "the sending to be recorded")


async def test_one_nodes_ack_the_database_refuses_costs_no_other_node_theirs(
    make_settings, database_url
):
    """Acks are written in batches. One the database refuses (PostgreSQL stores no NUL in a
    text) is dropped and counted alone; the others of its batch are written. While the
    database is away a batch waits and goes again, whole."""
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        configs = await make_commune(ctl, 6)
        ids = [c.node_id for c in configs]
        commands = ctl.service.commands
        cmd = await give(ctl, command="stop", nodes=ids, offline="send", timeout_s=600)
        with ctl.service.db.session() as s:
            wire = {r.node_id: r.cmd_id for r in s.exec(select(NodeCommand)).all()}

        def answer(node: str, **fields: Any) -> CommandAckHeard:
            body = CommandAck(node_id=node, cmd_id=wire[node], ts=0, ok=True, **fields)
            return CommandAckHeard(node, body)

        record = commands._record_acks
        away = [True]

        def database_away_once(batch: Any) -> None:
            if away.pop() if away else False:
                raise OperationalError("UPDATE …", {}, ConnectionError("server closed"))
            record(batch)

        commands._record_acks = database_away_once
        # Heard together, so they are one batch: n0's firmware holds a NUL.
        commands.on_report(answer("n0", detail="stopped", firmware="sim\x00"))
        for node in ids[1:]:
            commands.on_report(answer(node, detail="stopped"))
        refused = 0 if database_url is None else 1  # SQLite stores the NUL as it is
        stats = commands.stats
        await wait_for(
            lambda: stats["ack:final"] + stats["ack:dropped_unstorable"] == len(ids),
            20,
            "every ack written or dropped",
        )
        v = (await ctl.api("GET", f"/commands/{cmd['id']}")).json()
        states = {n["node_id"]: n["state"] for n in v["nodes"]}
        assert all(states[node] == "ok" for node in ids[1:]), states
        assert commands.stats["ack:dropped_unstorable"] == refused
        assert states["n0"] == ("pending" if refused else "ok") and not away
