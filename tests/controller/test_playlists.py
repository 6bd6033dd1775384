"""Playlists and node groups: validation, the deletion guard, and playing in order on nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from controller.core.models import Announcement, NodeGroup, PlaylistItem
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import announce, fleet_of, make_commune


async def playlist(ctl: RunningController, items: list[dict], title: str = "Bản tin sáng") -> dict:
    r = await ctl.api("POST", "/playlists", json={"title": title, "items": items})
    assert r.status_code == 201, r.text
    return dict(r.json())


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def count(ctl: RunningController, table: type) -> int:
    with ctl.service.db.session() as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


async def test_playlist_durations_validation_and_deletion_guard(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        a1 = await announce(ctl, "Thông báo thứ nhất.")
        a2 = await announce(ctl, "Thông báo thứ hai về lịch tiêm chủng.")
        p = await playlist(
            ctl,
            [
                {"kind": "chime"},
                {"kind": "announcement", "announcement_id": a1["id"]},
                {"kind": "silence", "duration_ms": 2000},
                {"kind": "announcement", "announcement_id": a2["id"]},
            ],
        )
        kinds = [e["kind"] for e in p["items"]]
        assert kinds == ["chime", "announcement", "silence", "announcement"]
        chime_s = p["items"][0]["duration_s"]
        assert 1.5 < chime_s < 3
        assert p["items"][1]["title"] == a1["title"]
        expected = chime_s + a1["duration_s"] + 2 + a2["duration_s"]
        assert p["duration_s"] == pytest.approx(expected, abs=0.01)
        offsets = [e["offset_s"] for e in p["items"]]
        assert offsets == sorted(offsets) and offsets[3] == pytest.approx(
            expected - a2["duration_s"]
        )

        # Bad playlists are refused with a reason; nothing is saved.
        before = (count(ctl, Announcement), count(ctl, PlaylistItem))
        for items, reason in (
            ([], "at least 1"),
            ([{"kind": "announcement", "announcement_id": 999}], "does not exist"),
            ([{"kind": "announcement"}], "announcement_id"),
            ([{"kind": "silence", "duration_ms": 5000}], "only silence"),
            (
                [
                    {"kind": "chime"},
                    {"kind": "silence", "duration_ms": 3_600_000},
                ],
                "a silence lasts",
            ),
            ([{"kind": "announcement", "announcement_id": p["id"]}], "is a playlist"),
            ([{"kind": "jingle"}], "kind"),
        ):
            r = await ctl.api("POST", "/playlists", json={"title": "x", "items": items})
            assert r.status_code == 422, (items, r.text)
            assert reason in r.text, (reason, r.text)
        assert (count(ctl, Announcement), count(ctl, PlaylistItem)) == before

        r = await ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": p["id"],
                "starts_at": later(3600),
                "targets": {"areas": ["xa-a"]},
            },
        )
        assert r.status_code == 201, r.text
        sched = r.json()
        # In use: neither the playlist nor an entry's content can go from under the schedule.
        r = await ctl.api("DELETE", f"/announcements/{a1['id']}")
        assert r.status_code == 409 and f"in playlist {p['id']}" in r.text
        r = await ctl.api("DELETE", f"/playlists/{p['id']}")
        assert r.status_code == 409 and f"schedule {sched['id']}" in r.text
        r = await ctl.api(
            "PUT", f"/playlists/{p['id']}", json={"title": "x", "items": [{"kind": "chime"}]}
        )
        assert r.status_code == 409
        got = (await ctl.api("GET", f"/playlists/{p['id']}")).json()
        assert got["used_by_schedules"] == [sched["id"]] and len(got["items"]) == 4

        # A playlist not scheduled can be changed and deleted; its content stays.
        q = await playlist(ctl, [{"kind": "announcement", "announcement_id": a2["id"]}], "Q")
        r = await ctl.api(
            "PUT",
            f"/playlists/{q['id']}",
            json={
                "title": "Q2",
                "items": [{"kind": "chime"}, {"kind": "announcement", "announcement_id": a2["id"]}],
            },
        )
        assert r.status_code == 200 and r.json()["title"] == "Q2" and len(r.json()["items"]) == 2
        assert (await ctl.api("DELETE", f"/playlists/{q['id']}")).status_code == 204
        assert (await ctl.api("GET", f"/playlists/{q['id']}")).status_code == 404
        assert (await ctl.api("GET", f"/announcements/{a2['id']}")).status_code == 200


async def test_content_longer_than_its_repeat_is_refused(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        a = await announce(ctl, "Bản tin.")
        p = await playlist(
            ctl,
            [
                {"kind": "announcement", "announcement_id": a["id"]},
                {"kind": "silence", "duration_ms": 600_000},
            ],
        )
        r = await ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": p["id"],
                "starts_at": later(3600),
                "rrule": "FREQ=DAILY;BYHOUR=6;BYMINUTE=0,5",
                "targets": {"areas": ["xa-a"]},
            },
        )
        assert r.status_code == 422 and "repeats after 5.0 min" in r.text, r.text


@pytest.mark.slow
async def test_playlist_plays_in_order_on_a_group_of_nodes(make_settings):
    clock = SteppedClock()  # held from the schedule until both group nodes hold the media
    async with running_controller(make_settings(), clock) as ctl:
        configs = await make_commune(ctl, 4)
        # n0, n2 are in thon-1; the group takes n0 and n1 (thon-2) within the commune.
        r = await ctl.api(
            "POST",
            "/groups",
            json={"id": "cho", "name": "Loa chợ", "area_id": "xa-a", "nodes": ["n0", "n1"]},
        )
        assert r.status_code == 201, r.text
        r = await ctl.api(
            "POST", "/groups", json={"id": "bad", "name": "x", "area_id": "thon-1", "nodes": ["n1"]}
        )
        assert r.status_code == 422 and "outside the group" in r.text
        assert count(ctl, NodeGroup) == 1

        a1 = await announce(ctl, "Mục một.")
        a2 = await announce(ctl, "Mục hai.")
        p = await playlist(
            ctl,
            [
                {"kind": "announcement", "announcement_id": a1["id"]},
                {"kind": "silence", "duration_ms": 1500},
                {"kind": "chime"},
                {"kind": "announcement", "announcement_id": a2["id"]},
            ],
        )
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            clock.pause()
            starts = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(seconds=5)
            r = await ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": p["id"],
                    "starts_at": starts.isoformat(),
                    "targets": {"groups": ["cho"]},
                },
            )
            assert r.status_code == 201, r.text
            sched = r.json()
            assert sched["targets"]["groups"] == ["cho"]
            timeline = (await ctl.api("GET", "/nodes/n0/timeline")).json()
            items = timeline["items"]
            assert [i["item_id"].rsplit("#", 1)[1] for i in items] == ["0", "1", "2"]
            assert (await ctl.api("GET", "/nodes/n2/timeline")).json()["items"] == []
            group = [n for n in fleet.nodes if n.node_id in ("n0", "n1")]
            await wait_for(
                lambda: all(
                    (b := n.timeline.body) is not None
                    and len(b.items) == 3
                    and all(n.media.is_ready(i.media.sha256) for i in b.items)
                    for n in group
                ),
                30,
                "both group nodes to hold the three parts",
            )
            clock.resume()

            async def finished() -> bool:
                d = (await ctl.api("GET", f"/schedules/{sched['id']}/deliveries")).json()
                return d["counts"].get("finished", 0) == 6

            await wait_for(finished, 60, "both group nodes to play the three parts")
            d = (await ctl.api("GET", f"/schedules/{sched['id']}/deliveries")).json()
            assert {row["node_id"] for row in d["deliveries"]} == {"n0", "n1"}
            by_node = {n.node_id: n for n in fleet.nodes}
            assert not by_node["n2"].played and not by_node["n3"].played
            offsets = [e["offset_s"] for e in p["items"] if e["kind"] != "silence"]
            planned0 = datetime.fromisoformat(sched["starts_at"])
            for row in d["deliveries"]:
                n = int(row["item_id"].rsplit("#", 1)[1])
                started = datetime.fromisoformat(row["started_at"])
                want = planned0 + timedelta(seconds=offsets[n])
                # Each part starts at its own offset on the node's clock, silences as gaps.
                assert abs((started - want).total_seconds()) < 1.0, row

            # A node joining the group gets the next broadcast; one leaving loses it.
            r = await ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": a1["id"],
                    "starts_at": later(3600),
                    "targets": {"groups": ["cho"]},
                },
            )
            assert r.status_code == 201
            r = await ctl.api("PUT", "/groups/cho/nodes", json={"nodes": ["n2", "n3"]})
            assert r.status_code == 200, r.text
            n2 = (await ctl.api("GET", "/nodes/n2/timeline")).json()["items"]
            n0 = (await ctl.api("GET", "/nodes/n0/timeline")).json()["items"]
            assert any(i["title"] == a1["title"] for i in n2)
            assert not any(datetime.fromisoformat(i["start"]) > datetime.now(UTC) for i in n0)
            assert any(datetime.fromisoformat(i["start"]) > datetime.now(UTC) for i in n2)
            r = await ctl.api("DELETE", "/groups/cho")
            assert r.status_code == 409
