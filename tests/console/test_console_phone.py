"""Every role's pages at a phone's width (390 px) and a desktop's: nothing scrolls sideways,
table headers stay on one line (a wide table scrolls in its own box), the header is compact with
its menu folded behind one button, and what can be touched is at least 44 px tall."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api.console.pages import LOCAL
from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium, no_horizontal_scroll
from tests.controller.test_broadcast_e2e import fleet_of

pytestmark = needs_chromium

PHONE_390 = {"width": 390, "height": 844}
LANDSCAPE = {"width": 740, "height": 360}
# Links a finger taps on their own (the pager, back, downloads, the header's): 44 px at least.
SMALL_LINKS = """() => [...document.querySelectorAll(
    '.pager a, a.go, a[download], header a, header button')]
  .filter((el) => el.getClientRects().length && el.getBoundingClientRect().height < 43.5)
  .map((el) => `${el.textContent.trim().slice(0, 30)} ${Math.round(el.getBoundingClientRect().height)} px`)"""
DESKTOP = {"width": 1366, "height": 768}
PAGES = {
    "staff-a": [
        "/console/",
        "/console/announcements",
        "/console/calendar",
        "/console/calendar?view=month",
        "/console/alerts",
        "/console/alerts/new",
        "/console/playback",
        "/console/playlists",
        "/console/groups",
    ],
    "officer-a": ["/console/", "/console/approvals", "/console/live"],
    "tech-a": ["/console/", "/console/nodes", "/console/nodes/na1", "/console/alarms"],
    "auditor": ["/console/", "/console/alerts", "/console/calendar"],
}

# Headers taller than this many lines have been squeezed (one letter a line, once).
TALL_HEADERS = """(lines) => [...document.querySelectorAll('th')]
  .filter((th) => th.getClientRects().length)
  .filter((th) => th.getBoundingClientRect().height >
                  lines * parseFloat(getComputedStyle(th).lineHeight || '24') + 20)
  .map((th) => th.textContent.trim())"""
# Visible controls under 44 px tall (check boxes and radios count by their row).
SMALL_TARGETS = """() => [...document.querySelectorAll(
    'main button, main .button, main select, main input:not([type=checkbox]):not([type=radio])'
    + ':not([type=hidden]), main .check, main .choice, header a, header button')]
  .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .filter((e) => e.getBoundingClientRect().height < 43.5)
  .map((e) => e.id || e.textContent.trim().slice(0, 30) || e.outerHTML.slice(0, 60))"""


async def check_page(page: Any, url: str, phone: bool) -> None:
    response = await page.goto(url)
    assert response.status == 200, url
    assert await no_horizontal_scroll(page), url
    assert await page.evaluate(TALL_HEADERS, 2) == [], url
    if phone:
        assert await page.evaluate(SMALL_TARGETS) == [], url
        header = await page.locator("header.top").bounding_box()
        assert header["height"] <= 64, (url, header)  # not a third of the screen any more
        assert await page.locator("header nav").is_hidden(), url


async def test_every_role_at_phone_and_desktop_width(make_settings):
    async with console_site(make_settings()) as site:
        configs = [site.configs[n] for n in ("na1", "na2", "na3")]
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            r = await site.ctl.api(
                "POST", "/alerts", json={"areas": ["xa-a"], "template": "flood", "repeat": 1}
            )
            assert r.status_code == 201, r.text
            alert_id = r.json()["id"]
            PAGES["staff-a"].append(f"/console/alerts/{alert_id}")
            today = datetime.now(LOCAL).date()
            monday = today + timedelta(days=7 - today.weekday())
            ann = await site.ctl.api(
                "POST", "/announcements", json={"title": "Họp dân", "text": "Mời bà con họp."}
            )
            assert ann.status_code == 201, ann.text
            r = await site.ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": ann.json()["id"],
                    "starts_at": f"{monday.isoformat()}T07:30",
                    "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
                    "targets": {"areas": ["thon-a1"]},
                },
            )
            assert r.status_code == 201, r.text
            PAGES["officer-a"] += [
                f"/console/schedules/{r.json()['id']}?day={monday + timedelta(days=3)}",
                f"/console/calendar?view=list&day={monday.isoformat()}",
                "/console/playback",
            ]
            for user, paths in PAGES.items():
                phone = await site.login(user, PHONE_390)
                desktop = await site.login(user, DESKTOP)
                for path in paths:
                    await check_page(phone, f"{site.url}{path}", phone=True)
                    await check_page(desktop, f"{site.url}{path}", phone=False)
                await site.shot(phone, f"phone-{user}")

            # The folded menu opens on a tap and leads to every page.
            await phone.click("#menu-toggle")
            assert await phone.get_attribute("#menu-toggle", "aria-expanded") == "true"
            await phone.click("header nav >> text=Tổng quan")
            await phone.wait_for_load_state()
            assert await phone.locator("header nav").is_hidden()

            # Held sideways (wide, short, touched): still the phone's folded menu and big targets.
            sideways = await site.login("staff-a", LANDSCAPE, touch=True)
            for path in ("/console/", "/console/calendar", "/console/nodes"):
                await sideways.goto(f"{site.url}{path}")
                assert await no_horizontal_scroll(sideways), path
                assert await sideways.locator("#menu-toggle").is_visible(), path
                assert await sideways.locator("header nav").is_hidden(), path
                small = await sideways.evaluate(SMALL_LINKS)
                assert small == [], (path, small)
