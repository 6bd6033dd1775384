"""Bulletins from above in a real browser: the administrator creates a service account and
sees its key once; a bulletin pushed with it waits in the commune officer's approvals, marked
as coming from above; the officer sets a relay rule; the administrator revokes the key."""

from __future__ import annotations

from tests.console.console_support import console_site, needs_chromium

pytestmark = needs_chromium


async def test_service_account_bulletin_approval_and_rule(make_settings):
    async with console_site(make_settings()) as site:
        admin = await site.login("root")
        await admin.click("nav >> text=Tài khoản hệ thống")
        await admin.fill("#svc-name", "tinh-ttcs")
        await admin.fill("#svc-desc", "Hệ thống thông tin nguồn tỉnh")
        await admin.check("#svc-a-tinh")
        await admin.click("#svc-form button[type=submit]")
        await admin.wait_for_selector("#svc-key:not([hidden])")
        key = (await admin.inner_text("#svc-key-text")).strip()
        assert key.startswith("rsk_")
        await site.shot(admin, "service-accounts")

        title = "Lịch tiêm phòng <script>alert(1)</script>"
        r = await site.ctl.api(
            "POST",
            "/bulletins",
            json={
                "id": "tinh-2026-001",
                "title": title,
                "text": "Trung tâm y tế huyện thông báo lịch tiêm phòng cho trẻ em.",
                "areas": ["xa-a"],
                "category": "health",
            },
            headers={"X-Api-Key": key},
            token="",
        )
        assert r.status_code == 201, r.text
        sid = r.json()["schedules"][0]["schedule_id"]

        officer = await site.login("officer-a")
        await officer.click("nav >> text=Duyệt lịch")
        row = officer.locator(f'tr[data-schedule="{sid}"]')
        text = await row.inner_text()
        assert title in text  # as text, never as markup
        assert "Bản tin cấp trên" in text and "svc:tinh-ttcs" in text and "health" in text
        await site.shot(officer, "approvals-bulletin")
        await row.locator("button.approve").click()
        await officer.wait_for_selector(f'tr[data-schedule="{sid}"]', state="detached")
        r = await site.ctl.api("GET", f"/schedules/{sid}")
        assert r.json()["status"] == "scheduled" and r.json()["approved_by"] == "officer-a"

        await officer.click("nav >> text=Bản tin cấp trên")
        assert title in await officer.inner_text("#received")
        await officer.select_option("#r-area", "xa-a")
        await officer.fill("#r-source", "svc:tinh-ttcs")
        await officer.fill("#r-time", "06:00")
        for day in ("MO", "TU", "WE", "TH", "FR"):
            await officer.check(f"#r-wd-{day}")
        await officer.check("#r-t-thon-a1")
        await officer.click("#rule-form button[type=submit]")
        await officer.wait_for_selector("#rules tr[data-rule]")
        rule_row = await officer.inner_text("#rules tbody")
        assert "06:00" in rule_row and "Thứ Hai" in rule_row and "Thôn Đông" in rule_row
        await site.shot(officer, "bulletin-rules")
        # Commune staff see neither page.
        staff = await site.login("staff-a")
        assert await staff.locator("nav >> text=Bản tin cấp trên").count() == 0
        await staff.goto(f"{site.url}/console/service-accounts")
        assert await staff.locator("#forbidden").count() == 1

        await admin.reload()
        assert "Chưa dùng" not in await admin.inner_text('tr[data-account="tinh-ttcs"]')
        admin.on("dialog", lambda dialog: dialog.accept())
        await admin.click('tr[data-account="tinh-ttcs"] button.revoke')
        await admin.wait_for_function(
            "document.getElementById('svc-msg').textContent.includes('Đã thu hồi')"
        )
        r = await site.ctl.api(
            "POST",
            "/bulletins",
            json={"id": "x", "title": "x", "text": "x", "areas": ["xa-a"]},
            headers={"X-Api-Key": key},
            token="",
        )
        assert r.status_code == 401 and r.json()["code"] == "api_key_revoked"
