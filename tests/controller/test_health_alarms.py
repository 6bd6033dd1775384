"""Alarm lifecycle and rules on a real database: raised once per open condition, acknowledged,
cleared when the condition ends; listeners hear only committed changes; telemetry downsampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from controller.core.db import Database
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import (
    Alarm,
    Announcement,
    Delivery,
    DeliveryState,
    Node,
    NodeEventRecord,
    NodeStateChange,
    Schedule,
    TelemetryHourly,
    TelemetrySample,
)
from controller.core.time import utc_datetime
from controller.health.alarm_rules import AlarmRules, outdated
from controller.health.alarms import AlarmBook
from controller.health.presence import Presence
from controller.health.stream_alarms import StreamAlarms
from controller.health.telemetry import TelemetryStore
from protocol import EventType, NodeState, NodeStatus, Telemetry
from protocol.clock import SystemClock


class FixedClock(SystemClock):
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        super().__init__()
        self.ms = int(now.timestamp() * 1000)

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


T0 = datetime(2026, 12, 14, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(commune_database: Database) -> Database:
    with commune_database.session() as s:
        s.add(Node(id="n1", name="Loa 1", area_id="xa", firmware="sim-1.0.0"))
        s.add(Node(id="n2", name="Loa 2", area_id="xa", firmware="sim-1.2.0"))
        s.commit()
    return commune_database


@pytest.fixture
def world(db, make_settings) -> dict[str, Any]:
    clock = FixedClock(T0)
    settings = make_settings(
        alarm_offline_after_s=60,
        offline_after_s=30,
        flap_changes=4,
        flap_window_s=600,
        alarm_dead_air_grace_s=30,
    )
    book = AlarmBook(clock)
    presence = Presence(settings, clock)
    telemetry = TelemetryStore(settings)
    heard: list[dict[str, Any]] = []
    book.listeners.append(heard.append)
    latest = {"version": None}
    rules = AlarmRules(settings, book, presence, telemetry, lambda _s: latest["version"])
    return dict(
        clock=clock,
        settings=settings,
        book=book,
        presence=presence,
        telemetry=telemetry,
        rules=rules,
        heard=heard,
        latest=latest,
    )


def open_kinds(db: Database, node_id: str = "n1") -> set[str]:
    with db.session() as s:
        rows = s.exec(select(Alarm).where(Alarm.node_id == node_id)).all()
    return {a.kind for a in rows if a.cleared_at is None}


def test_an_alarm_is_raised_once_acknowledged_and_cleared(db, world):
    book: AlarmBook = world["book"]
    with db.session() as s:
        first = book.raise_alarm(s, "n1", "speaker_fault", "speaker check failed")
        again = book.raise_alarm(s, "n1", "speaker_fault", "still failing")
        assert first is not None and again is None
        assert world["heard"] == []  # nothing is announced before the commit
        s.commit()
    assert [c["change"] for c in world["heard"]] == ["raised"]
    assert world["heard"][0]["area_id"] == "xa"
    with db.session() as s:
        assert book.raise_alarm(s, "n1", "speaker_fault") is None
        s.commit()
        alarm = book.acknowledge(s, first.id, "kythuat", "đang đến thay loa")
        s.commit()
        assert alarm.state == "acknowledged" and alarm.acked_by == "kythuat"
        with pytest.raises(Conflict, match="already acknowledged by kythuat"):
            book.acknowledge(s, first.id, "other")
        cleared = book.clear_alarm(s, "n1", "speaker_fault", "speaker ok")
        s.commit()
        assert cleared is not None and cleared.cleared_at is not None
        with pytest.raises(Conflict, match="already cleared"):
            book.acknowledge(s, first.id, "kythuat")
        with pytest.raises(NotFound):
            book.acknowledge(s, 999_999, "kythuat")
        with pytest.raises(Invalid, match="unknown alarm kind"):
            book.raise_alarm(s, "n1", "gremlins")
        # The same condition coming back later is a new alarm.
        assert book.raise_alarm(s, "n1", "speaker_fault") is not None
        s.commit()
    assert [c["change"] for c in world["heard"]] == ["raised", "acknowledged", "cleared", "raised"]


def test_a_rolled_back_raise_notifies_nobody_and_the_index_forbids_a_second_open_alarm(db, world):
    book: AlarmBook = world["book"]
    with db.session() as s:
        book.raise_alarm(s, "n1", "offline", "x")
        s.rollback()
    assert world["heard"] == [] and open_kinds(db) == set()
    with db.session() as s:
        s.add(Alarm(node_id="n1", kind="offline"))
        s.commit()
    with db.session() as s, pytest.raises(Exception, match=r"(?i)unique"):
        s.add(Alarm(node_id="n1", kind="offline"))
        s.commit()


def telemetry(**fields: Any) -> Telemetry:
    return Telemetry(node_id="n1", ts=0, **fields)


def beat(db, world, **fields: Any) -> None:
    """A heartbeat of n1 as ingestion stores it."""
    now = utc_datetime(world["clock"].now_ms())
    with db.session() as s:
        node = s.get(Node, "n1")
        world["presence"].on_heartbeat(s, node, now)
        s.add(node)
        world["telemetry"].record(s, [("n1", telemetry(**fields), now)])
        s.commit()


def test_heartbeat_alarms_follow_the_readings(db, world):
    rules: AlarmRules = world["rules"]
    beat(
        db,
        world,
        speaker_ok=False,
        amplifier_ok=False,
        power="battery",
        battery_pct=12,
        temperature_c=81.5,
        storage_free_mb=20,
    )
    with db.session() as s:
        rules.evaluate(s)
    assert open_kinds(db) == {
        "speaker_fault",
        "amplifier_fault",
        "mains_lost",
        "low_battery",
        "over_temperature",
        "storage_low",
    }
    # Cooling to just under the limit keeps the alarm (hysteresis); well under clears it.
    beat(db, world, temperature_c=68.0, power="battery", battery_pct=12)
    with db.session() as s:
        rules.evaluate(s)
    assert open_kinds(db) == {"mains_lost", "low_battery", "over_temperature"}
    beat(db, world, temperature_c=40.0)
    with db.session() as s:
        raised, cleared = rules.evaluate(s)
    assert raised == 0 and cleared == 3 and open_kinds(db) == set()


def test_a_heartbeat_found_clear_clears_alarms_opened_after_it_was_judged(db, world):
    """A pass judges a heartbeat once and skips nodes with nothing to raise or clear; an alarm
    opened since (as by another controller before a restart, or left from one) is cleared by
    the next pass all the same, and a new heartbeat is judged again."""
    rules: AlarmRules = world["rules"]
    beat(db, world, temperature_c=40.0, storage_free_mb=900, speaker_ok=True)
    with db.session() as s:
        assert rules.evaluate(s) == (0, 0)
    with db.session() as s:
        for kind in ("over_temperature", "storage_low", "speaker_fault"):
            world["book"].raise_alarm(s, "n1", kind, "left open")
        s.commit()
    with db.session() as s:
        assert rules.evaluate(s) == (0, 3)
    assert open_kinds(db) == set()
    beat(db, world, temperature_c=40.0, storage_free_mb=20, speaker_ok=True)
    with db.session() as s:
        assert rules.evaluate(s) == (1, 0)
    assert open_kinds(db) == {"storage_low"}


def test_a_heartbeat_the_database_refuses_changes_nothing_the_rules_judge_by(db, world):
    """Its clock sample (5 s ahead) would raise clock_offset; refused, it leaves no trace,
    so a heartbeat judged before still says all there is."""
    store: TelemetryStore = world["telemetry"]
    beat(db, world, controller_delay_ms=40)
    with db.session() as s:
        assert world["rules"].evaluate(s) == (0, 0)
    latest, offset = store.latest["n1"], store.clock_offset("n1")
    now = utc_datetime(world["clock"].now_ms())
    ahead = Telemetry(node_id="n1", ts=world["clock"].now_ms() + 5000, memory_free_mb=2**64)
    with db.session() as s, pytest.raises(Exception, match=r"(?i)range|too large|overflow"):
        store.record(s, [("n1", ahead, now)])
        s.commit()
    assert store.latest["n1"] is latest and store.clock_offset("n1") == offset
    with db.session() as s:
        assert world["rules"].evaluate(s) == (0, 0)
    # Stored, the same sample is judged.
    with db.session() as s:
        store.record(s, [("n1", ahead.model_copy(update={"memory_free_mb": 512}), now)])
        s.commit()
    with db.session() as s:
        assert world["rules"].evaluate(s) == (1, 0)
    assert open_kinds(db) == {"clock_offset"}


def test_offline_alarm_waits_for_the_threshold_and_flapping_is_damped(db, world):
    rules: AlarmRules = world["rules"]
    clock: FixedClock = world["clock"]
    presence: Presence = world["presence"]

    def state(status: NodeStatus) -> None:
        with db.session() as s:
            node = s.get(Node, "n1")
            report = NodeState(node_id="n1", status=status, ts=clock.now_ms())
            presence.on_state(s, node, report, utc_datetime(clock.now_ms()))
            presence.store(s)
            s.add(node)
            s.commit()

    def judge() -> set[str]:
        with db.session() as s:
            rules.evaluate(s)
        return open_kinds(db)

    state(NodeStatus.online)
    state(NodeStatus.lost)  # the will
    clock.advance(30)
    assert judge() == set()  # offline, but not yet for the threshold
    clock.advance(31)
    assert judge() == {"offline"}
    state(NodeStatus.online)
    assert judge() == set()
    # Two more changes make four within the window: flapping. The offline alarm is neither
    # raised again nor cleared while it flaps; one `flapping` alarm says why.
    state(NodeStatus.lost)
    state(NodeStatus.online)
    with db.session() as s:
        assert presence.state_of(s.get(Node, "n1")) == "flapping"
    assert judge() == {"flapping"}
    state(NodeStatus.lost)
    clock.advance(120)
    assert judge() == {"flapping"}
    # Calm for a whole window: flapping ends, and the node's real state counts again.
    clock.advance(600)
    assert judge() == {"offline"}
    with db.session() as s:
        kinds = [a.kind for a in s.exec(select(Alarm).where(Alarm.node_id == "n1")).all()]
    assert kinds.count("offline") == 2 and kinds.count("flapping") == 1
    with db.session() as s:
        changes = s.exec(select(NodeStateChange).order_by(col(NodeStateChange.id))).all()
    assert [c.state for c in changes] == [
        "online",
        "offline",
        "online",
        "offline",
        "online",
        "offline",
    ]
    assert not changes[0].flapping and changes[-1].flapping


def test_a_stale_retained_online_does_not_revive_a_node(db, world):
    clock: FixedClock = world["clock"]
    presence: Presence = world["presence"]
    connected_at = clock.now_ms()
    with db.session() as s:
        node = s.get(Node, "n1")
        presence.on_state(s, node, NodeState(node_id="n1", status="online", ts=connected_at), T0)
        s.add(node)
        s.commit()
    clock.advance(100)
    with db.session() as s:
        assert len(presence.sweep(s)) == 1
    with db.session() as s:
        node = s.get(Node, "n1")
        # The broker re-delivers the retained `online` of the old connection after a
        # controller reconnect: older than the recorded change, it is ignored.
        stale = NodeState(node_id="n1", status="online", ts=connected_at)
        assert presence.on_state(s, node, stale, utc_datetime(clock.now_ms())) is None
        assert node.status == "offline"
        # It reconnects; the will of its old session, delivered late by the broker, is ignored.
        fresh = NodeState(node_id="n1", status="online", ts=clock.now_ms())
        assert presence.on_state(s, node, fresh, utc_datetime(clock.now_ms()))["state"] == "online"
        old_will = NodeState(node_id="n1", status="lost", ts=connected_at)
        assert presence.on_state(s, node, old_will, utc_datetime(clock.now_ms())) is None
        assert node.status == "online" and presence.stale == 2
        # Its own session's will (built just before its `online`) counts.
        will = NodeState(node_id="n1", status="lost", ts=fresh.ts - 50)
        assert presence.on_state(s, node, will, utc_datetime(clock.now_ms())) is not None
        assert node.status == "lost"


def online_with_a_schedule(db, world) -> datetime:
    """n1 online for a minute and schedule 1 to plan deliveries of; returns the time now."""
    beat(db, world)
    world["clock"].advance(60)
    beat(db, world)
    now = utc_datetime(world["clock"].now_ms())
    with db.session() as s:
        s.add(Announcement(id=1, title="t", text="t", media_sha256="0" * 64))
        s.flush()
        s.add(Schedule(id=1, announcement_id=1, starts_at=now))
        s.commit()
    return now


def delivery(now: datetime, item: str, ago_s: int, ms: int, state: DeliveryState) -> Delivery:
    """n1's delivery of `item` of schedule 1, begun `ago_s` before `now`, lasting `ms`."""
    start = now - timedelta(seconds=ago_s)
    return Delivery(
        item_id=item,
        schedule_id=1,
        node_id="n1",
        planned_start=start,
        planned_duration_ms=ms,
        state=state,
    )


