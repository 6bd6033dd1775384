"""Pure parts of the node: provisioning files, the outbox, the fleet loader."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from firmware_sim import NodeConfig, NodeConfigError, Outbox, load_config, load_fleet
from firmware_sim.cli import build_parser, make_clock
from protocol import (
    EventType,
    NodeEvent,
    ScaledClock,
    Topics,
    new_private_key,
    parse_node_reports,
    public_key_b64,
)


def _event(i: int) -> NodeEvent:
    return NodeEvent(id=f"{i:032x}", node_id="n1", ts=1000 + i, type=EventType.media_ready)


def test_load_config_reads_provisioning_file(tmp_path: Path) -> None:
    key = public_key_b64(new_private_key().public_key())
    path = tmp_path / "n1.json"
    path.write_text(
        json.dumps(
            {
                "node_id": "n1",
                "mqtt_url": "mqtts://u:p%40ss@broker.example:8884",
                "areas": ["v-1"],
                "controller_keys": [key],
                "media_token": "tok",
                "future_field": 1,
            }
        )
    )
    config = load_config(path)
    broker = config.broker()
    assert (broker.host, broker.port, broker.tls) == ("broker.example", 8884, True)
    assert (broker.username, broker.password) == ("u", "p@ss")
    assert config.topic_prefix == "radio" and config.heartbeat_s == 30
    assert NodeConfig(node_id="n2", mqtt_url="mqtt://h").broker().port == 1883


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"node_id": "Bad/Id"}', "node_id"),
        ('{"node_id": "n1", "mqtt_url": "http://x"}', "mqtt_url"),
        ('{"node_id": "n1", "controller_keys": ["nope"]}', "controller_keys"),
        ('{"node_id": "n1", "areas": ["a/+"]}', "areas"),
    ],
)
def test_load_config_errors_name_the_problem(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(NodeConfigError, match=needle):
        load_config(path)
    with pytest.raises(NodeConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_load_fleet_reads_directory_and_refuses_duplicates(tmp_path: Path) -> None:
    for name, node_id in [("a.json", "n1"), ("b.json", "n2")]:
        (tmp_path / name).write_text(json.dumps({"node_id": node_id}))
    assert [c.node_id for c in load_fleet(tmp_path)] == ["n1", "n2"]
    (tmp_path / "c.json").write_text(json.dumps({"node_id": "n1"}))
    with pytest.raises(NodeConfigError, match="twice"):
        load_fleet(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NodeConfigError, match=r"no \*.json"):
        load_fleet(empty)


def test_cli_parses_and_builds_scaled_clock() -> None:
    args = build_parser().parse_args(
        ["--provision-dir", "x", "--speed", "60", "--clock-offset-ms", "-500"]
    )
    clock = make_clock(args.speed, args.clock_offset_ms, args.origin_ms)
    assert isinstance(clock, ScaledClock) and clock.offset_ms == -500


async def test_outbox_keeps_order_caps_size_and_acks_only_what_was_sent() -> None:
    box = Outbox(capacity=3)
    for i in range(5):
        box.push(_event(i))
    assert len(box) == 3 and box.dropped == 2
    head = await box.next()
    assert head.id == _event(2).id
    box.ack(head.id)
    box.ack("not-there")
    assert [e.id for e in box.pending()] == [_event(3).id, _event(4).id]


async def test_events_waiting_together_go_in_one_message_that_the_controller_reads() -> None:
    topics = Topics("radio")
    box = Outbox()
    assert box.message().ids == []
    box.push(_event(0))
    one = box.message()  # alone: the single object every controller reads
    assert json.loads(one.payload)["id"] == _event(0).id and one.ids == [_event(0).id]
    for i in range(1, 8):
        box.push(_event(i))
    several = box.message(most=5)
    assert several.ids == [_event(i).id for i in range(5)]
    parsed = parse_node_reports(topics, topics.events("n1"), several.payload)
    assert [e.id for e in parsed.reports] == several.ids and not parsed.refused
    # Bounded by bytes too: at most what fits, but always the oldest event.
    size = len(_event(0).model_dump_json()) * 2 + 4
    assert len(box.message(size=size).ids) == 2
    assert len(box.message(size=10).ids) == 1
    box.ack(*several.ids)  # the message's PUBACK forgets all it carried
    assert [e.id for e in box.pending()] == [_event(5).id, _event(6).id, _event(7).id]


async def test_outbox_persists_across_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path=path)
    for i in range(3):
        box.push(_event(i))
    box.ack((await box.next()).id)
    with path.open("a") as fh:
        fh.write('{"torn line')
    again = Outbox(path=path)
    # The acked event may come back (at-least-once); unacked ones always do, in order.
    ids = [e.id for e in again.pending()]
    assert ids[-2:] == [_event(1).id, _event(2).id]


async def test_media_that_arrives_whole_is_kept_only_when_it_matches(tmp_path: Path) -> None:
    import hashlib

    import httpx

    from firmware_sim.download import Downloader
    from firmware_sim.media import MediaCache, MediaError
    from protocol import MediaRef, SystemClock

    data = b"ID3" + bytes(range(256)) * 40
    ref = MediaRef(url="http://x/m.mp3", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    async with httpx.AsyncClient(timeout=60) as http:
        store = MediaCache(
            Downloader(http), lambda *a, **k: None, SystemClock(), cache_dir=tmp_path
        )
        with pytest.raises(MediaError, match="size"):
            store.put(ref, data[:-1])
        with pytest.raises(MediaError, match="sha256"):
            store.put(ref, data[:-1] + b"\x00")
        assert not store.is_ready(ref.sha256)
        assert not (tmp_path / "media" / ref.sha256).exists()
        store.put(ref, data)
        assert store.is_ready(ref.sha256)
        assert (tmp_path / "media" / ref.sha256).read_bytes() == data
        assert await MediaCache(
            Downloader(http), lambda *a, **k: None, SystemClock(), cache_dir=tmp_path
        ).from_cache(ref)


async def test_media_fetched_in_advance_is_counted_until_held() -> None:
    import hashlib

    import httpx

    from firmware_sim.download import Downloader
    from firmware_sim.media import MediaCache
    from protocol import MediaRef, SystemClock

    data = b"ID3 template"
    ref = MediaRef(
        url="http://127.0.0.1:9/t.mp3", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    async with httpx.AsyncClient(timeout=60) as http:
        store = MediaCache(Downloader(http), lambda *a, **k: None, SystemClock())
        store.prefetch_spread_s = 60.0
        store.prefetch([ref])
        assert store.prefetching == 1
        store.put(ref, data)  # held by other means (it came inside an alert)
        store.close()
        await asyncio.sleep(0)
        assert store.prefetching == 0


async def test_media_ready_is_said_once_per_item_and_forgotten_when_the_item_is_gone() -> None:
    # What a node has announced is remembered while the item may still play, then forgotten:
    # a node that runs for months must not keep every item it ever played.
    import hashlib

    import httpx

    from firmware_sim.download import Downloader
    from firmware_sim.media import MediaCache
    from protocol import MediaRef, SystemClock, TimelineItem

    said: list[str | None] = []
    data = b"sound"
    ref = MediaRef(
        url="http://127.0.0.1:9/m.mp3", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    async with httpx.AsyncClient(timeout=60) as http:
        store = MediaCache(
            Downloader(http), lambda *_a, **kw: said.append(kw.get("item_id")), SystemClock()
        )
        store.put(ref, data)
        items = [
            TimelineItem(item_id=f"i{i}", broadcast_id="b", start=0, duration_ms=1, media=ref)
            for i in range(3)
        ]
        store.want(items[:2], 1)
        store.want(items[:2], 2)  # the same items in the next timeline: said once
        assert said == ["i0", "i1"]
        store.want(items[1:], 3)  # i0 has played: forgotten
        assert said == ["i0", "i1", "i2"]
        store.want([items[0]], 4)  # listed again (a new timeline after a restart): said again
        assert said == ["i0", "i1", "i2", "i0"]
        store.close()


async def test_a_node_remembers_the_latest_items_played_and_counts_them_all() -> None:
    from firmware_sim.playback import PLAYED_KEPT, Playback
    from protocol import MediaRef, SystemClock, TimelineItem

    clock = SystemClock()
    playback = Playback(clock, lambda *_args, **_kw: None)
    media = MediaRef(url="http://x/m.mp3", sha256="0" * 64, size=1)
    for i in range(PLAYED_KEPT + 5):  # a node running for months plays without end
        item = TimelineItem(
            item_id=f"i{i}", broadcast_id="b", start=clock.now_ms(), duration_ms=0, media=media
        )
        await playback.play(item, 1)
    assert len(playback.played) == PLAYED_KEPT and playback.played_total == PLAYED_KEPT + 5
    assert (
        playback.played[0].item_id == "i5" and playback.played[-1].item_id == f"i{PLAYED_KEPT + 4}"
    )
