"""Role-matrix rows for commands, the firmware catalogue and retiring nodes (see
test_access_control.MATRIX): technicians command and retire nodes inside their area only,
administrators everywhere; everyone in scope reads commands; only administrators change the
firmware catalogue."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningController

ALL = {"admin", "officer", "commune_staff", "technician", "auditor"}
IMAGE = b"firmware image" * 64


def node_of(side: str) -> str:
    return "na" if side == "in" else "nb"


def village_of(side: str) -> str:
    return "thon-a" if side == "in" else "thon-b"


async def seed(ctl: RunningController, env: dict[str, Any]) -> None:
    # Seeded nodes never connect: commands go out with offline=send and simply time out.
    commands = {}
    for side in ("in", "out"):
        r = await ctl.api(
            "POST",
            "/commands",
            json={"command": "resync", "nodes": [node_of(side)], "offline": "send"},
        )
        assert r.status_code == 202, r.text
        commands[side] = r.json()["id"]
    env["commands"] = commands
    # Nodes to retire: each request of the matrix takes a fresh one.
    env["to_retire"] = {"in": [], "out": []}
    for side in ("in", "out"):
        for i in range(10):
            node_id = f"ret-{side}-{i}"
            r = await ctl.api(
                "POST", "/nodes", json={"id": node_id, "name": node_id, "area_id": village_of(side)}
            )
            assert r.status_code == 201, r.text
            env["to_retire"][side].append(node_id)
    r = await ctl.api(
        "POST",
        "/firmware",
        data={"version": "0.9.0", "released": "false"},
        files={"file": ("fw.bin", IMAGE, "application/octet-stream")},
    )
    assert r.status_code == 201, r.text


ROWS: list[tuple[str, Any, set[str], set[str]]] = [
    (
        "command a node",
        lambda s, e, n: (
            "POST",
            "/commands",
            {"command": "volume", "args": {"level": 50}, "nodes": [node_of(s)], "offline": "send"},
        ),
        {"admin", "technician"},
        {"admin"},
    ),
    (
        "command a village",
        lambda s, e, n: (
            "POST",
            "/commands",
            {"command": "test_tone", "areas": [village_of(s)], "offline": "send"},
        ),
        {"admin", "technician"},
        {"admin"},
    ),
    (
        "read command",
        lambda s, e, n: ("GET", f"/commands/{e['commands'][s]}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "commands of a node",
        lambda s, e, n: ("GET", f"/commands?node_id={node_of(s)}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "retire node",
        lambda s, e, n: ("POST", f"/nodes/{e['to_retire'][s].pop()}/retire", None),
        {"admin", "technician"},
        {"admin"},
    ),
    ("firmware catalogue", lambda s, e, n: ("GET", "/firmware", None), ALL, ALL),
    (
        "release firmware",
        lambda s, e, n: ("POST", "/firmware/0.9.0/release", None),
        {"admin"},
        {"admin"},
    ),
]
