"""Role-matrix rows for changing a schedule and skipping one of its days (see
test_access_control.MATRIX): each request takes a fresh weekly schedule of its side."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import RunningController

SCHEDULERS = {"admin", "officer", "commune_staff"}
PER_ROW = 5  # one request per role and side


async def seed(ctl: RunningController, env: dict[str, Any]) -> None:
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    monday = today + timedelta(days=7 - today.weekday())
    env["weekly_day"] = monday.isoformat()
    env["weekly"] = {"in": {"edit": [], "skip": []}, "out": {"edit": [], "skip": []}}
    for side, area in (("in", "thon-a"), ("out", "thon-b")):
        for i, use in enumerate(["edit"] * PER_ROW + ["skip"] * PER_ROW):
            r = await ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": env["ann"],
                    "starts_at": f"{monday.isoformat()}T{8 + i // 6:02d}:{(i % 6) * 10:02d}",
                    "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
                    "targets": {"areas": [area]},
                    "on_preempt": "queue",
                },
            )
            assert r.status_code == 201, r.text
            env["weekly"][side][use].append(r.json()["id"])


ROWS: list[tuple[str, Any, set[str], set[str]]] = [
    (
        "change schedule",
        lambda s, e, n: ("PATCH", f"/schedules/{e['weekly'][s]['edit'].pop()}", {"title": "x"}),
        SCHEDULERS,
        {"admin"},
    ),
    (
        "skip a day",
        lambda s, e, n: (
            "POST",
            f"/schedules/{e['weekly'][s]['skip'].pop()}/skip",
            {"day": e["weekly_day"]},
        ),
        SCHEDULERS,
        {"admin"},
    ),
]
