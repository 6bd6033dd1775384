"""Exports people open in Excel: CSV with a byte-order mark and headers in their language,
Viet Nam time, and the same table as a real .xlsx; the iCalendar description in Vietnamese."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from openpyxl import load_workbook
from sqlmodel import select

from controller.core.models import Delivery
from tests.conftest import running_controller
from tests.controller.test_broadcast_e2e import announce, make_commune

# The audit record's filters by area and time, and the log's names, are SQL: both databases.
pytestmark = pytest.mark.sql
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
VN_TIME = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:20]  # the BOM Excel needs for UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def xlsx_rows(body: bytes) -> list[list[str]]:
    """The workbook's first sheet as openpyxl reads it, each cell as CSV writes it."""
    sheet = load_workbook(io.BytesIO(body)).worksheets[0]

    def shown(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.strftime("%d/%m/%Y %H:%M:%S")
        if isinstance(value, float):
            return f"{value:g}".replace(".", ",")
        return str(value)

    return [[shown(v) for v in row] for row in sheet.iter_rows(values_only=True)]


async def test_playback_log_exports_in_vietnamese_with_a_bom_and_as_xlsx(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 2)
        ann = await announce(ctl)
        at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = {"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["xa-a"]}}
        sid = (await ctl.api("POST", "/schedules", json=body)).json()["id"]
        with ctl.service.db.session() as s:
            d = s.exec(select(Delivery).where(Delivery.node_id == "n0")).one()
            d.planned_start = due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
            s.add(d)
            s.commit()
        day = due.astimezone(LOCAL).date().isoformat()
        query = f"area_id=xa-a&date={day}"

        r = await ctl.api("GET", f"/playback-log.csv?{query}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = csv_rows(r.content)
        assert rows[0][:5] == ["Giờ dự kiến", "Bản tin", "Cụm loa", "Địa bàn", "Kết quả"]
        first = dict(zip(rows[0], rows[1], strict=True))
        assert first["Giờ dự kiến"] == due.astimezone(LOCAL).strftime("%d/%m/%Y %H:%M:%S")
        assert (first["Cụm loa"], first["Địa bàn"], first["Kết quả"]) == (
            "Loa 0",
            "Thôn 1",
            "Không phát",
        )
        assert (first["Mã cụm loa"], first["Số lịch"]) == ("n0", str(sid))
        assert "," in first["Thời lượng (giây)"] or first["Thời lượng (giây)"].isdigit()
        for row in rows[1:]:
            assert not any(ISO_TIME.search(v) for v in row), row

        x = await ctl.api("GET", f"/playback-log.xlsx?{query}")
        assert x.status_code == 200 and x.headers["content-type"] == XLSX
        assert "playback-xa-a" in x.headers["content-disposition"]
        assert xlsx_rows(x.content) == rows

        english = csv_rows((await ctl.api("GET", f"/playback-log.csv?{query}&lang=en")).content)
        assert english[0][:5] == [
            "Planned time",
            "Announcement",
            "Loudspeaker",
            "Area",
            "Result",
        ]
        assert english[1][4] == "Missed"


async def test_audit_record_filters_and_exports_the_same_rows_as_csv_and_xlsx(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 2)
        await ctl.api("POST", "/areas", json={"id": "xa-b", "name": "Xã B", "kind": "commune"})
        await ctl.login_as_new("staff-a", "commune_staff", "xa-a")
        await ctl.login_as_new("staff-b", "commune_staff", "xa-b")
        auditor = await ctl.login_as_new("auditor", "auditor")
        # A formula in a name an attacker chose stays text in both files.
        r = await ctl.http.post(
            f"{ctl.base_url}/api/v1/auth/token",
            data={"username": "=HYPERLINK(1)", "password": "wrong-password-1"},
        )
        assert r.status_code == 401

        def get(path: str, **params: str) -> Any:
            return ctl.api("GET", path, token=auditor, params=params)

        logins_a = (await get("/audit", action="login", area_id="xa-a")).json()
        assert {e["actor"] for e in logins_a} == {"staff-a"}
        # A village's area is inside the commune's: the node created there concerns xa-a too.
        nodes_a = (await get("/audit", action="node.create", area_id="xa-a")).json()
        assert {e["target"] for e in nodes_a} == {"n0", "n1"}
        assert (await get("/audit", action="node.create", area_id="xa-b")).json() == []
        assert (await get("/audit", area_id="nowhere")).status_code == 404

        csv_r = await get("/audit/export.csv", action="login")
        rows = csv_rows(csv_r.content)
        assert rows[0][:5] == ["Số thứ tự", "Thời điểm", "Người thực hiện", "Vai trò", "Thao tác"]
        assert len(rows) == 1 + len((await get("/audit", action="login")).json())
        assert all(VN_TIME.match(row[1]) for row in rows[1:]), rows
        assert [row[2] for row in rows[1:] if row[8] == "Thất bại"] == ["'=HYPERLINK(1)"]

        xlsx_r = await get("/audit/export.xlsx", action="login")
        assert xlsx_r.headers["content-type"] == XLSX
        from_xlsx = xlsx_rows(xlsx_r.content)
        # The same rows; the workbook keeps the name as a text cell, without CSV's apostrophe.
        assert [[c.removeprefix("'") for c in row] for row in rows] == from_xlsx
        sheet = load_workbook(io.BytesIO(xlsx_r.content)).worksheets[0]
        assert isinstance(sheet.cell(2, 2).value, datetime)  # a real date cell, sortable
        assert all(sheet.cell(r, 3).data_type == "s" for r in range(2, sheet.max_row + 1))

        filtered = csv_rows((await get("/audit/export.csv", area_id="xa-b")).content)
        # The area's creation names it; its staff's login is by someone who works there.
        assert {(row[2], row[4]) for row in filtered[1:]} == {
            ("root", "area.create"),
            ("staff-b", "login"),
        }
        # Only those who may read the record may export it.
        staff = await ctl.login("staff-a")
        r = await ctl.api("GET", "/audit/export.xlsx", token=staff)
        assert r.status_code == 403


async def test_icalendar_description_names_places_in_vietnamese(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 2)
        ann = await announce(ctl)
        at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        body = {
            "announcement_id": ann["id"],
            "starts_at": at,
            "targets": {"areas": ["thon-1"], "nodes": ["n1"]},
            "priority": "priority",
        }
        assert (await ctl.api("POST", "/schedules", json=body)).status_code == 201
        text = (await ctl.api("GET", "/areas/xa-a/programme.ics")).text
        (event,) = Calendar.from_ical(text).walk("VEVENT")
        assert str(event["description"]) == "Nơi phát: Loa 1, Thôn 1. Mức ưu tiên: ưu tiên."
