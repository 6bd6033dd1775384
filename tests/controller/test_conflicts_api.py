"""Priorities at scheduling time and on the air: cuts, clashes, queues and quiet hours."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from controller.core.models import Delivery
from schedules import KEPT_AFTER_END_MS
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_api_input import counts
from tests.controller.test_broadcast_e2e import all_finished, announce, fleet_of, make_commune

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def next_minute(now: datetime, wanted: Callable[[datetime], bool]) -> datetime:
    """The first whole minute at least 5 minutes from now that is `wanted` (within a day, so
    inside the timelines' horizon)."""
    t = (now + timedelta(minutes=5)).replace(second=0, microsecond=0)
    while not wanted(t):
        t += timedelta(minutes=1)
    assert t - now < timedelta(hours=23), t
    return t


def body(ann: int, at: datetime, area: str = "xa-a", **extra: object) -> dict[str, object]:
    return {
        "announcement_id": ann,
        "starts_at": at.isoformat(),
        "targets": {"areas": [area]},
    } | extra


@pytest.mark.slow
async def test_priority_bulletin_cuts_a_normal_one_on_timeline_and_nodes(make_settings):
    clock = SteppedClock()  # held from the schedules until every node holds the media
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 2)
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            ann = await announce(ctl)
            clock.pause()
            at = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(seconds=5)
            r = await ctl.api("POST", "/schedules", json=body(ann["id"], at))
            normal = r.json()
            r = await ctl.api(
                "POST",
                "/schedules",
                json=body(ann["id"], at + timedelta(seconds=2), "thon-1", priority="priority"),
            )
            assert r.status_code == 201, r.text
            urgent = r.json()

            timeline = (await ctl.api("GET", "/nodes/n0/timeline")).json()
            cut = [a for a in timeline["adjustments"] if a["change"] == "cut_short"]
            assert len(cut) == 1 and cut[0]["schedule_id"] == normal["id"]
            assert "cut short" in cut[0]["reason"] and cut[0]["duration_ms"] == 2000
            assert [i["duration_ms"] for i in timeline["items"]] == [2000, ann["duration_s"] * 1000]
            n1 = (await ctl.api("GET", "/nodes/n1/timeline")).json()
            assert n1["adjustments"] == [] and len(n1["items"]) == 1
            await wait_for(
                lambda: all(n.media.is_ready(ann["media_sha256"]) for n in fleet.nodes),
                30,
                "every node to hold the media",
            )
            clock.resume()

            await wait_for(lambda: all_finished(ctl, urgent["id"], 1), 60, "the bulletin to play")

            # Cut to end as the bulletin starts, a node may report it finished or pre-empted.
            async def normal_done() -> bool:
                d = (await ctl.api("GET", f"/schedules/{normal['id']}/deliveries")).json()
                return d["counts"].get("finished", 0) + d["counts"].get("preempted", 0) == 2

            await wait_for(normal_done, 30, "the normal one")
            n0 = next(n for n in fleet.nodes if n.node_id == "n0")
            lengths = {p.broadcast_id: p.end_ms - p.start_ms for p in n0.played}
            assert abs(lengths[str(normal["id"])] - 2000) < 500
            assert lengths[str(urgent["id"])] >= ann["duration_s"] * 1000 - 500

            day = at.astimezone(LOCAL).date().isoformat()  # the log is by local day
            log = (await ctl.api("GET", f"/playback-log?area_id=xa-a&date={day}")).json()
            assert len(log) == 3 and all(r["started_at"] for r in log)
            assert {r["state"] for r in log} <= {"finished", "preempted"}