@pytest.mark.parametrize("whole_fleet_from", [2_000, 0], ids=["some rows", "every row"])
def test_dead_air_media_failures_and_firmware(db, world, whole_fleet_from):
    rules: AlarmRules = world["rules"]
    rules.whole_fleet_from = whole_fleet_from  # the nodes read by id, or the fleet at once
    now = online_with_a_schedule(db, world)
    with db.session() as s:
        s.add(delivery(now, "a", 50, 10_000, DeliveryState.downloaded))
        for i in range(3):
            s.add(
                NodeEventRecord(
                    id=f"ev{i}", node_id="n1", type="media_failed", ts=now, detail="sha256 mismatch"
                )
            )
        s.commit()
    world["latest"]["version"] = "sim-1.2.0"
    with db.session() as s:
        rules.evaluate(s)
    assert open_kinds(db) == {"dead_air", "media_failing", "firmware_outdated"}
    assert open_kinds(db, "n2") == set()  # runs the latest; never seen, so never offline
    with db.session() as s:
        d = s.exec(select(Delivery)).one()
        d.state = DeliveryState.finished
        s.add(d)
        s.add(NodeEventRecord(id="ok", node_id="n1", type="media_ready", ts=now))
        s.get(Node, "n1").firmware = "sim-1.2.0"
        s.commit()
        rules.evaluate(s)
    assert open_kinds(db) == set()


