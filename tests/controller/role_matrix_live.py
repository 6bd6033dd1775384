"""Role-matrix rows for live broadcasts (see test_access_control.MATRIX).

Starting or stopping needs the alert right over the targets (admin, officer, commune staff);
reading needs read where the broadcast concerns the user. One live voice per loudspeaker, so
each start targets a node of its own and each stop takes a broadcast of its own.
"""

from __future__ import annotations

from typing import Any

from controller.programme.broadcasts import Targets
from protocol import Priority
from tests.conftest import RunningController

ALL = {"admin", "officer", "commune_staff", "technician", "auditor"}
SPEAKERS = {"admin", "officer", "commune_staff"}
VILLAGE = {"in": "thon-a", "out": "thon-b"}


async def seed(ctl: RunningController, env: dict[str, Any]) -> None:
    env["lives"] = {"in": [], "out": []}
    for side, village in VILLAGE.items():
        for i in range(15):
            body = {"id": f"lv-{side}-{i}", "name": "loa", "area_id": village}
            assert (await ctl.api("POST", "/nodes", json=body)).status_code == 201
        for i in range(10, 15):  # broadcasts to stop, one per role
            live = await ctl.service.live.start(
                "Phát trực tiếp", Priority.priority, Targets(nodes=[f"lv-{side}-{i}"]), "root", 5
            )
            env["lives"][side].append(live.id)
    env["live"] = {side: ids[0] for side, ids in env["lives"].items()}


ROWS: list[tuple[str, Any, set[str], set[str]]] = [
    (
        "start live",
        lambda s, e, n: (
            "POST",
            "/live",
            {"title": "t", "targets": {"nodes": [f"lv-{s}-{n % 10}"]}, "max_minutes": 1},
        ),
        SPEAKERS,
        {"admin"},
    ),
    ("list live", lambda s, e, n: ("GET", "/live", None), ALL, ALL),
    (
        "read live",
        lambda s, e, n: ("GET", f"/live/{e['live'][s]}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "stop live",
        lambda s, e, n: ("POST", f"/live/{e['lives'][s].pop()}/stop", None),
        SPEAKERS,
        {"admin"},
    ),
]
