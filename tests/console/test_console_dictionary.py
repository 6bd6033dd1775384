"""The reading dictionary in the console: administrators change the common list, a commune's
staff its local list, each tries a sentence and hears it read with the new entry; an officer
fixes one reading inside one announcement — in a real browser, at phone width."""

from __future__ import annotations

from tests.console.console_support import console_site, needs_chromium, no_horizontal_scroll

pytestmark = needs_chromium

PHONE = {"width": 390, "height": 844}
SENTENCE = "Họp tại nhà văn hoá thôn Ea Kar lúc 7h."


async def test_common_and_local_lists_with_preview(make_settings):
    async with console_site(make_settings()) as site:
        admin = await site.login("root", PHONE)
        await admin.goto(f"{site.url}/console/dictionary")
        assert await admin.inner_text("h1") == "Từ điển cách đọc"
        assert await no_horizontal_scroll(admin)
        await admin.fill("#try-text", SENTENCE)
        await admin.select_option("#try-area", "")
        await admin.click("#try-btn")
        await admin.wait_for_selector("#try-sentences li:has-text('lúc bảy giờ')")
        assert "Ea Kar" in await admin.inner_text("#try-sentences")

        # The common list: the sentence being tried is read again with the new entry.
        await admin.fill("#d-term", "Ea Kar")
        await admin.fill("#d-reading", "E a Kar")
        await admin.select_option("#d-area", "")
        await admin.click("#d-save")
        await admin.wait_for_selector("#try-sentences li:has-text('thôn E a Kar')")
        row = admin.locator("#entries tr:has-text('E a Kar')")
        assert "Chung (mọi địa bàn)" in await row.inner_text()
        assert await no_horizontal_scroll(admin)
        await site.shot(admin, "dictionary")

        # The commune's own list wins for its announcements, and only there.
        staff = await site.login("staff-a", PHONE)
        await staff.click("#menu-toggle")  # a phone's pages are behind the menu button
        await staff.click("nav >> text=Từ điển cách đọc")
        await staff.wait_for_url("**/console/dictionary")
        assert await staff.locator("#d-area option[value='']").count() == 0
        assert await staff.input_value("#d-area") == "xa-a"
        await staff.fill("#try-text", SENTENCE)
        await staff.click("#try-btn")
        await staff.wait_for_selector("#try-sentences li:has-text('thôn E a Kar')")
        await staff.fill("#d-term", "Ea Kar")
        await staff.fill("#d-reading", "Ê a Ca")
        await staff.click("#d-save")
        await staff.wait_for_selector("#try-sentences li:has-text('thôn Ê a Ca')")
        await staff.wait_for_selector("#add-msg.ok")
        local_row = staff.locator("#entries tr:has-text('Ê a Ca')")
        assert "Xã An" in await local_row.inner_text()
        # The common entry is read-only for commune staff.
        assert await staff.locator("#entries tr:has-text('E a Kar') button.delete").count() == 0

        # The same term twice in one list: the error's code, in Vietnamese.
        await staff.fill("#d-term", "Ea Kar")
        await staff.fill("#d-reading", "khác")
        await staff.click("#d-save")
        await staff.wait_for_selector("#add-msg.error")
        assert "đã có trong danh sách đó" in await staff.inner_text("#add-msg")

        # Another commune neither sees nor uses commune An's list.
        other = await site.login("staff-b", PHONE)
        await other.goto(f"{site.url}/console/dictionary")
        assert await other.locator("#entries tr:has-text('Ê a Ca')").count() == 0
        await other.fill("#try-text", SENTENCE)
        await other.click("#try-btn")
        await other.wait_for_selector("#try-sentences li:has-text('thôn E a Kar')")

        # English by the switch, error codes included.
        await staff.goto(f"{site.url}/console/dictionary?lang=en")
        assert await staff.inner_text("h1") == "Reading dictionary"
        await staff.fill("#d-term", "Ea Kar")
        await staff.fill("#d-reading", "other")
        await staff.click("#d-save")
        await staff.wait_for_selector("#add-msg.error")
        assert "already in that list" in await staff.inner_text("#add-msg")

        # Deleting the local entry: the common reading is back.
        await staff.fill("#try-text", SENTENCE)
        await staff.click("#try-btn")
        await staff.wait_for_selector("#try-sentences li:has-text('thôn Ê a Ca')")
        await staff.click("#entries tr:has-text('Ê a Ca') button.delete")
        await staff.wait_for_selector("#try-sentences li:has-text('thôn E a Kar')")
        await staff.wait_for_selector("#list-msg.ok")
        assert await staff.locator("#entries tr:has-text('Ê a Ca')").count() == 0


async def test_officer_fixes_one_reading_in_the_announcement_editor(make_settings):
    async with console_site(make_settings()) as site:
        officer = await site.login("officer-a", PHONE)
        await officer.goto(f"{site.url}/console/announcements")
        assert "[[UBND|ủy ban nhân dân]]" in await officer.inner_text("#ann-text-help")
        await officer.fill("#ann-title", "Họp HTX")
        await officer.fill("#ann-text", "[[HTX|Hợp tác xã]] Ea Kar họp lúc 7h. HTX nghỉ.")
        await officer.click("#preview-btn")
        await officer.wait_for_selector("#reading-overrides:not([hidden])")
        reading = await officer.inner_text("#reading-text")
        assert reading == "Hợp tác xã Ea Kar họp lúc bảy giờ. hợp tác xã nghỉ."
        assert "HTX → Hợp tác xã" in await officer.inner_text("#reading-overrides")
        assert await no_horizontal_scroll(officer)
        # The announcement is spoken as previewed.
        await officer.click("#render-btn")
        await officer.wait_for_selector("#result:not([hidden])")
        assert await officer.inner_text("#reading-text") == reading
        # A preview without an override hides the line again.
        await officer.fill("#ann-text", "HTX họp.")
        await officer.click("#preview-btn")
        await officer.wait_for_selector("#reading-overrides[hidden]", state="attached")


EVIL = '<img src=x onerror="window.__pwned = 1">Ea <b>Kar</b>'


async def test_entries_and_readings_are_text_under_the_content_security_policy(make_settings):
    async with console_site(make_settings()) as site:
        page = await site.login("staff-a", PHONE, enforce_csp=True)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{site.url}/console/dictionary")
        await page.fill("#try-text", "Thôn Ea Kar.")
        await page.click("#try-btn")
        await page.wait_for_selector("#try-sentences li")
        await page.fill("#d-term", "Ea Kar")
        await page.fill("#d-reading", EVIL)
        await page.click("#d-save")
        # Added by the page's script, then drawn by the server after a reload.
        await page.wait_for_selector("#try-sentences li:has-text('onerror')")
        for _ in range(2):
            row = page.locator("#entries tbody tr").first
            await row.wait_for()
            assert EVIL in await row.inner_text()
            assert await page.locator("#entries img, #entries b, #try-sentences img").count() == 0
            assert await page.evaluate("window.__pwned") is None
            await page.reload()
        assert errors == []