def test_dead_air_judges_the_newest_item_that_has_ended(db, world):
    """The newest item is still playing (or was cancelled): the one before it decides."""
    rules: AlarmRules = world["rules"]
    now = online_with_a_schedule(db, world)
    with db.session() as s:
        s.add(delivery(now, "older", 300, 10_000, DeliveryState.finished))
        s.add(delivery(now, "missed", 200, 10_000, DeliveryState.downloaded))
        s.add(delivery(now, "long", 40, 600_000, DeliveryState.started))  # playing now
        s.add(delivery(now, "dropped", 40, 1_000, DeliveryState.cancelled))  # never counts
        # Downloads failed, one completed, then fewer failures than the alarm needs.
        for i, (ago_s, kind) in enumerate([(60, "media_failed")] * 3 + [(50, "media_ready")]):
            ts = now - timedelta(seconds=ago_s)
            s.add(NodeEventRecord(id=f"m{i}", node_id="n1", type=kind, ts=ts))
        for i in range(2):
            ts = now - timedelta(seconds=40)
            s.add(NodeEventRecord(id=f"f{i}", node_id="n1", type="media_failed", ts=ts))
        s.commit()
        rules.evaluate(s)
    assert open_kinds(db) == {"dead_air"}
    with db.session() as s:
        alarm = s.exec(select(Alarm).where(Alarm.kind == "dead_air")).one()
        assert alarm.detail.startswith("item missed due ")
        missed = s.exec(select(Delivery).where(Delivery.item_id == "missed")).one()
        missed.state = DeliveryState.finished
        s.add(missed)
        s.commit()
        rules.evaluate(s)
    assert open_kinds(db) == set()


