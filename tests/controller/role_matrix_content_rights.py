"""Role-matrix rows for changing content, and for using content one cannot see
(see test_access_control.MATRIX).

Here "in" is content of the users' own commune (xa-a); "out" is content of a higher level (the
province, which xa-a sees and plays but may not change) or, for scheduling, content of another
commune (xa-b, which xa-a does not see at all)."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningController

WRITERS = {"admin", "officer", "commune_staff"}
ROLES = 5  # every role of the matrix asks once per side


async def content_of(ctl: RunningController, token: str, n: int) -> list[int]:
    made = []
    for _ in range(n):
        r = await ctl.api(
            "POST", "/announcements", json={"title": "t", "text": "Xin chào."}, token=token
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    return made


async def playlists_of(ctl: RunningController, token: str, ann: int, n: int) -> list[int]:
    made = []
    for _ in range(n):
        body = {"title": "p", "items": [{"kind": "announcement", "announcement_id": ann}]}
        r = await ctl.api("POST", "/playlists", json=body, token=token)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    return made


async def seed(ctl: RunningController, env: dict[str, Any]) -> None:
    own = env["tokens"]["officer"]  # an officer of xa-a
    province = await ctl.login_as_new("u-province-officer", "officer", "tinh")
    other = await ctl.login_as_new("u-officer-b", "officer", "xa-b")
    env["rights"] = {
        "ann": {
            "in": await content_of(ctl, own, ROLES),
            "out": await content_of(ctl, province, ROLES),
        },
        "playlist": {
            "in": await playlists_of(ctl, own, env["ann"], 1),
            "out": await playlists_of(ctl, province, env["ann"], 1),
        },
        "doomed": {
            "in": await playlists_of(ctl, own, env["ann"], ROLES),
            "out": await playlists_of(ctl, province, env["ann"], ROLES),
        },
        "commune": {
            "in": (await content_of(ctl, own, 1))[0],
            "out": (await content_of(ctl, other, 1))[0],
        },
    }


def replace_body(e: dict[str, Any]) -> dict[str, Any]:
    return {"title": "p2", "items": [{"kind": "announcement", "announcement_id": e["ann"]}]}


ROWS: list[tuple[str, Any, set[str], set[str]]] = [
    (
        "replace playlist (own level / higher level)",
        lambda s, e, n: ("PUT", f"/playlists/{e['rights']['playlist'][s][0]}", replace_body(e)),
        WRITERS,
        {"admin"},
    ),
    (
        "delete playlist (own level / higher level)",
        lambda s, e, n: ("DELETE", f"/playlists/{e['rights']['doomed'][s].pop()}", None),
        WRITERS,
        {"admin"},
    ),
    (
        "delete announcement (own level / higher level)",
        lambda s, e, n: ("DELETE", f"/announcements/{e['rights']['ann'][s].pop()}", None),
        WRITERS,
        {"admin"},
    ),
    (
        "schedule content (own commune / another commune's)",
        lambda s, e, n: (
            "POST",
            "/schedules",
            {
                "announcement_id": e["rights"]["commune"][s],
                "starts_at": e["later"],
                "targets": {"areas": ["thon-a"]},
                "on_preempt": "queue",
            },
        ),
        WRITERS,
        {"admin"},
    ),
]
