"""Role-matrix rows for playlists and node groups (see test_access_control.MATRIX)."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningController

ALL = {"admin", "officer", "commune_staff", "technician", "auditor"}
WRITERS = {"admin", "officer", "commune_staff"}


def commune(side: str) -> str:
    return "xa-a" if side == "in" else "xa-b"


def node(side: str) -> str:
    return "na" if side == "in" else "nb"


async def seed(ctl: RunningController, env: dict[str, Any]) -> None:
    r = await ctl.api(
        "POST",
        "/playlists",
        json={"title": "p", "items": [{"kind": "announcement", "announcement_id": env["ann"]}]},
    )
    assert r.status_code == 201, r.text
    env["playlist"] = r.json()["id"]
    for side in ("in", "out"):
        body = {"id": f"grp-{side}", "name": "g", "area_id": commune(side), "nodes": [node(side)]}
        assert (await ctl.api("POST", "/groups", json=body)).status_code == 201


ROWS: list[tuple[str, Any, set[str], set[str]]] = [
    (
        "create playlist",
        lambda s, e, n: (
            "POST",
            "/playlists",
            {"title": "p", "items": [{"kind": "announcement", "announcement_id": e["ann"]}]},
        ),
        WRITERS,
        WRITERS,
    ),
    ("list playlists", lambda s, e, n: ("GET", "/playlists", None), ALL, ALL),
    ("read playlist", lambda s, e, n: ("GET", f"/playlists/{e['playlist']}", None), ALL, ALL),
    (
        "create group",
        lambda s, e, n: (
            "POST",
            "/groups",
            {"id": f"g{n}", "name": "g", "area_id": commune(s), "nodes": [node(s)]},
        ),
        WRITERS,
        {"admin"},
    ),
    ("read group", lambda s, e, n: ("GET", f"/groups/grp-{s}", None), ALL, {"admin", "auditor"}),
    (
        "set group members",
        lambda s, e, n: ("PUT", f"/groups/grp-{s}/nodes", {"nodes": [node(s)]}),
        WRITERS,
        {"admin"},
    ),
    (
        "schedule a group",
        lambda s, e, n: (
            "POST",
            "/schedules",
            {
                "announcement_id": e["ann"],
                "starts_at": e["later"],
                "targets": {"groups": [f"grp-{s}"]},
                "on_preempt": "queue",
            },
        ),
        WRITERS,
        {"admin"},
    ),
]
