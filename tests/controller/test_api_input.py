"""Bad API input gets a 4xx that says what was wrong, and nothing half-written is left behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from controller.core.models import Schedule, ScheduleTarget
from tests.conftest import running_controller


def counts(service) -> tuple[int, int]:
    with service.db.session() as s:
        return (
            int(s.exec(select(func.count()).select_from(Schedule)).one()),
            int(s.exec(select(func.count()).select_from(ScheduleTarget)).one()),
        )


async def test_bad_requests_are_refused_clearly_and_leave_nothing(make_settings, database_url):
    async with running_controller(make_settings(database_url=database_url)) as ctl:
        assert (
            await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        ).status_code == 201
        r = await ctl.api("POST", "/areas", json={"id": "Xã A!", "name": "x", "kind": "commune"})
        assert r.status_code == 422 and "id" in r.text
        r = await ctl.api("POST", "/areas", json={"id": "xa", "name": "again", "kind": "commune"})
        assert r.status_code == 422 and "already exists" in r.json()["detail"]
        r = await ctl.api(
            "POST",
            "/areas",
            json={"id": "t1", "name": "x", "kind": "village", "parent_id": "nowhere"},
        )
        assert r.status_code == 422 and "nowhere" in r.json()["detail"]
        r = await ctl.api("POST", "/nodes", json={"id": "n1", "name": "x", "area_id": "nowhere"})
        assert r.status_code == 422 and "nowhere" in r.json()["detail"]

        r = await ctl.api("POST", "/announcements", json={"title": "x", "text": "   "})
        assert r.status_code == 422 and "empty" in r.json()["detail"]
        r = await ctl.api("POST", "/announcements", json={"title": "x", "text": "a" * 6000})
        assert r.status_code == 422 and "limit" in r.json()["detail"]
        r = await ctl.api(
            "POST",
            "/announcements",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422
        r = await ctl.api(
            "POST",
            "/announcements",
            content=b"x" * (3 * 1024 * 1024),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        ann = (
            await ctl.api(
                "POST", "/announcements", json={"title": "Tin", "text": "Xin chào bà con."}
            )
        ).json()

        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        before = counts(ctl.service)
        cases = [
            (
                {"announcement_id": ann["id"], "starts_at": past, "targets": {"areas": ["xa"]}},
                422,
                "past",
            ),
            (
                {
                    "announcement_id": ann["id"],
                    "starts_at": future,
                    "targets": {"areas": ["xa", "nowhere"]},
                },
                422,
                "nowhere",
            ),
            (
                {
                    "announcement_id": ann["id"],
                    "starts_at": future,
                    "targets": {"nodes": ["ghost"]},
                },
                422,
                "ghost",
            ),
            ({"announcement_id": ann["id"], "starts_at": future, "targets": {}}, 422, "no targets"),
            (
                {"announcement_id": 999, "starts_at": future, "targets": {"areas": ["xa"]}},
                404,
                "999",
            ),
            (
                {
                    "announcement_id": ann["id"],
                    "starts_at": "tomorrow-ish",
                    "targets": {"areas": ["xa"]},
                },
                422,
                "starts_at",
            ),
            (
                {
                    "announcement_id": ann["id"],
                    "starts_at": future,
                    "targets": {"areas": ["xa"]},
                    "priority": "urgent",
                },
                422,
                "priority",
            ),
            (
                {
                    "announcement_id": ann["id"],
                    "starts_at": future,
                    "targets": {"areas": ["xa"]},
                    "surprise": 1,
                },
                422,
                "surprise",
            ),
        ]
        for body, status, words in cases:
            r = await ctl.api("POST", "/schedules", json=body)
            assert r.status_code == status, (body, r.text)
            assert words in r.text, (words, r.text)
        assert counts(ctl.service) == before

        assert (await ctl.api("GET", "/schedules/12345")).status_code == 404
        assert (await ctl.api("GET", "/nodes/ghost")).status_code == 404
        r = await ctl.http.get(f"{ctl.base_url}/media/{ann['media_sha256']}.mp3")
        assert r.status_code == 401
        r = await ctl.http.get(
            f"{ctl.base_url}/media/..%2F..%2Fetc%2Fpasswd", headers={"Authorization": "Bearer x.y"}
        )
        assert r.status_code in (401, 404)


async def test_naive_times_are_vietnamese_local_time(make_settings):
    async with running_controller(make_settings()) as ctl:
        await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        ann = (
            await ctl.api("POST", "/announcements", json={"title": "Tin", "text": "Xin chào."})
        ).json()
        local = (datetime.now(UTC) + timedelta(hours=7, days=1)).replace(tzinfo=None, microsecond=0)
        r = await ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": ann["id"],
                "starts_at": local.isoformat(),
                "targets": {"areas": ["xa"]},
            },
        )
        assert r.status_code == 201, r.text
        stored = datetime.fromisoformat(r.json()["starts_at"])
        assert stored.utcoffset() == timedelta(0)
        assert stored.replace(tzinfo=None) == local - timedelta(hours=7)
