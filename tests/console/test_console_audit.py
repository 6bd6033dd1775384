"""An auditor finds and exports the record on a phone: from the home page to the audit page,
filtered by who, what and area, the chain checked (and a tampered entry found), the same
selection downloaded as CSV (with a byte-order mark) and as .xlsx."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlmodel import col, select

from api.console.i18n import catalogue
from controller.core.models import AuditEntry
from tests.console.console_support import console_site, needs_chromium

pytestmark = needs_chromium

PHONE = {"width": 390, "height": 844}


async def test_auditor_filters_verifies_and_exports_the_record(make_settings):
    async with console_site(make_settings()) as site:
        await site.login("staff-a")
        await site.login("staff-b")
        page = await site.login("auditor", PHONE)

        # The home page says what an auditor can do there, and nothing they cannot.
        home = await page.inner_text("main")
        vi = catalogue("vi")
        for key in ("calendar", "alerts", "alarms"):
            assert vi[f"home.about_{key}"] not in home, key  # what those who act there read
            assert vi[f"home.see_{key}"] in home, key
        assert "kiểm tra nhật ký còn nguyên vẹn" in home
        await page.click("#home-audit")
        await page.wait_for_url("**/console/audit")
        assert await page.locator("#audit-table tbody tr").count() >= 4

        await page.select_option("#f-action", "login")
        await page.select_option("#f-area", "xa-a")
        await page.click("#audit-filter")
        await page.wait_for_url("**/console/audit?*")
        # Logins of the people who work in Xã An (seeding logged each in once, the browser
        # staff-a again), none of Xã Bình's or the auditor's.
        shown = await page.locator("#audit-table tbody tr").all_inner_texts()
        actors = sorted(text.split()[2] for text in shown)
        assert actors == ["officer-a", "staff-a", "staff-a", "tech-a"], shown
        assert all("Đăng nhập" in text for text in shown)

        # Days are Viet Nam days: nothing happened tomorrow, everything from yesterday to today.
        today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
        await page.fill("#f-since", (today + timedelta(days=1)).strftime("%d/%m/%Y"))
        await page.click("#audit-filter")
        await page.wait_for_selector("#audit-none")
        await page.fill("#f-since", (today - timedelta(days=1)).strftime("%d/%m/%Y"))
        await page.fill("#f-until", today.strftime("%d/%m/%Y"))
        await page.click("#audit-filter")
        await page.wait_for_selector("#audit-table")
        assert await page.locator("#audit-table tbody tr").count() == len(shown)
        assert await page.input_value("#f-until") == today.strftime("%d/%m/%Y")
        await page.fill("#f-until", "31/02/2026")  # no such day: said, and nothing lost
        await page.click("#audit-filter")
        await page.wait_for_selector("main .msg.error")
        assert "ngày/tháng/năm" in await page.inner_text("main .msg.error")
        assert await page.input_value("#f-until") == "31/02/2026"
        await page.go_back()

        await page.click("#audit-verify")
        await page.wait_for_selector("#verify-msg.ok")
        assert "nguyên vẹn" in await page.inner_text("#verify-msg")
        await site.shot(page, "phone-audit")

        async with page.expect_download() as waiting:
            await page.click("#export-csv")
        body = await asyncio.to_thread(Path(await (await waiting.value).path()).read_bytes)
        assert body.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert table[0][:3] == ["Số thứ tự", "Thời điểm", "Người thực hiện"]
        assert sorted(r[2] for r in table[1:]) == actors

        async with page.expect_download() as waiting:
            await page.click("#export-xlsx")
        download = await waiting.value
        assert download.suggested_filename == "audit.xlsx"
        raw = await asyncio.to_thread(Path(await download.path()).read_bytes)
        book = load_workbook(io.BytesIO(raw))
        sheet = book.worksheets[0]
        assert [c.value for c in sheet[1]][:3] == table[0][:3]
        assert [[c.value for c in row][2] for row in sheet.iter_rows(min_row=2)] == [
            r[2] for r in table[1:]
        ]

        # Someone edits an entry in the database: the check names it.
        with site.ctl.service.db.session() as s:
            victim = s.exec(select(AuditEntry).order_by(col(AuditEntry.id))).first()
            victim.actor = "someone-else"
            s.add(victim)
            s.commit()
            victim_id = victim.id
        await page.click("#audit-verify")
        await page.wait_for_selector("#verify-msg.error")
        assert f"mục số {victim_id}" in await page.inner_text("#verify-msg")

        staff = await site.login("staff-a")
        assert await staff.locator("#home-audit").count() == 0  # on their home page
        assert (await staff.goto(f"{site.url}/console/audit")).status == 403