async def test_a_shifted_news_survives_recomputation_after_its_own_start(make_settings):
    """The news yields to a bulletin at the same minute: between its own start and its shifted
    start, a recomputation keeps it where the nodes were told, and its delivery stays planned.
    Once a node plays it there, a recomputation keeps it there too (placed at its own start,
    the bulletin would cut it, and the node would stop it mid-sentence)."""
    # Held still at each moment the test looks at: nothing runs on while it recomputes.
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        await make_commune(ctl, 1)
        ann = await announce(ctl)
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], at, on_preempt="shift"))
        assert r.status_code == 201, r.text
        news = r.json()["id"]
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], at, priority="priority"))
        assert r.status_code == 201, r.text

        def news_items(timeline: dict) -> list[tuple[str, int]]:
            return [
                (i["item_id"], i["duration_ms"])
                for i in timeline["items"]
                if i["item_id"].startswith(f"s{news}@")
            ]

        before = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        shifted = next(i for i in before["items"] if i["item_id"].startswith(f"s{news}@"))
        assert datetime.fromisoformat(shifted["start"]) > at

        def start_of(timeline: dict) -> str:
            return next(i["start"] for i in timeline["items"] if i["item_id"] == shifted["item_id"])

        # Half-way through the bulletin: the news's own start has passed, its turn has not come.
        clock.pause()
        clock.skip_to(at + timedelta(seconds=1))
        await ctl.service.timelines.refresh(force=True)
        after = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        assert news_items(after) == news_items(before) != []
        assert start_of(after) == shifted["start"]
        d = (await ctl.api("GET", f"/schedules/{news}/deliveries")).json()
        assert d["counts"] == {"planned": 1}, d

        # A second into its shifted turn, the node reported it started (as a node would).
        clock.skip_to(datetime.fromisoformat(shifted["start"]) + timedelta(seconds=1))
        with ctl.service.db.session() as s:
            row = s.exec(select(Delivery).where(Delivery.schedule_id == news)).one()
            row.state = "started"
            s.add(row)
            s.commit()
        await ctl.service.timelines.refresh(force=True)
        playing = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        assert news_items(playing) == news_items(before)
        assert start_of(playing) == shifted["start"]

        # Its planned end has passed, but the node, which waited behind a bulletin that ran
        # late, plays it still: it stays in the timeline sent, where it was (absent, the node
        # would stop it).
        end = datetime.fromisoformat(shifted["end"])
        clock.skip_to(end + timedelta(milliseconds=KEPT_AFTER_END_MS - 1000))
        assert sent_items(ctl, "n0", news) == [(shifted["item_id"], ms(shifted["start"]))]
        late = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        assert news_items(late) == news_items(before)
        assert start_of(late) == shifted["start"]
        # Once no node can still be playing it, it leaves.
        clock.skip_to(end + timedelta(milliseconds=KEPT_AFTER_END_MS + 1000))
        assert sent_items(ctl, "n0", news) == []
        assert news_items((await ctl.api("GET", "/nodes/n0/timeline")).json()) == []


async def test_a_node_that_joins_after_an_item_ended_gets_no_delivery_of_it(make_settings):
    """An item stays in timelines a while after its end (for a node playing it late); a node
    that becomes a target meanwhile could never have played it: no delivery is planned."""
    clock = SteppedClock()
    async with running_controller(make_settings(), clock) as ctl:
        await make_commune(ctl, 1)
        ann = await announce(ctl)
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], at))
        assert r.status_code == 201, r.text
        schedule = r.json()["id"]
        (item,) = (await ctl.api("GET", "/nodes/n0/timeline")).json()["items"]
        clock.pause()
        clock.skip_to(datetime.fromisoformat(item["end"]) + timedelta(seconds=5))
        r = await ctl.api("POST", "/nodes", json={"id": "n9", "name": "Loa 9", "area_id": "thon-1"})
        assert r.status_code == 201, r.text
        await ctl.service.timelines.refresh()
        assert [
            i["item_id"] for i in (await ctl.api("GET", "/nodes/n9/timeline")).json()["items"]
        ] == [item["item_id"]]
        d = (await ctl.api("GET", f"/schedules/{schedule}/deliveries")).json()
        assert [row["node_id"] for row in d["deliveries"]] == ["n0"], d


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def sent_items(ctl: RunningController, node_id: str, schedule_id: int) -> list[tuple[str, int]]:
    """The schedule's items (and starts) in the timeline the controller would send the node
    now, as it computes and stores it."""
    (publication,) = ctl.service.timelines.compute({node_id}, force=True)
    return [
        (i.item_id, i.start) for i in publication.body.items if i.broadcast_id == str(schedule_id)
    ]


