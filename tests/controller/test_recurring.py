"""Repeating schedules: their broadcasts reach node timelines and play; bad rules leave nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.clocks import SteppedClock
from tests.conftest import running_controller, wait_for
from tests.controller.test_api_input import counts
from tests.controller.test_broadcast_e2e import (
    all_finished,
    announce,
    fleet_of,
    make_commune,
    schedule_at,
)

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def daily_at(*moments: datetime) -> str:
    hours = ",".join(str(m.hour) for m in moments)
    return f"FREQ=DAILY;BYHOUR={hours};BYMINUTE={moments[0].minute}"


async def test_recurring_schedule_fills_timelines_and_bad_rules_are_refused(
    make_settings, database_url
):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        await make_commune(ctl, 2)
        ann = await announce(ctl)
        now = datetime.now(LOCAL).replace(second=0, microsecond=0)
        first, second = now + timedelta(hours=2), now + timedelta(hours=5)
        body = {
            "announcement_id": ann["id"],
            "starts_at": now.replace(tzinfo=None).isoformat(),
            "targets": {"areas": ["xa-a"]},
            "rrule": daily_at(first, second),
            "title": "Bản tin sáng chiều",
        }
        r = await ctl.api("POST", "/schedules", json=body)
        assert r.status_code == 201, r.text
        sched = r.json()
        assert sched["rrule"].startswith("FREQ=DAILY") and sched["status"] == "scheduled"
        assert datetime.fromisoformat(sched["starts_at"]) == first

        timeline = (await ctl.api("GET", "/nodes/n0/timeline")).json()
        expected = [f"s{sched['id']}@{int(m.timestamp() * 1000)}" for m in (first, second)]
        assert [i["item_id"] for i in timeline["items"]] == expected
        assert timeline["items"][0]["title"] == "Bản tin sáng chiều"
        assert datetime.fromisoformat(timeline["items"][1]["start"]).utcoffset() == timedelta(
            hours=7
        )
        d = (await ctl.api("GET", f"/schedules/{sched['id']}/deliveries")).json()
        assert d["nodes"] == 2 and d["counts"] == {"planned": 4}

        before = counts(ctl.service)
        past = (now - timedelta(days=3)).replace(tzinfo=None).isoformat()
        for change, status, words in (
            ({"rrule": "FREQ=HOURLY"}, 422, "FREQ=HOURLY is not supported"),
            ({"rrule": "FREQ=DAILY;BYSECOND=5"}, 422, "BYSECOND is not supported"),
            ({"rrule": "FREQ=DAILY;BYHOUR=25"}, 422, "BYHOUR"),
            ({"ends_on": (now - timedelta(days=1)).date().isoformat()}, 422, "before it starts"),
            ({"exdates": ["tomorrow"]}, 422, "not a date"),
            ({"targets": {"areas": ["nowhere"]}}, 422, "nowhere"),
            ({"starts_at": past, "rrule": "FREQ=DAILY;COUNT=2"}, 422, "no broadcast after now"),
            ({"starts_at": past, "rrule": None}, 422, "in the past"),
            ({"on_preempt": "sometimes"}, 422, "on_preempt"),
        ):
            r = await ctl.api("POST", "/schedules", json=body | change)
            assert r.status_code == status and words in r.text, (change, r.text)
        assert counts(ctl.service) == before

        # A daily rule started days ago still has broadcasts to come: accepted.
        r = await ctl.api(
            "POST", "/schedules", json=body | {"starts_at": past, "on_preempt": "queue"}
        )
        assert r.status_code == 201, r.text


@pytest.mark.slow
async def test_one_off_and_recurring_broadcasts_reach_nodes_and_play(make_settings):
    clock = SteppedClock()  # held from the schedule until every node holds the media
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 2)
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            ann = await announce(ctl)
            clock.pause()
            later = (datetime.now(LOCAL) + timedelta(minutes=3)).replace(second=0, microsecond=0)
            r = await ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": ann["id"],
                    "starts_at": datetime.now(UTC).isoformat(),
                    "targets": {"areas": ["xa-a"]},
                    "rrule": daily_at(later),
                },
            )
            assert r.status_code == 201, r.text
            recurring = r.json()
            soon = await schedule_at(ctl, ann["id"], clock.now_ms() + 4000, areas=["xa-a"])
            soon_ms = round(datetime.fromisoformat(soon["starts_at"]).timestamp() * 1000)
            expected = {
                f"s{soon['id']}@{soon_ms}",
                f"s{recurring['id']}@{int(later.timestamp() * 1000)}",
            }

            def retained() -> bool:
                for node in fleet.nodes:
                    body = node.timeline.body
                    if body is None or not expected <= {i.item_id for i in body.items}:
                        return False
                return True

            await wait_for(retained, 20, "both items in every node's timeline")
            await wait_for(
                lambda: all(n.media.is_ready(ann["media_sha256"]) for n in fleet.nodes),
                30,
                "every node to hold the media",
            )
            clock.resume()
            await wait_for(lambda: all_finished(ctl, soon["id"], 2), 60, "the one-off to play")
            assert all([p.broadcast_id for p in n.played] == [str(soon["id"])] for n in fleet.nodes)
