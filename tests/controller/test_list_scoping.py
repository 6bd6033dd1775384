"""Lists show what concerns the user, not just a 200: for every role scoped to commune A, the
live broadcasts, playlists, announcements, schedules, alerts and nodes of commune B are not in
its lists and those of commune A are; province-wide content is in everyone's; administrators
and auditors see all. (The role matrix in test_access_control checks the status codes.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.programme.broadcasts import Targets
from protocol import Priority
from tests.conftest import RunningController, running_controller

AREAS = (
    {"id": "tinh", "name": "Tỉnh", "kind": "province"},
    {"id": "xa-a", "name": "Xã A", "kind": "commune", "parent_id": "tinh"},
    {"id": "thon-a", "name": "Thôn A", "kind": "village", "parent_id": "xa-a"},
    {"id": "xa-b", "name": "Xã B", "kind": "commune", "parent_id": "tinh"},
    {"id": "thon-b", "name": "Thôn B", "kind": "village", "parent_id": "xa-b"},
)
SCOPED = ("officer", "commune_staff", "technician")  # each with area xa-a
EVERYWHERE = ("admin", "auditor")
SIDES = {"a": "thon-a", "b": "thon-b"}


async def ids(ctl: RunningController, path: str, token: str, key: str = "id") -> set[Any]:
    r = await ctl.api("GET", path, token=token)
    assert r.status_code == 200, (path, r.text)
    rows = r.json()
    return {row[key] for row in (rows["items"] if isinstance(rows, dict) else rows)}


async def seed(ctl: RunningController) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    for body in AREAS:
        assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
    tokens = {"admin": ctl.token, "auditor": await ctl.login_as_new("kiem-tra", "auditor")}
    for role in SCOPED:
        tokens[role] = await ctl.login_as_new(f"{role}-a", role, "xa-a")
    writer_b = await ctl.login_as_new("officer-b", "officer", "xa-b")
    writers = {"a": tokens["officer"], "b": writer_b}
    made: dict[str, dict[str, Any]] = {"a": {}, "b": {}, "top": {}}
    later = datetime.now(UTC) + timedelta(days=1)
    for side, village in SIDES.items():
        node = f"n{side}"
        body = {"id": node, "name": node, "area_id": village}
        assert (await ctl.api("POST", "/nodes", json=body)).status_code == 201
        made[side]["node"] = node
        r = await ctl.api(
            "POST",
            "/announcements",
            json={"title": f"tin {side}", "text": "Xin chào."},
            token=writers[side],
        )
        assert r.status_code == 201, r.text
        ann = made[side]["announcement"] = r.json()["id"]
        r = await ctl.api(
            "POST",
            "/playlists",
            json={
                "title": f"ds {side}",
                "items": [{"kind": "announcement", "announcement_id": ann}],
            },
            token=writers[side],
        )
        assert r.status_code == 201, r.text
        made[side]["playlist"] = r.json()["id"]
        r = await ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": ann,
                "starts_at": later.isoformat(),
                "targets": {"areas": [village]},
            },
            token=writers[side],
        )
        assert r.status_code == 201, r.text
        made[side]["schedule"] = r.json()["id"]
        r = await ctl.api(
            "POST", "/alerts", json={"areas": [village], "template": "flood", "test": True}
        )
        assert r.status_code == 201, r.text
        made[side]["alert"] = r.json()["id"]
        live = await ctl.service.live.start(
            "Phát trực tiếp", Priority.priority, Targets(areas=[village]), "root", 5
        )
        made[side]["live"] = live.id
    # Province-wide: written by an administrator (no area), aimed at the whole province.
    r = await ctl.api(
        "POST",
        "/playlists",
        json={
            "title": "ds tỉnh",
            "items": [{"kind": "announcement", "announcement_id": made["a"]["announcement"]}],
        },
    )
    assert r.status_code == 201, r.text
    made["top"]["playlist"] = r.json()["id"]
    return tokens, made


LISTS = (
    ("live", "/live", "id"),
    ("playlist", "/playlists", "id"),
    ("announcement", "/announcements", "id"),
    ("schedule", "/schedules", "id"),
    ("alert", "/alerts?test=true", "id"),
    ("node", "/nodes", "id"),
)


@pytest.mark.slow
async def test_lists_show_only_what_concerns_the_user(make_settings):
    async with running_controller(make_settings()) as ctl:
        tokens, made = await seed(ctl)
        failures = []
        for role, token in tokens.items():
            for kind, path, key in LISTS:
                seen = await ids(ctl, path, token, key)
                expected_in = [made["a"][kind]] + (
                    [made["top"][kind]] if kind in made["top"] else []
                )
                if role in EVERYWHERE:
                    expected_in.append(made["b"][kind])
                missing = [x for x in expected_in if x not in seen]
                if missing:
                    failures.append(f"{role} does not see {kind} {missing} in {path}")
                if role in SCOPED and made["b"][kind] in seen:
                    failures.append(f"{role} of xa-a sees {kind} {made['b'][kind]} of xa-b")
        assert not failures, "\n".join(failures)
