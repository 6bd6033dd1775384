"""Health, readiness and counters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import GuardDep, ServiceDep
from controller.auth.access import Permission

router = APIRouter(tags=["system"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
def ready(service: ServiceDep) -> JSONResponse:
    checks: dict[str, bool] = {
        "broker": service.gateway.connected.is_set(),
        # Reports are being written: the queue is not backing up (a stuck database).
        "ingest": service.ingest.queue.qsize() < service.ingest.queue.maxsize * 0.9,
    }
    try:
        with service.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    # Every background task running (one that crashed waits for its restart).
    failing = service.supervisor.failing()
    checks["background"] = not failing
    ok = all(checks.values())
    # Not a readiness condition: a follower serves the API and ingests as well as the leader.
    role = "leader" if service.leadership.is_leader.is_set() else "follower"
    # No instance name here: anyone may ask, and it was the controller's MQTT client id (what a
    # client needs to cut a connection off). People with read rights see it in /stats.
    restarts = {n: h.restarts for n, h in service.supervisor.health.items() if h.restarts}
    body = {"ready": ok, "checks": checks, "role": role, "failing": failing, "restarts": restarts}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/stats")
def stats(guard: GuardDep, service: ServiceDep) -> dict[str, Any]:
    guard.check(Permission.read)
    return {
        "instance": service.settings.instance,
        "mqtt": {
            "connected": service.gateway.connected.is_set(),
            "connects": service.gateway.connects,
            "received": service.gateway.received,
            "published": service.gateway.published,
        },
        "ingest": dict(service.ingest.stats),
        "ingest_queue": service.ingest.queue.qsize(),
        "commands": dict(service.commands.stats),
    }
