"""The alert board: the alert views read every node's confirmation from memory, where ingestion
puts it the moment it is heard; the database keeps the record behind it."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import get_args

from sqlmodel import select

from api.routes.alerts import NodeState
from controller.alerts.board import STATES, AlertBoard, BoardNode, Page
from controller.core.models import AlertReceipt
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune

ISSUED = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
MS = int(ISSUED.timestamp() * 1000)
NODES = [BoardNode("n1", "Loa 1", "thon-1", "online"), BoardNode("n2", "Loa 2", "thon-1", "online")]


def states(board: AlertBoard, alert_id: str = "a", after_s: float = 30) -> dict[str, str]:
    v = board.view(alert_id, after_s, ISSUED + timedelta(seconds=5))
    assert v is not None
    return {row["node_id"]: row["state"] for row in v["nodes"]}


def test_confirmations_heard_before_the_nodes_are_read_are_kept() -> None:
    board = AlertBoard()
    board.put("a", 1, ISSUED, "active")  # issued: on the board before its nodes are read
    assert board.heard("a", "n1", "alert_received", MS + 200, "v1")
    assert board.view("a", 30, ISSUED) is None  # not ready to be viewed yet
    board.put("a", 1, ISSUED, "active", NODES)
    assert states(board) == {"n1": "received", "n2": "pending"}
    assert board.heard("a", "n1", "alert_started", MS + 300, "v1")
    assert not board.heard("a", "n1", "alert_started", MS + 300, "v1")  # a repeat
    assert not board.heard("b", "n1", "alert_started", MS, "")  # an alert not on the board
    assert not board.heard("a", "n1", "node_rebooted", MS, "")
    assert states(board) == {"n1": "playing", "n2": "pending"}
    assert states(board, after_s=1) == {"n1": "playing", "n2": "silent"}
    board.heard("a", "n2", "alert_failed", MS + 400, "v1; no media")
    board.heard("a", "n1", "alert_finished", MS + 900, "")
    v = board.view("a", 30, ISSUED)
    assert v is not None and v["counts"] == {"done": 1, "failed": 1}
    assert v["nodes"][1]["detail"] == "v1; no media"
    assert v["nodes"][0]["started_at"] == ISSUED + timedelta(milliseconds=300)


def test_a_node_that_stopped_the_alert_is_not_counted_as_having_played_it_out() -> None:
    board = AlertBoard()
    board.put("a", 1, ISSUED, "active", NODES)
    board.heard("a", "n1", "alert_started", MS + 100, "v1")
    board.heard("a", "n2", "alert_started", MS + 100, "v1")
    board.heard("a", "n1", "alert_finished", MS + 900, "v1")
    board.heard("a", "n2", "alert_stopped", MS + 500, "v1; cancelled (v1)")
    assert states(board) == {"n1": "done", "n2": "stopped"}


def test_the_api_takes_as_a_filter_every_state_the_board_gives() -> None:
    assert set(get_args(NodeState)) == set(STATES)


def test_a_page_lists_some_nodes_and_counts_all_the_viewer_sees() -> None:
    board = AlertBoard()
    many = [BoardNode(f"n{i:02}", f"Loa {i}", f"thon-{i % 2}", "online") for i in range(10)]
    board.put("a", 1, ISSUED, "active", many)
    for i in (1, 2, 3, 5, 8):
        board.heard("a", f"n{i:02}", "alert_started", MS + 100 * i, "v1")
    late = ISSUED + timedelta(seconds=60)  # the others are silent by then

    def ids(v: dict | None) -> list[str]:
        assert v is not None
        return [row["node_id"] for row in v["nodes"]]

    v = board.view("a", 30, late, Page(state="silent", offset=1, limit=2))
    assert ids(v) == ["n04", "n06"]
    assert v is not None and v["matched"] == 5 and v["counts"] == {"playing": 5, "silent": 5}
    assert v["silent"] == ["n00", "n04", "n06", "n07", "n09"]  # every one, not the page's
    assert ids(board.view("a", 30, late, Page(offset=8))) == ["n08", "n09"]
    assert ids(board.view("a", 30, late, Page(offset=20, limit=5))) == []
    # A viewer who sees one village: its nodes alone, counted and listed.
    v = board.view("a", 30, late, Page(sees=lambda area: area == "thon-1", limit=3))
    assert ids(v) == ["n01", "n03", "n05"]
    assert v is not None and v["matched"] == 5 and v["counts"] == {"playing": 3, "silent": 2}
    assert v["silent"] == ["n07", "n09"]
    # Rows named by id: in any state, but never one the viewer does not see.
    named = Page(sees=lambda area: area == "thon-1", state="silent", ids=frozenset({"n00", "n01"}))
    v = board.view("a", 30, late, named)
    assert ids(v) == ["n01"] and v is not None and v["matched"] == 2


def test_a_new_version_starts_the_confirmations_over() -> None:
    board = AlertBoard()
    board.put("a", 1, ISSUED, "active", NODES)
    board.heard("a", "n1", "alert_finished", MS, "v1")
    board.changed("a", "active", 2)
    assert board.state("a") == ("active", 2)
    assert states(board) == {"n1": "pending", "n2": "pending"}
    # The old version's "stopped", arriving late, does not count for the new one.
    assert not board.heard("a", "n1", "alert_stopped", MS + 100, "v1; replaced")
    board.heard("a", "n1", "alert_started", MS + 200, "v2")
    assert states(board) == {"n1": "playing", "n2": "pending"}


def test_what_another_instance_stored_is_merged_in() -> None:
    board = AlertBoard()
    board.put("a", 1, ISSUED, "active", NODES)
    board.heard("a", "n1", "alert_received", MS, "")
    stored = [
        SimpleNamespace(
            node_id=node,
            version=1,
            received_at=ISSUED,
            started_at=started,
            finished_at=None,
            stopped_at=None,
            failed_at=None,
            detail="",
        )
        for node, started in (("n1", ISSUED + timedelta(seconds=1)), ("n2", None))
    ]
    board.put("a", 1, ISSUED, "active", NODES, stored)
    assert states(board) == {"n1": "playing", "n2": "received"}
    board.node_status("n2", "offline")
    v = board.view("a", 30, ISSUED)
    assert v is not None and v["nodes"][1]["node_status"] == "offline"


def test_the_alerts_looked_at_least_recently_leave_the_board_first() -> None:
    board = AlertBoard(max_alerts=2)
    for alert_id in ("a", "b"):
        board.put(alert_id, 1, ISSUED, "active", NODES)
    board.view("a", 30, ISSUED)
    board.put("c", 1, ISSUED, "active", NODES)
    assert sorted(board.ids()) == ["a", "c"]
    # One with a live view open stays, however many others come.
    with board.pinned("a"):
        board.put("d", 1, ISSUED, "active", NODES)
        board.put("e", 1, ISSUED, "active", NODES)
        assert "a" in board.ids() and len(board.ids()) == 2
    assert len(board.ids()) == 2


def test_closed_alerts_are_refreshed_for_a_while_then_leave_the_board(monkeypatch) -> None:
    board = AlertBoard()
    for alert_id in ("a", "b", "c"):
        board.put(alert_id, 1, ISSUED, "active", NODES)
    board.changed("b", "cancelled")
    board.changed("c", "expired")
    assert board.state("b") == ("cancelled", 1)
    assert sorted(board.to_refresh(600)) == ["a", "b", "c"]
    later = time.monotonic() + 601
    monkeypatch.setattr(time, "monotonic", lambda: later)
    # Nothing changes them any more: off the board (a look reads them back from the
    # database), except one a live view still holds.
    with board.pinned("c"):
        assert board.to_refresh(600) == ["a"]
        assert sorted(board.ids()) == ["a", "c"] and board.view("b", 30, ISSUED) is None
    assert board.to_refresh(600) == ["a"] and board.ids() == ["a"]


async def test_the_view_shows_confirmations_before_they_are_stored(make_settings) -> None:
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 1)  # n0 in thon-1, offline for now
        r = await ctl.api("POST", "/alerts", json={"areas": ["thon-1"], "template": "flood"})
        assert r.status_code == 201, r.text
        alert_id = r.json()["id"]
        database = Path(ctl.service.settings.data_dir) / "radio.db"
        # Every write of the controller now waits behind this transaction.
        holder = sqlite3.connect(database, timeout=30, isolation_level=None)
        with contextlib.closing(holder):
            holder.execute("BEGIN IMMEDIATE")
            async with fleet_of(configs):

                async def shown(*wanted: str) -> bool:
                    v = (await ctl.api("GET", f"/alerts/{alert_id}")).json()
                    return v["nodes"][0]["state"] in wanted

                await wait_for(lambda: shown("playing", "done"), 30, "the view to show it")
                stored = holder.execute(
                    "SELECT count(*) FROM alertreceipt WHERE alert_id = ?", (alert_id,)
                ).fetchone()[0]
                assert stored == 0  # the view did not come from the database
                holder.execute("ROLLBACK")

                def recorded() -> bool:
                    with ctl.service.db.session() as s:
                        row = s.exec(
                            select(AlertReceipt).where(AlertReceipt.alert_id == alert_id)
                        ).first()
                    return row is not None and row.started_at is not None

                await wait_for(recorded, 60, "the confirmation to be stored")
