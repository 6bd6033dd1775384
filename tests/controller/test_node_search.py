"""A search of the node list runs in the database (SQLite and PostgreSQL alike): in the id or the
name, whatever the case (Vietnamese capitals too) and with or without the marks, the search's
own % and _ as plain characters, and a renamed node found by its new name."""

from __future__ import annotations

import pytest

from controller.core.db import Database
from controller.core.models import Node
from controller.health import fleet_view
from controller.health.fleet_view import NodeFilter, find
from controller.health.presence import Presence
from protocol.clock import SystemClock

NAMES = {
    "loa-01": "Loa chợ Đồng Xuân",
    "loa-02": "Loa ĐÌNH LÀNG",
    "loa-03": "Loa 100% công suất",
    "loa-04": "Loa trường_học",
    "tram-05": "Loa Ủy ban xã",
}


@pytest.fixture
def db(commune_database: Database) -> Database:
    with commune_database.session() as s:
        for node_id, name in NAMES.items():
            s.add(Node(id=node_id, name=name, area_id="xa"))
        s.commit()
    return commune_database


def search(db: Database, presence: Presence, text: str) -> list[str]:
    with db.session() as s:
        page = find(s, presence, NodeFilter(text=text), 0, 100)
    assert page.total == len(page.rows)
    return [r.node.id for r in page.rows]


def test_search_folds_case_and_marks_in_sql(db: Database, make_settings) -> None:
    presence = Presence(make_settings(), SystemClock())
    assert search(db, presence, "đồng xuân") == ["loa-01"]
    assert search(db, presence, "ĐỒNG") == ["loa-01"]
    assert search(db, presence, "dong xuan") == ["loa-01"]  # typed without the marks
    assert search(db, presence, "đong xuan") == ["loa-01"]  # with some of them
    assert search(db, presence, "đình làng") == ["loa-02"]  # a name in capitals
    assert search(db, presence, "dinh") == ["loa-02"]
    assert search(db, presence, "ủy ban") == ["tram-05"]
    assert search(db, presence, "uy ban") == ["tram-05"]
    assert search(db, presence, "TRAM") == ["tram-05"]  # the id
    assert search(db, presence, "loa-0") == ["loa-01", "loa-02", "loa-03", "loa-04"]
    # A decomposed search (some phone keyboards) matches the composed name.
    assert search(db, presence, "Đồng".replace("ồ", "o\u0302\u0300")) == ["loa-01"]
    # The search's own wildcards are characters.
    assert search(db, presence, "100%") == ["loa-03"]
    assert search(db, presence, "%") == ["loa-03"]
    assert search(db, presence, "_") == ["loa-04"]
    assert search(db, presence, "đồng xuân 2") == []

    with db.session() as s:
        node = s.get(Node, "loa-04")
        assert node is not None
        node.name = "Loa nhà văn hóa"
        s.add(node)
        s.commit()
    assert search(db, presence, "văn hóa") == ["loa-04"]
    assert search(db, presence, "trường") == []


def test_a_page_by_offset_is_the_same_read_from_either_end(db: Database, make_settings) -> None:
    """Past the middle, a page by `offset` is read from the end of the list: every offset and
    limit still gives the rows, and the pages before and after, that the whole list cut there
    gives, with and without a filter."""
    presence = Presence(make_settings(), SystemClock())
    for text in ("", "loa-0"):
        with db.session() as s:
            everyone = [r.node.id for r in find(s, presence, NodeFilter(text=text), 0, 100).rows]
            assert len(everyone) == (5 if not text else 4)
            for limit in range(1, 7):
                for offset in range(0, 8):
                    page = find(s, presence, NodeFilter(text=text), offset, limit)
                    want = everyone[offset : offset + limit]
                    assert [r.node.id for r in page.rows] == want, (text, offset, limit)
                    assert page.total == len(everyone)
                    assert page.more == (offset + limit < len(everyone)), (text, offset, limit)
                    assert page.earlier == (offset > 0 and bool(want)), (text, offset, limit)


def test_a_list_that_shrinks_between_the_count_and_the_page_says_nothing_more(
    db: Database, make_settings, monkeypatch
) -> None:
    """Read from the end, a page takes its place from the count: when nodes went away between
    the two statements, it may find no rows, and then it must not say that more follow (the
    API would look for the page's last id)."""
    presence = Presence(make_settings(), SystemClock())
    counted = fleet_view._count

    def more_than_there_are(*args, **kwargs):  # 20 nodes counted that are gone from the page
        counts = counted(*args, **kwargs)
        return {**counts, "nodes": counts["nodes"] + 20}

    monkeypatch.setattr(fleet_view, "_count", more_than_there_are)
    with db.session() as s:
        page = find(s, presence, NodeFilter(), 13, 2)
    assert page.rows == [] and not page.more and not page.earlier
