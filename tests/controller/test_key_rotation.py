"""Rotation of the controller's signing key on a running controller with real nodes: announced
with the root key, switched, retired; nodes keep playing throughout, a late node catches up, and
neither the retired key, a stolen one nor a forged announcement is obeyed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import pytest

from controller.auth.keyring import Keyring
from firmware_sim.config import NodeConfig
from protocol import (
    KeySetBody,
    Signer,
    key_id,
    load_private_key,
    new_private_key,
    public_key_b64,
)
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_alerts import sounding
from tests.controller.test_broadcast_e2e import (
    all_finished,
    announce,
    fleet_of,
    make_commune,
    schedule_at,
)
from tests.controller.test_keyring import radio


async def rogue_publish(ctl: RunningController, topic: str, payload: bytes) -> None:
    """Publish with the controller's own broker login, as someone who stole it would."""
    login = ctl.service.registry.controller_login()
    port = ctl.service.settings.mqtt_embedded_port
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        username=login.username,
        password=login.password,
        identifier=f"{login.username}:rogue",
    ) as c:
        await c.publish(topic, payload, qos=1)


def holds_items(node, n: int) -> bool:
    body = node.timeline.body
    return body is not None and len(body.items) >= n


@pytest.mark.slow
async def test_nodes_keep_playing_across_a_rotation(make_settings, tmp_path: Path) -> None:
    settings = make_settings()
    clock = SteppedClock()  # runs at real speed; moved to the broadcast once every node has it
    async with running_controller(settings, clock) as ctl:
        signer = ctl.service.signer
        topics = ctl.service.topics
        configs = await make_commune(ctl, 3)  # n0, n2 in thon-1; n1 in thon-2
        assert all(c.root_keys == signer.keyring.roots for c in configs)
        old_kid = signer.kid
        old_key = load_private_key(signer.keyring.key_file(old_kid))
        # n2 is offline for the whole rotation; it keeps a cache directory like a real node.
        late = NodeConfig.model_validate({**configs[2].model_dump(), "cache_dir": str(tmp_path)})
        async with fleet_of(configs[:2], clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            ann = await announce(ctl)
            # Published now, signed with the old key; it plays after the old key has retired
            # (the clock jumps to it once the late node holds it too; a jump shorter than the
            # controller's offline limit less a heartbeat, so no node looks offline).
            starts = clock.now_ms() + 40_000
            sched = await schedule_at(ctl, ann["id"], starts, areas=["xa-a"])
            await wait_for(lambda: all(holds_items(n, 1) for n in fleet.nodes), 10, "timelines")

            out = await asyncio.to_thread(
                radio, settings, "keys", "rotate", "--switch-in", "2", "--retire-after", "3"
            )
            assert "key set 1 announced" in out
            entries = Keyring.open(settings.secrets_dir).entries()
            new_kid = entries[-1].kid
            retire_at = entries[0].not_after
            assert retire_at is not None and new_kid != old_kid
            await wait_for(
                lambda: all(n.verifier.keys.serial == 1 for n in fleet.nodes), 10, "key set 1"
            )
            await wait_for(lambda: signer.kid == new_kid, 10, "the controller to switch keys")
            await wait_for(lambda: time.time() * 1000 > retire_at + 1500, 10, "retirement")
            assert not signer.keyring.key_file(old_kid).exists()  # deleted once retired

            async with fleet_of([late], clock) as late_fleet:
                n2 = late_fleet.nodes[0]
                # Provisioned with the old key only: it learns the new one from the retained
                # announcement and takes the retained timeline, signed again with the new key.
                await wait_for(lambda: holds_items(n2, 1), 15, "the late node's timeline")
                assert n2.verifier.keys.serial == 1 and n2.rejected_total == 0
                await wait_for(
                    lambda: all(n.media.is_ready(ann["media_sha256"]) for n in [*fleet.nodes, n2]),
                    30,
                    "every node to hold the media",
                )
                clock.skip_to(starts)
                await wait_for(lambda: all_finished(ctl, sched["id"], 3), 40, "all 3 to play")

                r = await ctl.api(
                    "POST", "/alerts", json={"areas": ["thon-1"], "template": "flood", "repeat": 1}
                )
                assert r.status_code == 201, r.text
                alert_id = r.json()["id"]
                thon1 = [fleet.nodes[0], n2]
                await wait_for(
                    lambda: all(sounding(n) == f"alert:{alert_id}" for n in thon1), 20, "alert"
                )
                r = await ctl.api("POST", f"/alerts/{alert_id}/cancel")
                assert r.status_code == 200, r.text
                await wait_for(lambda: all(n.alerts_played for n in thon1), 10, "alert to stop")

                # The retired key, a root key nobody provisioned, and the daily key (stolen)
                # trying to announce a key of its own: all dropped, counted, nothing changed.
                before = {n.node_id: n.rejected.copy() for n in [*fleet.nodes, n2]}
                forged_alert = Signer(old_key).sign(
                    "alert", rogue_alert(clock.now_ms()), clock.now_ms(), 600_000
                )
                await rogue_publish(ctl, topics.area_alert("thon-1"), forged_alert)
                mine = new_private_key()
                rogue_set = KeySetBody.model_validate(
                    {"serial": 99, "keys": [{"kid": kid_of(mine), "public_key": pub(mine)}]}
                ).model_dump()
                await rogue_publish(
                    ctl,
                    topics.controller_keys,
                    Signer(new_private_key()).sign("keys", rogue_set, clock.now_ms(), 600_000),
                )
                await rogue_publish(
                    ctl,
                    topics.controller_keys,
                    signer.sign("keys", rogue_set, clock.now_ms(), 600_000),
                )

                def counted() -> bool:
                    n0 = fleet.nodes[0]
                    return (
                        n0.rejected["retired_key"] == before["n0"]["retired_key"] + 1
                        and n0.rejected["unknown_key"] == before["n0"]["unknown_key"] + 2
                    )

                await wait_for(counted, 10, "the retired key and the forgeries to be refused")

                def counted_by_all() -> bool:
                    # The alert went to thon-1 (n0, n2); both key sets to every node.
                    return all(
                        n.rejected["retired_key"]
                        == before[n.node_id]["retired_key"] + (n.node_id != "n1")
                        and n.rejected["unknown_key"] == before[n.node_id]["unknown_key"] + 2
                        for n in [*fleet.nodes, n2]
                    )

                # A node drops each message as it handles it: once every node has counted all
                # it was sent, none of them can still change its keys or sound.
                await wait_for(counted_by_all, 30, "every node to refuse what it was sent")
                assert all(n.verifier.keys.serial == 1 for n in [*fleet.nodes, n2])
                assert [a.alert_id for a in n2.alerts_played] == [alert_id]
                assert not (sounding(n2) or "").startswith("alert:")

                status = await asyncio.to_thread(radio, settings, "keys", "status")
                assert f"{new_kid}  signing now" in status and "retired" in status
                await wait_for(
                    lambda: "nodes holding key set 1: 3 of 3" in radio(settings, "keys", "status"),
                    20,
                    "every node to report key set 1",
                )

        # A node provisioned now trusts the new key only, and the root.
        r = await ctl.api("POST", "/nodes", json={"id": "n9", "name": "Loa 9", "area_id": "thon-1"})
        assert r.status_code == 201, r.text
        prov = r.json()["provisioning"]
        assert prov["controller_keys"] == [public_key_b64(signer.public_key)]
        assert prov["root_keys"] == signer.keyring.roots and prov["key_serial"] == 1


@pytest.mark.slow
async def test_a_stolen_key_is_dropped_at_once(make_settings) -> None:
    settings = make_settings()
    async with running_controller(settings) as ctl:
        signer = ctl.service.signer
        stolen = load_private_key(signer.keyring.key_file(signer.kid))
        configs = await make_commune(ctl, 1)
        async with fleet_of(configs) as fleet:
            node = fleet.nodes[0]
            await wait_for(lambda: node.connected.is_set(), 20, "the node to connect")
            out = await asyncio.to_thread(radio, settings, "keys", "rotate", "--compromised")
            assert "key set 1 announced" in out
            await wait_for(lambda: node.verifier.keys.serial == 1, 10, "key set 1")
            await wait_for(lambda: signer.kid != kid_of(stolen), 10, "the switch")
            topic = ctl.service.topics.area_alert("thon-1")
            forged = Signer(stolen).sign("alert", rogue_alert(), now_ms(), 600_000)
            await rogue_publish(ctl, topic, forged)
            await wait_for(lambda: node.rejected["retired_key"] == 1, 10, "the stolen key refused")
            r = await ctl.api(
                "POST", "/alerts", json={"areas": ["thon-1"], "template": "fire", "repeat": 1}
            )
            assert r.status_code == 201, r.text
            await wait_for(lambda: sounding(node) == f"alert:{r.json()['id']}", 20, "the alert")
            assert (await ctl.api("POST", f"/alerts/{r.json()['id']}/cancel")).status_code == 200
            await wait_for(lambda: node.alerts_played, 10, "the real alert to stop")
            assert [a.alert_id for a in node.alerts_played] == [r.json()["id"]]


def now_ms() -> int:
    return int(time.time() * 1000)


def rogue_alert(at_ms: int | None = None) -> dict:
    return {
        "alert_id": "forged",
        "action": "play",
        "expires": (at_ms or now_ms()) + 600_000,
        "title": "Sơ tán",
        "duration_ms": 1000,
        "media": {"url": "http://127.0.0.1:1/x.mp3", "sha256": "0" * 64, "size": 1},
    }


def pub(key) -> str:
    return public_key_b64(key.public_key())


def kid_of(key) -> str:
    return key_id(key.public_key())