def test_dead_air_is_not_raised_for_an_item_missed_before_one_played(db, world):
    """An item missed earlier in the day, then one played that has ended: the newest decides."""
    rules: AlarmRules = world["rules"]
    now = online_with_a_schedule(db, world)
    with db.session() as s:
        s.add(delivery(now, "missed", 300, 10_000, DeliveryState.missed))
        s.add(delivery(now, "played", 200, 10_000, DeliveryState.finished))
        s.commit()
        rules.evaluate(s)
    assert open_kinds(db) == set()
    with db.session() as s:  # the newest too goes unplayed: now it is dead air
        s.add(delivery(now, "late", 100, 10_000, DeliveryState.failed))
        s.commit()
        rules.evaluate(s)
    assert open_kinds(db) == {"dead_air"}


@pytest.mark.parametrize("whole_fleet_from", [2_000, 0], ids=["some rows", "every row"])
def test_a_retired_nodes_alarms_are_cleared_and_it_is_judged_no_more(db, world, whole_fleet_from):
    rules: AlarmRules = world["rules"]
    rules.whole_fleet_from = whole_fleet_from
    now = online_with_a_schedule(db, world)
    with db.session() as s:
        s.add(delivery(now, "a", 50, 10_000, DeliveryState.missed))
        s.commit()
        rules.evaluate(s)
    assert open_kinds(db) == {"dead_air"}
    with db.session() as s:
        s.get(Node, "n1").retired = True
        s.commit()
        rules.evaluate(s)
        alarm = s.exec(select(Alarm).where(Alarm.node_id == "n1")).one()
        assert alarm.cleared_at is not None and alarm.clear_detail == "node retired"
        rules.evaluate(s)  # still missed, still online: a retired node raises nothing
    assert open_kinds(db) == set()


