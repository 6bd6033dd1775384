"""Past one machine: two controller instances against one PostgreSQL and one Mosquitto. They share
the node reports (MQTT shared subscriptions), exactly one leads the periodic work (a PostgreSQL
advisory lock), and killing the leader hands it over without losing or doubling a broadcast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.controller.test_broadcast_e2e import fleet_of
from tests.faults.test_fault_restarts import LEAD_S, ServeProcess, register


async def role(http: httpx.AsyncClient) -> str:
    try:
        r = await http.get("/ready")
    except httpx.HTTPError:
        return "down"
    return str(r.json().get("role", "?"))


@pytest.mark.slow
async def test_leader_killed_hands_over_and_nothing_is_lost_or_doubled(
    tmp_path: Path, postgres_url, mosquitto_factory
):
    broker = mosquitto_factory()
    data = tmp_path / "shared-data"  # media and keys on storage both instances see
    instances = [ServeProcess(data) for _ in range(2)]
    for i, s in enumerate(instances):
        # One public address for the service, as behind a load balancer: a node sends its
        # media token only there (docs/protocol.md), whichever instance wrote the timeline.
        s.env |= {
            "RADIO_PUBLIC_URL": instances[0].base,
            "RADIO_DATABASE_URL": postgres_url,
            "RADIO_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
            "RADIO_MQTT_SHARED_GROUP": "controllers",
            "RADIO_INSTANCE": f"ctl-{i}",
            "RADIO_LEADER_RETRY_S": "1",
        }
    first, second = instances
    first.radio("area", "add", "xa-a", "--name", "Xã A", "--kind", "commune")
    first.radio("user", "add", "chief", "--role", "admin")
    try:
        first.start()
        a = await first.client()

        async def first_leads() -> bool:
            return await role(a) == "leader"

        # Alone, it takes the lock at its start, perhaps a moment after it first answers.
        await wait_for(first_leads, 30, "the first instance to lead")
        assert await role(a) == "leader"
        second.start()
        b = await second.client()
        assert await role(b) == "follower"

        configs = await register(a, 4)
        async with fleet_of(configs) as fleet:
            for node in fleet.nodes:
                node.backoff_max_s = 2.0
            await wait_for(lambda: fleet.summary().connected == 4, 30, "nodes to connect")
            # Scheduled through the follower: any instance serves the API.
            ann = (await b.post("/announcements", json={"title": "t", "text": "Xin chào."})).json()
            # The instances run in their own processes, on the real clock: air time is far
            # enough ahead for the downloads and the kill to come first on a loaded machine.
            starts = datetime.now(UTC) + timedelta(seconds=LEAD_S)
            r = await b.post(
                "/schedules",
                json={
                    "announcement_id": ann["id"],
                    "starts_at": starts.isoformat(),
                    "targets": {"areas": ["xa-a"]},
                },
            )
            assert r.status_code == 201, r.text
            sched = r.json()

            async def held() -> bool:
                d = (await b.get(f"/schedules/{sched['id']}/deliveries")).json()
                return d["counts"].get("downloaded", 0) == 4

            await wait_for(held, LEAD_S, "every node to hold the media")
            # Reports were shared: each instance took some of them.
            taken = []
            for http in (a, b):
                ingest = (await http.get("/stats")).json()["ingest"]
                taken.append(sum(v for k, v in ingest.items() if k.startswith("accepted:")))
            assert all(t > 0 for t in taken), taken

            first.kill()
            assert not any(n.played or n.playback.now_playing for n in fleet.nodes)
            await a.aclose()

            async def took_over() -> bool:
                return await role(b) == "leader"

            # How fast the lead passes is the lease's business (docs/operations.md); under a
            # busy machine it only has to happen.
            await wait_for(took_over, 60, "the second instance to take the lead")

            async def finished() -> bool:
                d = (await b.get(f"/schedules/{sched['id']}/deliveries")).json()
                return d["counts"].get("finished", 0) == 4

            await wait_for(finished, LEAD_S + 40, "the broadcast to play and be reported")
            # A barrier: one more schedule (an hour ahead) through the new leader. Each node
            # takes the new timeline version after every timeline published before it.
            versions = [n.timeline_version for n in fleet.nodes]
            later = datetime.now(UTC) + timedelta(hours=1)
            r = await b.post(
                "/schedules",
                json={
                    "announcement_id": ann["id"],
                    "starts_at": later.isoformat(),
                    "targets": {"areas": ["xa-a"]},
                },
            )
            assert r.status_code == 201, r.text
            await wait_for(
                lambda: all(
                    n.timeline_version > v for n, v in zip(fleet.nodes, versions, strict=True)
                ),
                30,
                "every node to take the timeline published after the broadcast",
            )
            assert [len(n.played) for n in fleet.nodes] == [1, 1, 1, 1]
            d = (await b.get(f"/schedules/{sched['id']}/deliveries")).json()
            assert d["counts"] == {"finished": 4}
        await b.aclose()
    finally:
        for s in instances:
            s.stop()
