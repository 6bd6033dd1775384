"""The append-only record of changes, broadcasts, alerts, commands and logins, chained by hash."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from sqlmodel import Session, col, select

from controller.core.models import AuditEntry, utcnow

GENESIS = "0" * 64
_lock = threading.Lock()


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    body = {
        "ts": entry.ts.isoformat(),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
        "ip": entry.ip,
        "outcome": entry.outcome,
    }
    raw = prev_hash + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    *,
    role: str = "",
    ip: str = "",
    outcome: str = "ok",
) -> AuditEntry:
    """Append one entry and commit it. Serialised so the chain has no forks in one process;
    on PostgreSQL a transaction-level advisory lock serialises instances too."""
    with _lock:
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy import text

            session.execute(text("SELECT pg_advisory_xact_lock(7231001)"))
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(1)).first()
        prev = last.hash if last else GENESIS
        entry = AuditEntry(
            ts=utcnow().replace(microsecond=(utcnow().microsecond // 1000) * 1000),
            actor=actor[:64],
            role=role,
            action=action[:64],
            target=target[:200],
            detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str),
            ip=ip[:64],
            outcome=outcome,
            prev_hash=prev,
        )
        entry.hash = entry_hash(prev, entry)
        session.add(entry)
        session.commit()
        return entry


def verify_chain(session: Session) -> tuple[bool, int | None]:
    """(True, None) if intact; else (False, id of the first entry that does not fit)."""
    prev = GENESIS
    for entry in session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all():
        if entry.prev_hash != prev or entry_hash(prev, entry) != entry.hash:
            return False, entry.id
        prev = entry.hash
    return True, None