async def test_equal_priority_clash_is_refused_unless_it_queues(make_settings, database_url):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        await make_commune(ctl, 2)
        ann = await announce(ctl)
        at = datetime.now(UTC) + timedelta(hours=2)
        first = (await ctl.api("POST", "/schedules", json=body(ann["id"], at))).json()
        before = counts(ctl.service)
        clash = body(ann["id"], at + timedelta(seconds=3), "thon-2", title="Tin chiều")
        r = await ctl.api("POST", "/schedules", json=clash)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert "'Tin chiều' (normal)" in detail and "overlaps 'Họp dân'" in detail
        assert "loudspeaker n1" in detail and "queue" in detail
        assert counts(ctl.service) == before

        r = await ctl.api("POST", "/schedules", json=clash | {"on_preempt": "queue"})
        assert r.status_code == 201, r.text
        timeline = (await ctl.api("GET", "/nodes/n1/timeline")).json()
        queued = timeline["adjustments"]
        assert [a["change"] for a in queued] == ["queued"], queued
        assert queued[0]["by_item_id"].startswith(f"s{first['id']}@")
        starts = [datetime.fromisoformat(i["start"]) for i in timeline["items"]]
        assert starts[1] - starts[0] == timedelta(milliseconds=ann["duration_s"] * 1000)
        # A priority bulletin at the same time is no clash: the timeline resolves it.
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], at, priority="priority"))
        assert r.status_code == 201, r.text


async def test_quiet_hours_refuse_normal_but_not_priority_at_night(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 2)
        ann = await announce(ctl)
        r = await ctl.api("PUT", "/areas/xa-a/quiet-hours", json={"start": "25:00", "end": "05:30"})
        assert r.status_code == 422 and "HH:MM" in r.text
        r = await ctl.api("PUT", "/areas/xa-a/quiet-hours", json={"start": "22:00", "end": "05:30"})
        assert r.status_code == 200 and r.json()["effective"] == {"start": "22:00", "end": "05:30"}
        village = (await ctl.api("GET", "/areas/thon-1/quiet-hours")).json()
        assert village["own"] is None and village["from_area"] == "xa-a"

        now = datetime.now(LOCAL)
        # In the commune's quiet hours (22:00-05:30), soon, whatever the time of the run.
        night = next_minute(now, lambda t: t.hour >= 22 or (t.hour, t.minute) < (5, 30))
        before = counts(ctl.service)
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], night, "thon-1"))
        assert r.status_code == 422 and "quiet hours 22:00–05:30 of area thon-1" in r.text
        daily = {"rrule": "FREQ=DAILY;BYHOUR=6,23;BYMINUTE=0"}
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], now, **daily))
        assert r.status_code == 422 and "quiet hours" in r.text
        assert counts(ctl.service) == before
        r = await ctl.api(
            "POST", "/schedules", json=body(ann["id"], night, "thon-1", priority="priority")
        )
        assert r.status_code == 201, r.text

        # Stricter hours on a village drop a normal commune broadcast from its nodes only.
        # Outside the commune's quiet hours, inside the village's stricter 20:00-06:00.
        evening = next_minute(now, lambda t: 20 <= t.hour < 22)
        r = await ctl.api("POST", "/schedules", json=body(ann["id"], evening))
        assert r.status_code == 201, r.text
        r = await ctl.api(
            "PUT", "/areas/thon-1/quiet-hours", json={"start": "20:00", "end": "06:00"}
        )
        assert r.status_code == 200
        n0 = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        assert [a["change"] for a in n0["adjustments"]] == ["quiet_hours"]
        assert [i["priority"] for i in n0["items"]] == ["priority"]
        n1 = (await ctl.api("GET", "/nodes/n1/timeline")).json()
        assert len(n1["items"]) == 1 and n1["items"][0]["priority"] == "normal"
        r = await ctl.api("DELETE", "/areas/thon-1/quiet-hours")
        assert r.json()["from_area"] == "xa-a"
        n0 = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        assert len(n0["items"]) == 2
