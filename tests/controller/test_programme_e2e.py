"""A commune's programme end to end: recurring news, a staff draft approved, a priority bulletin
relayed from the province, an equal-priority clash refused then queued; it plays on simulated
nodes exactly as the timelines say, a controller restart in the middle loses and doubles
nothing, and the playback log and the .ics export agree with what played.

Controller and nodes share one stepped clock: it runs at real speed, and the test jumps it to
just before each next item once the one before has been reported finished. Every item so plays
in real time, on time whatever the machine's load (a scaled clock shrinks the nodes' 5 s late
tolerance to a fraction of a real second).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from controller.core.models import Delivery
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of
from tests.controller.test_programme_api import ics_count

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
# Each jump lands this long before the next item starts: the nodes wait for it in real time.
LEAD_MS = 2_000
# What a node reports last about an item: nothing changes after one of these.
SETTLED = {"finished", "failed", "missed", "preempted", "cancelled"}


def stepped_clock() -> tuple[SteppedClock, datetime]:
    """A clock an hour before the next local hour H (time to set up; the test then moves
    it on); returns it and H."""
    real = datetime.now(LOCAL)
    hour = (real + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    if hour.hour in (21, 22, 23, 0, 1, 2, 3, 4):  # keep clear of any night and of midnight
        hour = hour.replace(hour=9) + timedelta(days=1)
    start = hour - timedelta(minutes=60)
    offset = int((start - real).total_seconds() * 1000)
    return SteppedClock(offset_ms=offset), hour


async def build_area(ctl: RunningController) -> list:
    from firmware_sim.config import NodeConfig

    for body in (
        {"id": "tinh", "name": "Tỉnh", "kind": "province"},
        {"id": "xa-a", "name": "Xã A", "kind": "commune", "parent_id": "tinh"},
        {"id": "thon-1", "name": "Thôn 1", "kind": "village", "parent_id": "xa-a"},
        {"id": "thon-2", "name": "Thôn 2", "kind": "village", "parent_id": "xa-a"},
    ):
        assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
    configs = []
    for i, village in enumerate(("thon-1", "thon-1", "thon-2", "thon-2")):
        r = await ctl.api(
            "POST", "/nodes", json={"id": f"n{i}", "name": f"Loa {i}", "area_id": village}
        )
        assert r.status_code == 201
        configs.append(NodeConfig.model_validate(r.json()["provisioning"]))
    return configs


async def text(ctl: RunningController, token: str, title: str, body: str) -> int:
    r = await ctl.api("POST", "/announcements", json={"title": title, "text": body}, token=token)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def ms(entry: dict, key: str = "start") -> int:
    return int(datetime.fromisoformat(entry[key]).timestamp() * 1000)


def at(hour: datetime, minute: int) -> str:
    return (hour + timedelta(minutes=minute)).isoformat()


def deliveries(ctl: RunningController) -> list[Delivery]:
    with ctl.service.db.session() as s:
        return list(s.exec(select(Delivery)).all())


def settled_before(ctl: RunningController, cutoff: datetime) -> list[Delivery] | None:
    """The deliveries planned before `cutoff` once the nodes have said the last of each."""
    rows = [d for d in deliveries(ctl) if d.planned_start < cutoff]
    return rows if rows and all(d.state in SETTLED for d in rows) else None


async def play_until(
    ctl: RunningController, clock: SteppedClock, timelines: dict[str, list], end: datetime
) -> None:
    """Jump to just before each item that starts before `end`, in order, and wait until every
    node has reported it (and all before it) finished before jumping on. Items that follow
    one another without a gap (a shifted item after the one that pushed it) start while the
    time runs on by itself; a jump never goes back, so it moves nothing for them."""
    end_ms = int(end.timestamp() * 1000)
    starts = sorted({ms(i) for items in timelines.values() for i in items if ms(i) < end_ms})
    for start in starts:
        clock.skip_to(start - LEAD_MS)
        cutoff = datetime.fromtimestamp((start + 1) / 1000, LOCAL)
        rows = await wait_for(
            lambda cutoff=cutoff: settled_before(ctl, cutoff), 60, f"the items up to {cutoff}"
        )
        assert {d.state for d in rows} == {"finished"}, [
            (d.node_id, d.item_id, d.state, d.detail) for d in rows if d.state != "finished"
        ]


def all_downloaded(ctl: RunningController, count: int) -> bool:
    rows = deliveries(ctl)
    return len(rows) == count and all(d.state == "downloaded" for d in rows)


async def schedule_programme(ctl: RunningController, hour: datetime) -> dict[str, int]:
    officer = await ctl.login_as_new("can-bo-xa", "officer", "xa-a")
    staff = await ctl.login_as_new("nhan-vien-xa", "commune_staff", "xa-a")
    province = await ctl.login_as_new("can-bo-tinh", "officer", "tinh")
    ids: dict[str, int] = {}

    news = await text(ctl, officer, "Bản tin", "Bản tin thời sự của xã.")
    r = await ctl.api(
        "POST",
        "/schedules",
        token=officer,
        json={
            "announcement_id": news,
            "starts_at": at(hour, 0),
            "rrule": f"FREQ=DAILY;BYHOUR={hour.hour};BYMINUTE=0,10,20",
            "ends_on": hour.date().isoformat(),
            "on_preempt": "shift",
            "targets": {"areas": ["xa-a"]},
        },
    )
    assert r.status_code == 201, r.text
    ids["news"] = r.json()["id"]

    # Commune staff draft; only an officer's approval puts it on the timelines.
    vaccine = await text(ctl, staff, "Tiêm chủng", "Lịch tiêm chủng tại trạm y tế.")
    r = await ctl.api(
        "POST",
        "/schedules",
        token=staff,
        json={
            "announcement_id": vaccine,
            "starts_at": at(hour, 5),
            "targets": {"areas": ["thon-1"]},
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    ids["draft"] = r.json()["id"]
    items = (await ctl.api("GET", "/nodes/n0/timeline")).json()["items"]
    assert not any(i["item_id"].startswith(f"s{ids['draft']}@") for i in items)
    assert (
        await ctl.api("POST", f"/schedules/{ids['draft']}/approve", token=staff)
    ).status_code == 403
    r = await ctl.api("POST", f"/schedules/{ids['draft']}/approve", token=officer)
    assert r.status_code == 200 and r.json()["status"] == "scheduled", r.text

    # The province relays a priority bulletin to every commune below, over the news.
    bulletin = await text(ctl, province, "Bản tin tỉnh", "Thông báo của tỉnh về mưa lớn.")
    r = await ctl.api(
        "POST",
        "/schedules",
        token=province,
        json={
            "announcement_id": bulletin,
            "starts_at": at(hour, 10),
            "priority": "priority",
            "targets": {"areas": ["tinh"]},
        },
    )
    assert r.status_code == 201, r.text
    ids["bulletin"] = r.json()["id"]

    # An equal-priority clash is refused, naming it, unless the officer queues.
    market = await text(ctl, staff, "Chợ phiên", "Chợ phiên sáng mai họp sớm.")
    clash = {"announcement_id": market, "starts_at": at(hour, 20), "targets": {"areas": ["thon-2"]}}
    r = await ctl.api("POST", "/schedules", token=officer, json=clash)
    assert r.status_code == 409 and "Bản tin" in r.text, r.text
    r = await ctl.api("POST", "/schedules", token=officer, json=clash | {"on_preempt": "queue"})
    assert r.status_code == 201, r.text
    ids["queued"] = r.json()["id"]
    return ids


@pytest.mark.slow
async def test_programme_plays_as_timelines_say_across_a_controller_restart(make_settings):
    clock, hour = stepped_clock()
    # The clock jumps up to an hour at a time. A node's last heartbeat then looks that old to
    # the offline sweep (which the jump wakes at once) until its next one arrives: nodes must
    # not go offline (and online again, re-sent timelines and all) over a jump, so the heartbeat
    # timeout is longer than the whole programme. Timelines are signed for 7 days and the
    # horizon is 24 h, far beyond the jumps. The refresh every 2 s (real time) re-plans shifted
    # and queued items while the time moves, as in service.
    settings = make_settings(timeline_refresh_s=2, offline_after_s=4 * 3600)
    first = running_controller(settings, clock)
    ctl = await first.__aenter__()
    try:
        configs = await build_area(ctl)
        ids = await schedule_programme(ctl, hour)
        timelines = {
            c.node_id: (await ctl.api("GET", f"/nodes/{c.node_id}/timeline")).json()["items"]
            for c in configs
        }
    except BaseException:
        await first.__aexit__(None, None, None)
        raise
    # 3 news, the bulletin, and the approved draft (thon-1) or the queued item (thon-2).
    assert [len(timelines[n]) for n in ("n0", "n1", "n2", "n3")] == [5, 5, 5, 5]
    n0 = timelines["n0"]
    bulletin = next(i for i in n0 if i["item_id"].startswith(f"s{ids['bulletin']}@"))
    shifted = [i for i in n0 if i["item_id"].startswith(f"s{ids['news']}@")][1]
    assert ms(shifted) >= ms(bulletin, "end")
    n2 = timelines["n2"]
    queued = next(i for i in n2 if i["item_id"].startswith(f"s{ids['queued']}@"))
    last_news = [i for i in n2 if i["item_id"].startswith(f"s{ids['news']}@")][2]
    assert ms(queued) >= ms(last_news, "end")

    async with fleet_of(configs, clock) as fleet:
        try:
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            # Every item's audio is on every node before the first jump.
            await wait_for(lambda: all_downloaded(ctl, 20), 60, "the media on every node")
            await play_until(ctl, clock, timelines, hour + timedelta(minutes=15))
        finally:
            # The controller (and its embedded broker) stops between broadcasts.
            await first.__aexit__(None, None, None)
        async with running_controller(settings, clock) as ctl:
            await play_until(ctl, clock, timelines, hour + timedelta(minutes=30))
            played = {n.node_id: [p.item_id for p in n.played] for n in fleet.nodes}
            rows = deliveries(ctl)
            day = hour.date().isoformat()
            log = (await ctl.api("GET", f"/playback-log?area_id=xa-a&date={day}")).json()
            ics = (await ctl.api("GET", "/areas/xa-a/programme.ics")).text

    # Nothing lost, nothing doubled: every node played exactly its timeline, once each.
    for node_id, items in timelines.items():
        assert Counter(played[node_id]) == Counter(i["item_id"] for i in items), node_id
        starts = [i["item_id"] for i in sorted(items, key=ms)]
        assert played[node_id] == starts, node_id
    assert sorted((d.node_id, d.item_id) for d in rows) == sorted(
        (n, i["item_id"]) for n, items in timelines.items() for i in items
    )
    assert {d.state for d in rows} == {"finished"}
    for d in rows:
        item = next(i for i in timelines[d.node_id] if i["item_id"] == d.item_id)
        # Started on the node's clock at the planned time, within the nodes' late tolerance.
        assert d.started_at is not None
        assert abs(d.started_at.timestamp() * 1000 - ms(item)) < 5000, d

    # The playback log and the calendar export agree with what played.
    assert sorted((r["node_id"], r["item_id"], r["state"]) for r in log) == sorted(
        (d.node_id, d.item_id, "finished") for d in rows
    )
    occurrences = {d.item_id for d in rows}
    lo, hi = hour - timedelta(minutes=1), hour + timedelta(minutes=30)
    assert ics_count(ics, lo, hi) == len(occurrences) == 6