def test_version_comparison():
    assert outdated("sim-1.0.0", "sim-1.2.0")
    assert not outdated("sim-1.10.0", "sim-1.2.0")
    assert not outdated("sim-1.2.0", "sim-1.2.0")
    assert not outdated("", "sim-1.2.0")


def test_telemetry_is_summarised_per_hour_and_old_samples_go(db, world):
    store: TelemetryStore = world["telemetry"]
    start = T0 - timedelta(days=10)
    rows = []
    for minute in range(0, 120, 10):  # two hours, every ten minutes
        t = telemetry(temperature_c=30 + minute / 10, speaker_ok=minute != 30, power="mains")
        rows.append(("n1", t, start + timedelta(minutes=minute)))
    with db.session() as s:
        store.record(s, rows)
        s.commit()
        hours = store.rollup(s, T0)
    assert hours == 2  # the hours with samples; the empty ones after them are skipped
    with db.session() as s:
        summaries = s.exec(select(TelemetryHourly).order_by(TelemetryHourly.hour)).all()
        assert [h.samples for h in summaries] == [6, 6]
        first = summaries[0]
        assert (first.temperature_min, first.temperature_max) == (30.0, 35.0)
        assert first.temperature_avg == 32.5 and first.speaker_faults == 1
        # Older than telemetry_full_days (7): the samples themselves are gone.
        assert s.exec(select(TelemetrySample)).all() == []
        resolution, points = store.history(s, "n1", start, start + timedelta(hours=3), T0)
    assert resolution == "hourly" and len(points) == 2
    with db.session() as s:
        assert store.rollup(s, T0) == 0  # nothing new to summarise


def test_stream_alarm_reads_events_stored_in_the_millisecond_of_its_last_check(
    db: Database, world: dict[str, Any]
) -> None:
    """The stream alarm reads stored events from where its last check ended: a report stored in
    that same millisecond, after the check, is read by the next check, and none twice."""
    clock = world["clock"]
    alarms = StreamAlarms(db, world["book"], clock)
    clock.ms += 1000
    at = utc_datetime(clock.ms)

    def stored(event_id: str, kind: EventType) -> None:
        with db.session() as s:
            s.add(
                NodeEventRecord(
                    id=event_id, node_id="n1", type=kind.value, ts=at, received_at=at, item_id="s1"
                )
            )
            s.commit()

    stored("failed", EventType.stream_failed)
    assert alarms.check() == 1 and open_kinds(db) == {"stream_dead"}
    stored("back", EventType.stream_connected)  # the same millisecond, after the check
    assert alarms.check() == 1 and open_kinds(db) == set()
    assert alarms.check() == 0  # nothing read twice
    stored("failed-again", EventType.stream_failed)
    assert alarms.check() == 1 and open_kinds(db) == {"stream_dead"}
