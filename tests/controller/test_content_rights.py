"""Content belongs to the level that wrote it: a commune uses a district's playlist but may not
replace it, and nobody schedules or plays content they cannot see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import running_controller

AREAS = [
    {"id": "huyen", "name": "Huyện", "kind": "district"},
    {"id": "xa-a", "name": "Xã A", "kind": "commune", "parent_id": "huyen"},
    {"id": "xa-b", "name": "Xã B", "kind": "commune", "parent_id": "huyen"},
]


async def test_commune_staff_cannot_change_a_district_playlist(make_settings):
    async with running_controller(make_settings()) as ctl:
        for body in AREAS:
            assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
        district = await ctl.login_as_new("district", "officer", "huyen")
        staff = await ctl.login_as_new("staff-a", "commune_staff", "xa-a")
        ann = await ctl.api(
            "POST", "/announcements", json={"title": "t", "text": "Xin chào."}, token=district
        )
        items = [{"kind": "announcement", "announcement_id": ann.json()["id"]}]
        made = await ctl.api(
            "POST", "/playlists", json={"title": "Huyện", "items": items}, token=district
        )
        playlist = made.json()["id"]

        # The commune sees and may play it…
        seen = await ctl.api("GET", f"/playlists/{playlist}", token=staff)
        assert seen.status_code == 200
        # …but not replace or delete it, nor the district's announcement.
        r = await ctl.api(
            "PUT",
            f"/playlists/{playlist}",
            json={"title": "Xã A", "items": items + items},
            token=staff,
        )
        assert r.status_code == 403 and r.json()["code"] == "content_of_higher_level", r.text
        r = await ctl.api("DELETE", f"/playlists/{playlist}", token=staff)
        assert r.status_code == 403
        r = await ctl.api("DELETE", f"/announcements/{ann.json()['id']}", token=staff)
        assert r.status_code == 403
        after = await ctl.api("GET", f"/playlists/{playlist}", token=staff)
        assert after.json()["title"] == "Huyện" and len(after.json()["items"]) == 1
        # Its own level may.
        r = await ctl.api(
            "PUT",
            f"/playlists/{playlist}",
            json={"title": "Huyện 2", "items": items + items},
            token=district,
        )
        assert r.status_code == 200


async def test_content_of_another_commune_cannot_be_scheduled_or_played(make_settings):
    async with running_controller(make_settings()) as ctl:
        for body in AREAS:
            assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
        officer_a = await ctl.login_as_new("officer-a", "officer", "xa-a")
        officer_b = await ctl.login_as_new("officer-b", "officer", "xa-b")
        theirs = await ctl.api(
            "POST", "/announcements", json={"title": "B", "text": "Xã B."}, token=officer_b
        )
        theirs_id = theirs.json()["id"]
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()

        async def schedule(announcement_id: int) -> tuple[int, str]:
            r = await ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": announcement_id,
                    "starts_at": later,
                    "targets": {"areas": ["xa-a"]},
                },
                token=officer_a,
            )
            return r.status_code, r.json()["detail"]

        # Answered exactly like an id that does not exist: nothing tells it is there.
        assert await schedule(theirs_id) == (404, f"announcement {theirs_id} does not exist")
        assert await schedule(999_999) == (404, "announcement 999999 does not exist")

        async def play_in_playlist(announcement_id: int, kind: str) -> tuple[int, str]:
            entry = {"kind": kind, "announcement_id": announcement_id}
            if kind == "stream":
                entry |= {"url": "http://station.example/live.mp3", "duration_ms": 60_000}
            r = await ctl.api(
                "POST", "/playlists", json={"title": "p", "items": [entry]}, token=officer_a
            )
            return r.status_code, r.json()["detail"]

        for kind in ("announcement", "stream"):
            mine = await play_in_playlist(theirs_id, kind)
            missing = await play_in_playlist(999_999, kind)
            assert mine[0] == missing[0] == 422, (kind, mine)
            assert mine[1] == missing[1].replace("999999", str(theirs_id)), (mine, missing)
