"""A node's trust: key announcements signed by a root key change which signing keys count, a
retired key stops counting, forged or stale announcements change nothing, and what the node
trusts and has accepted survives a restart (so a replay after the restart is refused)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fwsim_support import Controller, MediaServer, broker_port, timeline_body, until
from hypothesis import given
from hypothesis import strategies as st
from test_sim_alerts import SIREN, alert, cancel

from firmware_sim import Node, NodeConfig, NodeConfigError, load_config
from firmware_sim.replay_journal import COMPACT_AT, ReplayJournal, Syncs, parse_line
from firmware_sim.trust_store import TrustStore
from protocol import (
    Clock,
    KeyEntry,
    KeySetBody,
    Signer,
    SystemClock,
    new_private_key,
    public_key_b64,
)
from protocol.replay import ReplayState
from tests.clocks import SteppedClock


def now() -> int:
    return SystemClock().now_ms()


def entry(signer: Signer, not_before: int = 0, not_after: int | None = None) -> dict[str, Any]:
    key = KeyEntry(
        kid=signer.kid,
        public_key=public_key_b64(signer.public_key),
        not_before=not_before,
        not_after=not_after,
    )
    return key.model_dump()


def announcement(
    root: Signer, serial: int, keys: list[dict[str, Any]], seq: int | None = None
) -> bytes:
    body = KeySetBody.model_validate({"serial": serial, "keys": keys}).model_dump()
    return root.envelope("keys", body, now(), 3_600_000, seq=seq).model_dump_json().encode()


def config(
    prefix: str,
    controller: Controller,
    root: Signer | None,
    cache: Path | None,
    node_id: str = "n1",
) -> NodeConfig:
    return NodeConfig(
        node_id=node_id,
        mqtt_url=f"mqtt://127.0.0.1:{broker_port()}",
        topic_prefix=prefix,
        areas=["village-1"],
        controller_keys=[controller.public_key],
        root_keys=[public_key_b64(root.public_key)] if root else [],
        cache_dir=str(cache) if cache else None,
        client_id=f"{prefix}-{node_id}",
    )


@contextlib.asynccontextmanager
async def running(cfg: NodeConfig, clock: Clock | None = None) -> AsyncIterator[Node]:
    """One run of a node, from power-on to power-off."""
    node = Node(cfg, clock or SystemClock())
    task = asyncio.create_task(node.run())
    try:
        await asyncio.wait_for(node.connected.wait(), 60)
        yield node
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_root_signed_key_set_is_adopted_and_the_retired_key_dropped(
    prefix: str, controller: Controller, tmp_path: Path
) -> None:
    root, new = Signer(new_private_key()), Signer(new_private_key())
    clock = SteppedClock()
    async with running(config(prefix, controller, root, tmp_path), clock) as node:
        clock.pause()  # the old key's retirement comes when the test moves the clock there
        retire_at = clock.now_ms() + 1500
        keys = [entry(controller.signer, 0, retire_at), entry(new, clock.now_ms())]
        await controller.publish(
            controller.topics.controller_keys, announcement(root, 1, keys), retain=True
        )
        await until(lambda: node.verifier.keys.serial == 1, what="key set 1")
        await until(lambda: controller.events("n1", "keys_applied"), what="keys_applied event")
        assert controller.events("n1", "keys_applied")[0].detail == (
            f"serial 1: {controller.signer.kid}, {new.kid}"
        )

        topic = controller.topics.timeline("n1")
        await controller.publish(topic, controller.sign("timeline", timeline_body("n1", 1, [])))
        await controller.publish(
            topic, controller.sign("timeline", timeline_body("n1", 2, []), signer=new)
        )
        await until(lambda: node.timeline_version == 2, what="both keys trusted until retirement")

        clock.skip_to(retire_at)
        await controller.publish(topic, controller.sign("timeline", timeline_body("n1", 3, [])))
        await until(lambda: node.rejected["retired_key"] == 1, what="the retired key refused")
        assert node.timeline_version == 2 and node.rejected_total == 1


async def test_a_timeline_signed_again_by_a_new_key_is_kept_for_the_restart_after_retirement(
    prefix: str, controller: Controller, tmp_path: Path
) -> None:
    """After a key switch the controller signs the node's timeline again, unchanged, with the new
    key. The node has nothing to apply, but it keeps the new copy: once the old key is retired,
    a node that restarts without the broker still plays its programme from the card."""
    root, new = Signer(new_private_key()), Signer(new_private_key())
    clock = SteppedClock()
    cfg = config(prefix, controller, root, tmp_path)
    topic = controller.topics.timeline("n1")
    body = timeline_body("n1", 1, [])
    async with running(cfg, clock) as node:
        clock.pause()
        retire_at = clock.now_ms() + 1500
        await controller.publish(topic, controller.sign("timeline", body))
        await until(lambda: node.timeline_version == 1, what="the timeline")
        keys = [entry(controller.signer, 0, retire_at), entry(new, clock.now_ms())]
        await controller.publish(
            controller.topics.controller_keys, announcement(root, 1, keys), retain=True
        )
        await until(lambda: node.verifier.keys.serial == 1, what="key set 1")
        await controller.publish(topic, controller.sign("timeline", body, signer=new))
        kept = tmp_path / "n1" / "timeline.json"
        await until(lambda: json.loads(kept.read_bytes())["kid"] == new.kid, what="the new copy")
        assert node.timeline_version == 1 and node.rejected_total == 0
    clock.skip_to(retire_at + 1)  # the old key is retired; the broker is out of reach
    offline = cfg.model_copy(update={"mqtt_url": "mqtt://127.0.0.1:1"})
    node = Node(offline, clock)
    task = asyncio.create_task(node.run())
    try:
        await until(lambda: node.timeline_version == 1, what="the programme from the card")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_forged_stale_and_misdirected_key_announcements_change_nothing(
    prefix: str, controller: Controller
) -> None:
    root, new = Signer(new_private_key()), Signer(new_private_key())
    topic = controller.topics.controller_keys
    async with (
        running(config(prefix, controller, root, None)) as node,
        running(config(prefix, controller, None, None, "n2")) as unrooted,
    ):
        good = [entry(controller.signer), entry(new)]
        await controller.publish(topic, announcement(Signer(new_private_key()), 5, good))
        await controller.publish(topic, announcement(controller.signer, 5, good))  # a daily key
        await controller.publish(topic, announcement(root, 2, good))
        await until(lambda: node.verifier.keys.serial == 2, what="key set 2")
        await controller.publish(topic, announcement(root, 1, [entry(new)]))
        bad = json.loads(announcement(root, 3, good))
        bad["body"]["keys"][0]["kid"] = new.kid
        # Signed after what `root` signed (sequences are milliseconds; the same millisecond
        # would make it a replay, not the bad body it is meant to be).
        resigner = Signer(root.key, seq_floor=root.last_seq)
        await controller.publish(topic, resigner.sign("keys", bad["body"], now(), 60_000))
        await controller.publish(topic, announcement(root, 3, good, seq=1))  # below 2's seq
        await until(lambda: node.rejected_total == 5, what="five refusals")
        assert dict(node.rejected) == {
            "unknown_key": 2,
            "stale": 1,
            "invalid_body": 1,
            "replayed": 1,
        }
        assert node.verifier.keys.serial == 2 and set(node.verifier.trusted) == {
            controller.signer.kid,
            new.kid,
        }
        # A node provisioned without root keys cannot take any announcement.
        await until(lambda: unrooted.rejected["unknown_key"] >= 4, what="no root, no new keys")
        assert unrooted.verifier.keys.serial == 0


async def test_trusted_keys_survive_a_restart_and_a_tampered_file_does_not(
    prefix: str, controller: Controller, tmp_path: Path
) -> None:
    root, new = Signer(new_private_key()), Signer(new_private_key())
    cfg = config(prefix, controller, root, tmp_path)
    keys_topic = controller.topics.controller_keys
    async with running(cfg) as node:
        keys = [entry(controller.signer, 0, now() + 3_600_000), entry(new, now())]
        await controller.publish(keys_topic, announcement(root, 1, keys), retain=True)
        await until(lambda: node.verifier.keys.serial == 1, what="key set 1")
    # The retained announcement is gone (a broker that lost it); the node remembers.
    await controller.publish(keys_topic, b"", retain=True)
    await controller.publish(
        controller.topics.timeline("n1"),
        controller.sign("timeline", timeline_body("n1", 1, []), signer=new),
        retain=True,
    )
    async with running(cfg) as node:
        assert node.verifier.keys.serial == 1
        await until(lambda: node.timeline_version == 1, what="a timeline signed by the new key")
        assert node.rejected_total == 0

    stored = tmp_path / "n1" / "keys.json"
    env = json.loads(stored.read_bytes())
    env["body"]["keys"] = [entry(Signer(new_private_key()))]
    stored.write_text(json.dumps(env))
    assert TrustStore(cfg, tmp_path / "n1").verifier.keys.serial == 0  # signature broken


async def test_replays_after_a_restart_are_refused_and_retained_state_comes_back(
    prefix: str, controller: Controller, media: MediaServer, tmp_path: Path
) -> None:
    media.files["siren.mp3"] = SIREN
    cfg = config(prefix, controller, None, tmp_path)
    alert_topic, cmd_topic = controller.topics.area_alert("village-1"), controller.topics.cmd("n1")
    timeline_topic = controller.topics.timeline("n1")
    async with running(cfg) as node:
        await controller.publish(
            timeline_topic, controller.sign("timeline", timeline_body("n1", 3, [])), retain=True
        )
        play = controller.sign(
            "alert", alert("a1", media.url("siren.mp3"), SIREN, area="village-1")
        )
        await controller.publish(alert_topic, play, retain=True)
        await until(lambda: node.alerts_played, what="the alert")
        await controller.publish(
            alert_topic, controller.sign("alert", cancel("a1") | {"area": "village-1"})
        )
        await controller.publish(alert_topic, b"", retain=True)
        command = controller.sign(
            "cmd", {"node_id": "n1", "command": "volume", "args": {"level": 35}}
        )
        await controller.publish(cmd_topic, command)
        await until(lambda: node.health.volume == 35, what="the command")
        await until((tmp_path / "n1" / "volume.json").exists, what="the volume kept")
        await until(lambda: node.timeline_version == 3, what="the timeline")

    async with running(cfg) as node:
        # The retained timeline is taken again after the restart: its state was lost with it.
        await until(lambda: node.timeline_version == 3, what="the retained timeline again")
        await controller.publish(alert_topic, play)
        await controller.publish(cmd_topic, command)
        await until(lambda: node.rejected["replayed"] == 2, what="both replays refused")
        # A barrier: behind each replay, on its topic, a message signed two hours ago (so
        # refused as expired). Once both are refused, the node has dealt with all before them.
        old = now() - 7_200_000
        stale_alert = alert("a2", media.url("siren.mp3"), SIREN, area="village-1")
        await controller.publish(alert_topic, controller.sign("alert", stale_alert, now_ms=old))
        stale_cmd = {"node_id": "n1", "command": "volume", "args": {"level": 50}}
        await controller.publish(cmd_topic, controller.sign("cmd", stale_cmd, now_ms=old))
        await until(lambda: node.rejected["expired"] == 2, what="the barrier")
        assert not node.alerts_played
        assert dict(node.rejected) == {"replayed": 2, "expired": 2}
        assert len(controller.acks("n1")) == 1  # the command did not run again
        assert node.health.volume == 35  # its level, kept across the restart

    (tmp_path / "n1" / "replay.log").write_bytes(b"{not json\n\xff\n")
    async with running(cfg) as node:  # a damaged file costs the protection, not the node
        await until(lambda: node.timeline_version == 3, what="a node that still works")


def test_the_journal_keeps_the_newest_per_topic_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "replay.log"
    state, journal = ReplayState(), ReplayJournal(path, "n1")
    for i in range(100):
        state.record(f"t{i % 3}", i, f"id{i}")
        journal.append(state, f"t{i % 3}")
    assert journal.lines < COMPACT_AT  # compacted on the way
    with open(path, "ab") as f:
        f.write(b'["t0",1000,"cut sho')  # the power went mid-line
    restored = ReplayJournal(path, "n1").load()
    assert restored.last == {"t0": (99, "id99"), "t1": (97, "id97"), "t2": (98, "id98")}
    assert restored.restored == {"t0", "t1", "t2"}
    assert path.read_bytes().count(b"\n") == 3  # compacted at start


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.jobs = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        return super().submit(*args, **kwargs)


async def test_the_journals_of_a_process_are_synced_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many nodes' journals, appended to at once (an alert reaching a fleet), are synced in one
    worker-thread job; each file once however often it was appended to; a closing journal at
    once; a journal closed after its round has nothing left to sync."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    syncs = Syncs(flush_s=0.05)
    journals = [ReplayJournal(tmp_path / f"n{i}.log", f"n{i}", syncs) for i in range(50)]
    for seq in (1, 2):
        for j in journals:
            state = ReplayState()
            state.record("t", seq, f"id{seq}")
            j.append(state, "t")
    await until(lambda: syncs.rounds == 1 and len(synced) == 50, what="one round")
    assert executor.jobs == 1
    assert sorted(synced) == sorted(str(j.path) for j in journals)
    # Closing: a journal waiting for the next round is synced there and then.
    state = ReplayState()
    state.record("t", 3, "id3")
    journals[0].append(state, "t")
    journals[0].close()
    assert synced[-1] == str(journals[0].path) and len(synced) == 51
    journals[1].close()  # synced in the round already
    assert len(synced) == 51
    executor.shutdown()


@given(st.binary(max_size=600) | st.text(max_size=80).map(str.encode))
def test_any_journal_line_parses_or_is_skipped(line: bytes) -> None:
    entry = parse_line(line)
    assert entry is None or (isinstance(entry[1], int) and len(entry[2]) <= 64)


def test_provisioning_with_a_bad_root_key_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "n1.json"
    path.write_text(json.dumps({"node_id": "n1", "root_keys": ["bm90IGEga2V5"]}))
    with pytest.raises(NodeConfigError, match="root_keys"):
        load_config(path)
    path.write_text(json.dumps({"node_id": "n1", "key_serial": -1}))
    with pytest.raises(NodeConfigError, match="key_serial"):
        load_config(path)
