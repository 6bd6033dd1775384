"""The reports page at a phone's width: a real alert played and confirmed by real nodes shows
in the figures, the charts and the table of villages; the downloads are the API's files; a
commune's staff cannot open their neighbour's report; English by the switch."""

from __future__ import annotations

import io

import openpyxl
from sqlmodel import select

from controller.core.models import AlertReceipt, Announcement
from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium, no_horizontal_scroll
from tests.console.test_console_phone import PHONE_390, SMALL_TARGETS
from tests.controller.test_broadcast_e2e import fleet_of

pytestmark = needs_chromium


async def test_reports_page_on_a_phone(make_settings):
    async with console_site(make_settings()) as site:
        configs = [site.configs[n] for n in ("na1", "na2", "na3")]
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            r = await site.ctl.api(
                "POST", "/alerts", json={"areas": ["xa-a"], "template": "flood", "repeat": 1}
            )
            assert r.status_code == 201, r.text
            alert_id = r.json()["id"]

            def played_out() -> bool:
                with site.ctl.service.db.session() as s:
                    rows = s.exec(
                        select(AlertReceipt).where(AlertReceipt.alert_id == alert_id)
                    ).all()
                return len([r for r in rows if r.finished_at is not None]) == 3

            await wait_for(played_out, 60, "every node to play the alert out")

        page = await site.login("officer-a", PHONE_390)
        url = f"{site.url}/console/reports?area=xa-a&period=week"
        response = await page.goto(url)
        assert response.status == 200
        assert await no_horizontal_scroll(page)
        assert await page.evaluate(SMALL_TARGETS) == []
        assert await page.locator("h1").inner_text() == "Báo cáo"
        # The day is typed the Vietnamese way; a slip is named and the text kept.
        shown = await page.input_value("#rep-day")
        assert shown.count("/") == 2 and len(shown) == 10
        await page.fill("#rep-day", "31/02/2026")
        await page.locator("#rep-day").press("Enter")
        await page.wait_for_selector(".msg.error")
        assert await page.input_value("#rep-day") == "31/02/2026"
        response = await page.goto(url)
        total = await page.locator("#rep-total").inner_text()
        assert "3/3 (100,0 %)" in total
        legend = page.locator("#rep-categories li[data-category=emergency]")
        assert "Khẩn cấp" in await legend.inner_text() and "3 lượt" in await legend.inner_text()
        widths = await page.eval_on_selector_all(
            "#rep-categories rect", "rs => rs.map(r => Number(r.getAttribute('width')))"
        )
        assert widths[2] == 600 and widths[0] == 0  # emergency fills the scale, no law aired
        assert await page.locator("#rep-daily polyline").count() == 1
        rows = await page.eval_on_selector_all(
            "#rep-rows tbody tr", "rs => rs.map(r => r.dataset.area)"
        )
        assert rows == ["thon-a1", "thon-a2"]
        assert await page.locator("#rep-rows tr[data-area=thon-a1] td").nth(1).inner_text() == "2"
        await site.shot(page, "phone-reports")

        # The downloads are the API's files, with the person's session.
        csv = await page.request.get(
            site.url + await page.locator("#rep-csv").get_attribute("href")
        )
        body = await csv.body()
        assert csv.status == 200 and body.startswith(b"\xef\xbb\xbf")
        assert body.decode("utf-8-sig").splitlines()[0].startswith("Mã khu vực,Khu vực")
        xlsx = await page.request.get(
            site.url + await page.locator("#rep-xlsx").get_attribute("href")
        )
        book = openpyxl.load_workbook(io.BytesIO(await xlsx.body()))
        assert book["Nhật ký"].max_row == 1 + 3

        await page.goto(url + "&lang=en")
        assert await page.locator("h1").inner_text() == "Reports"
        assert "3/3 (100.0 %)" in await page.locator("#rep-total").inner_text()

        # The category a report counts content by is chosen when it is written.
        await page.goto(f"{site.url}/console/announcements")
        await page.fill("#ann-title", "Luật đất đai")
        await page.fill("#ann-text", "Phổ biến luật đất đai sửa đổi.")
        await page.select_option("#ann-category", "policy_law")
        await page.click("#render-btn")
        await page.locator("#write-msg.ok").wait_for()
        with site.ctl.service.db.session() as s:
            written = s.exec(select(Announcement).where(Announcement.title == "Luật đất đai")).one()
        assert written.category == "policy_law"

        other = await site.login("staff-b", PHONE_390)
        await other.goto(url)
        assert await other.locator("#rep-total").count() == 0
        assert await other.locator(".msg.error").count() == 1
