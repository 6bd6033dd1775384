"""Role-matrix rows for device health: alarms, fleet counts, telemetry and node timelines (see
test_access_control.MATRIX). Acknowledging is for technicians (and administrators) in scope."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningController

ALL = {"admin", "officer", "commune_staff", "technician", "auditor"}
KINDS = ["speaker_fault", "amplifier_fault", "over_temperature", "low_battery", "dead_air"]


def commune(side: str) -> str:
    return "xa-a" if side == "in" else "xa-b"


def node(side: str) -> str:
    return "na" if side == "in" else "nb"


async def seed(ctl: RunningController, env: dict[str, Any]) -> None:
    """One open alarm per acknowledging request: an acknowledged alarm cannot be again."""
    service = ctl.service
    env["alarms"] = {"in": [], "out": []}
    with service.db.session() as s:
        for side in ("in", "out"):
            for kind in KINDS:
                alarm = service.alarms.raise_alarm(s, node(side), kind, "role matrix")
                assert alarm is not None
                s.flush()
                env["alarms"][side].append(alarm.id)
        s.commit()


ROWS: list[tuple[str, Any, set[str], set[str]]] = [
    ("list alarms", lambda s, e, n: ("GET", f"/alarms?area_id={commune(s)}", None), ALL, ALL),
    (
        "acknowledge alarm",
        lambda s, e, n: ("POST", f"/alarms/{e['alarms'][s].pop()}/ack", {"note": "on my way"}),
        {"admin", "technician"},
        {"admin"},
    ),
    (
        "fleet summary",
        lambda s, e, n: ("GET", f"/fleet/summary?area_id={commune(s)}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "node telemetry",
        lambda s, e, n: ("GET", f"/nodes/{node(s)}/telemetry", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "node events",
        lambda s, e, n: ("GET", f"/nodes/{node(s)}/events", None),
        ALL,
        {"admin", "auditor"},
    ),
    ("nodes with alarms", lambda s, e, n: ("GET", "/nodes?alarm=any", None), ALL, ALL),
]
