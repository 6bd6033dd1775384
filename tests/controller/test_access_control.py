"""Access control: nothing answers without a token; every role × endpoint × inside/outside its
area is allowed or refused as the role table says; refusals and logins are recorded."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from controller.core.config import ConfigError, Settings
from controller.core.models import AuditEntry, ScheduleStatus
from controller.programme.broadcasts import Targets
from protocol import Priority
from tests.conftest import RunningController, running_controller

PUBLIC = {"/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/health"}


async def test_without_a_token_only_login_and_health_answer(make_settings):
    async with running_controller(make_settings()) as ctl:
        spec = (await ctl.http.get(f"{ctl.base_url}/openapi.json")).json()
        checked = 0
        for path, methods in spec["paths"].items():
            for method in methods:
                url = path.replace("{", "").replace("}", "")
                r = await ctl.http.request(method.upper(), f"{ctl.base_url}{url}")
                if path in PUBLIC or path == "/api/v1/ready":
                    assert r.status_code != 401, (method, path)
                else:
                    assert r.status_code == 401, (method, path, r.status_code)
                    checked += 1
        assert checked >= 15


async def seed(ctl: RunningController) -> dict[str, Any]:
    for body in (
        {"id": "tinh", "name": "Tỉnh", "kind": "province"},
        {"id": "xa-a", "name": "Xã A", "kind": "commune", "parent_id": "tinh"},
        {"id": "thon-a", "name": "Thôn A", "kind": "village", "parent_id": "xa-a"},
        {"id": "xa-b", "name": "Xã B", "kind": "commune", "parent_id": "tinh"},
        {"id": "thon-b", "name": "Thôn B", "kind": "village", "parent_id": "xa-b"},
    ):
        assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
    for node, area in (("na", "thon-a"), ("nb", "thon-b")):
        r = await ctl.api("POST", "/nodes", json={"id": node, "name": node, "area_id": area})
        assert r.status_code == 201
    ann = (await ctl.api("POST", "/announcements", json={"title": "t", "text": "Xin chào."})).json()
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    sched = {}
    for side, area in (("in", "thon-a"), ("out", "thon-b")):
        r = await ctl.api(
            "POST",
            "/schedules",
            json={"announcement_id": ann["id"], "starts_at": later, "targets": {"areas": [area]}},
        )
        sched[side] = r.json()["id"]
    # Drafts to approve or reject: each request of the matrix takes a fresh one.
    drafts: dict[str, list[int]] = {"in": [], "out": []}
    for side, area in (("in", "thon-a"), ("out", "thon-b")):
        for i in range(10):
            draft = await ctl.service.broadcasts.create_schedule(
                ann["id"],
                datetime.now(UTC) + timedelta(days=2, minutes=i),
                Targets(areas=[area]),
                Priority.normal,
                status=ScheduleStatus.pending,
            )
            drafts[side].append(draft.id)
    alert = {}
    for side, area in (("in", "thon-a"), ("out", "thon-b")):
        r = await ctl.api(
            "POST",
            "/alerts",
            json={"areas": [area], "template": "flood", "test": True, "repeat": 0},
        )
        alert[side] = r.json()["id"]
    tokens = {"admin": ctl.token}
    for role, area in (
        ("officer", "xa-a"),
        ("commune_staff", "xa-a"),
        ("technician", "xa-a"),
        ("auditor", None),
    ):
        tokens[role] = await ctl.login_as_new(f"u-{role.replace('_', '-')}", role, area)
    return {
        "ann": ann["id"],
        "later": later,
        "sched": sched,
        "tokens": tokens,
        "drafts": drafts,
        "alert": alert,
        "day": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
    }


def area_of(side: str) -> str:
    return "xa-a" if side == "in" else "xa-b"


# (name, request builder(side, env, n) -> (method, path, json), roles allowed inside, outside)
ALL = {"admin", "officer", "commune_staff", "technician", "auditor"}
MATRIX: list[tuple[str, Any, set[str], set[str]]] = [
    ("list areas", lambda s, e, n: ("GET", "/areas", None), ALL, ALL),
    (
        "create area",
        lambda s, e, n: (
            "POST",
            "/areas",
            {
                "id": f"x{n}",
                "name": "x",
                "kind": "village",
                "parent_id": "xa-a" if s == "in" else "xa-b",
            },
        ),
        {"admin"},
        {"admin"},
    ),
    (
        "read node",
        lambda s, e, n: ("GET", f"/nodes/{'na' if s == 'in' else 'nb'}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "register node",
        lambda s, e, n: (
            "POST",
            "/nodes",
            {"id": f"m{n}", "name": "m", "area_id": "thon-a" if s == "in" else "thon-b"},
        ),
        {"admin", "technician"},
        {"admin"},
    ),
    (
        "write announcement",
        lambda s, e, n: ("POST", "/announcements", {"title": "t", "text": "Chào."}),
        {"admin", "officer", "commune_staff"},
        {"admin", "officer", "commune_staff"},
    ),
    (
        "schedule",
        lambda s, e, n: (
            "POST",
            "/schedules",
            {
                "announcement_id": e["ann"],
                "starts_at": e["later"],
                "targets": {"areas": ["thon-a" if s == "in" else "thon-b"]},
                "on_preempt": "queue",
            },
        ),
        {"admin", "officer", "commune_staff"},
        {"admin"},
    ),
    (
        "schedule a node",
        lambda s, e, n: (
            "POST",
            "/schedules",
            {
                "announcement_id": e["ann"],
                "starts_at": e["later"],
                "targets": {"nodes": ["na" if s == "in" else "nb"]},
                "on_preempt": "queue",
            },
        ),
        {"admin", "officer", "commune_staff"},
        {"admin"},
    ),
    (
        "read deliveries",
        lambda s, e, n: ("GET", f"/schedules/{e['sched'][s]}/deliveries", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "cancel schedule",
        lambda s, e, n: ("DELETE", f"/schedules/{e['sched'][s]}", None),
        {"admin", "officer", "commune_staff"},
        {"admin"},
    ),
    (
        "node timeline",
        lambda s, e, n: ("GET", f"/nodes/{'na' if s == 'in' else 'nb'}/timeline", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "list drafts",
        lambda s, e, n: ("GET", "/schedules?status=pending", None),
        ALL,
        ALL,
    ),
    (
        "approve",
        lambda s, e, n: ("POST", f"/schedules/{e['drafts'][s].pop()}/approve", None),
        {"admin", "officer"},
        {"admin"},
    ),
    (
        "reject",
        lambda s, e, n: ("POST", f"/schedules/{e['drafts'][s].pop()}/reject", {"reason": "x"}),
        {"admin", "officer"},
        {"admin"},
    ),
    (
        "calendar",
        lambda s, e, n: (
            "GET",
            f"/calendar?area_id={area_of(s)}&from={e['day']}&to={e['day']}",
            None,
        ),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "programme.ics",
        lambda s, e, n: ("GET", f"/areas/{area_of(s)}/programme.ics", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "playback log",
        lambda s, e, n: ("GET", f"/playback-log?area_id={area_of(s)}&date={e['day']}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "playback log csv",
        lambda s, e, n: ("GET", f"/playback-log.csv?area_id={area_of(s)}&date={e['day']}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "playback log xlsx",
        lambda s, e, n: ("GET", f"/playback-log.xlsx?area_id={area_of(s)}&date={e['day']}", None),
        ALL,
        {"admin", "auditor"},
    ),
    (
        "read quiet hours",
        lambda s, e, n: ("GET", f"/areas/{area_of(s)}/quiet-hours", None),
        ALL,
        {"admin", "auditor"},
    ),
    # Set, then cleared, after every schedule above, so no schedule meets them.
    (
        "set quiet hours",
        lambda s, e, n: (
            "PUT",
            f"/areas/{area_of(s)}/quiet-hours",
            {"start": "22:00", "end": "05:30"},
        ),
        {"admin", "officer"},
        {"admin"},
    ),
    (
        "clear quiet hours",
        lambda s, e, n: ("DELETE", f"/areas/{area_of(s)}/quiet-hours", None),
        {"admin", "officer"},
        {"admin"},
    ),
    (
        "read audit",
        lambda s, e, n: ("GET", "/audit", None),
        {"admin", "auditor"},
        {"admin", "auditor"},
    ),
    (
        "export audit as xlsx",
        lambda s, e, n: ("GET", "/audit/export.xlsx", None),
        {"admin", "auditor"},
        {"admin", "auditor"},
    ),
    (
        "audit of an area",
        lambda s, e, n: ("GET", f"/audit?area_id={area_of(s)}", None),
        {"admin", "auditor"},
        {"admin", "auditor"},
    ),
    (
        "create user",
        lambda s, e, n: (
            "POST",
            "/users",
            {
                "username": f"p{n}",
                "password": "long-enough-42",
                "role": "officer",
                "area_id": "xa-a" if s == "in" else "xa-b",
            },
        ),
        {"admin"},
        {"admin"},
    ),
    (
        "issue alert",
        lambda s, e, n: (
            "POST",
            "/alerts",
            {"areas": ["thon-a" if s == "in" else "thon-b"], "template": "fire", "test": True},
        ),
        {"admin", "officer", "commune_staff"},
        {"admin"},
    ),
    ("alert templates", lambda s, e, n: ("GET", "/alerts/templates", None), ALL, ALL),
    (
        "read alert",
        lambda s, e, n: ("GET", f"/alerts/{e['alert'][s]}", None),
        ALL,
        {"admin", "auditor"},
    ),
]


def feature_matrices() -> list[Any]:
    """Each feature keeps its rows in `tests/controller/role_matrix_<feature>.py`: a `ROWS` list
    shaped like MATRIX and an optional `async def seed(ctl, env)` that adds what its rows need."""
    here = Path(__file__).parent
    return [
        importlib.import_module(f"tests.controller.{p.stem}")
        for p in sorted(here.glob("role_matrix_*.py"))
    ]


@pytest.mark.slow
async def test_role_matrix(make_settings):
    # Live broadcasts started by the rows stay on air however long a busy machine takes to
    # reach the rows that stop them (nobody sends them audio).
    async with running_controller(make_settings(live_source_grace_s=3600)) as ctl:
        env = await seed(ctl)
        rows = list(MATRIX)
        for module in feature_matrices():
            if hasattr(module, "seed"):
                await module.seed(ctl, env)
            rows.extend(module.ROWS)
        n = 0
        failures = []
        for name, build, inside, outside in rows:
            for side, allowed in (("in", inside), ("out", outside)):
                for role, token in env["tokens"].items():
                    n += 1
                    method, path, body = build(side, env, n)
                    r = await ctl.api(method, path, json=body, token=token)
                    ok = r.status_code < 300
                    if ok != (role in allowed) or (not ok and r.status_code not in (403, 404)):
                        failures.append(f"{role} {name} ({side}): {r.status_code} {r.text[:120]}")
        assert not failures, "\n".join(failures)
        with ctl.service.db.session() as s:
            denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
        assert any(e.actor == "u-commune-staff" and e.action == "denied:schedule" for e in denied)


async def test_login_throttling_refresh_and_audit_chain(make_settings):
    async with running_controller(make_settings()) as ctl:
        url = f"{ctl.base_url}/api/v1/auth/token"
        for _ in range(5):
            r = await ctl.http.post(url, data={"username": "root", "password": "wrong-password-1"})
            assert r.status_code == 401
        r = await ctl.http.post(url, data={"username": "root", "password": "correct-horse-42"})
        assert r.status_code == 429 and "Retry-After" in r.headers

        ctl.service.login_throttle.clear("u:root", "ip:127.0.0.1")
        pair = (
            await ctl.http.post(url, data={"username": "root", "password": "correct-horse-42"})
        ).json()
        refreshed = await ctl.http.post(
            f"{ctl.base_url}/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 200
        again = await ctl.http.post(
            f"{ctl.base_url}/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert again.status_code == 401  # one use only
        me = await ctl.api("GET", "/auth/me", token=refreshed.json()["access_token"])
        assert me.json()["username"] == "root"
        r = await ctl.api(
            "POST", "/users", json={"username": "weak", "password": "short", "role": "auditor"}
        )
        assert r.status_code == 422 and "10 characters" in r.text

        assert (await ctl.api("GET", "/audit/verify")).json() == {
            "intact": True,
            "first_broken_entry": None,
        }
        entries = (await ctl.api("GET", "/audit", params={"action": "login"})).json()
        assert {e["outcome"] for e in entries} == {"ok", "failed"}
        csv_text = (await ctl.api("GET", "/audit/export.csv")).text
        assert csv_text.splitlines()[0].startswith("\ufeffSố thứ tự,Thời điểm,Người thực hiện")
        with ctl.service.db.session() as s:
            victim = s.exec(select(AuditEntry).where(AuditEntry.outcome == "failed")).first()
            victim.actor = "someone-else"
            s.add(victim)
            s.commit()
        verdict = (await ctl.api("GET", "/audit/verify")).json()
        assert verdict["intact"] is False and verdict["first_broken_entry"] == victim.id


def test_default_secrets_are_refused_outside_demo_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("RADIO_SECRET_KEY", raising=False)
    monkeypatch.delenv("RADIO_DEMO", raising=False)
    with pytest.raises((ConfigError, ValueError), match="RADIO_SECRET_KEY"):
        Settings(data_dir=tmp_path)
    with pytest.raises((ConfigError, ValueError), match="32 characters"):
        Settings(data_dir=tmp_path, secret_key="short")
    assert Settings(data_dir=tmp_path, demo=True).secret_key
