"""Many rows in a few statements (what ingestion writes a batch with), on SQLite and
PostgreSQL: every row gets its own values, a column of nothing but NULLs is still typed, rows
not named are left alone, and more rows than one statement takes are all written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from controller.core.db import Database, insert_rows, update_rows
from controller.core.models import Node, NodeEventRecord

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(commune_database: Database) -> Database:
    with commune_database.session() as s:
        for k in range(1500):
            s.add(Node(id=f"n{k:04d}", name=f"Loa {k}", area_id="xa", last_seen=T0))
        s.commit()
    return commune_database


def test_rows_inserted_and_updated_in_a_few_statements(db: Database) -> None:
    node = Node.__table__  # type: ignore[attr-defined]
    with db.session() as s:
        # More rows than one statement of either database takes (1,200 × 7 parameters).
        update_rows(
            s,
            node,
            "id",
            [
                {
                    "id": f"n{k:04d}",
                    "status": "online",
                    "boot": k,
                    "last_seen": T0 + timedelta(seconds=k),
                }
                for k in range(1200)
            ],
        )
        # A column of NULLs only.
        update_rows(
            s, node, "id", [{"id": "n0001", "last_seen": None}, {"id": "n0002", "last_seen": None}]
        )
        insert_rows(
            s,
            NodeEventRecord,
            [
                {
                    "id": f"e{k}",
                    "node_id": f"n{k:04d}",
                    "type": "playback_started",
                    "ts": T0,
                    "received_at": T0,
                    "item_id": None if k % 2 else f"s1@{k}",
                    "detail": "",
                }
                for k in range(2500)
            ],
        )
        s.commit()
    with db.session() as s:
        rows = {n.id: n for n in s.exec(select(Node)).all()}
        assert rows["n0000"].status == "online" and rows["n0000"].last_seen == T0
        assert rows["n0001"].last_seen is None and rows["n0001"].boot == 1
        assert rows["n1199"].boot == 1199
        assert rows["n1199"].last_seen == T0 + timedelta(seconds=1199)
        assert rows["n1200"].status == "unknown" and rows["n1200"].last_seen == T0  # not named
        events = s.exec(select(NodeEventRecord)).all()
        assert len(events) == 2500
        assert {e.item_id for e in events if e.id in ("e2", "e3")} == {"s1@2", None}
