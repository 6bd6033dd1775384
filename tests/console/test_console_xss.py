"""A technician names a loudspeaker with HTML; an administrator opens the map and the new-alert
page in a real browser. The name shows as text, and nothing in it runs."""

from __future__ import annotations

from typing import Any

from tests.console.console_support import console_site, needs_chromium

pytestmark = needs_chromium

EVIL = '<img src=x onerror="window.__pwned = 1">Loa <b>độc</b>'


def watch(page: Any) -> list[str]:
    """Script errors and Content-Security-Policy refusals on the page."""
    trouble: list[str] = []
    page.on("pageerror", lambda exc: trouble.append(f"error: {exc}"))
    page.on(
        "console",
        lambda msg: trouble.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return trouble


async def tooltip_of(page: Any, marker: str) -> Any:
    await page.hover(marker)
    tip = page.locator(".leaflet-tooltip")
    await tip.wait_for()
    return tip


async def test_a_node_name_is_text_on_the_map_and_the_alert_page(make_settings):
    async with console_site(make_settings()) as site:
        tech = await site.ctl.login("tech-a")
        body = {"id": "evil", "name": EVIL, "area_id": "thon-a2", "lat": 21.06, "lon": 105.80}
        r = await site.ctl.api("POST", "/nodes", json=body, token=tech)
        assert r.status_code == 201, r.text

        page = await site.login("root", enforce_csp=True)
        trouble = watch(page)
        response = await page.goto(f"{site.url}/console/map")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        tip = await tooltip_of(page, 'path[data-node="evil"]')
        assert EVIL in await tip.inner_text()
        assert await tip.locator("img, b").count() == 0
        assert await page.evaluate("window.__pwned") is None

        await page.goto(f"{site.url}/console/alerts/new")
        tip = await tooltip_of(page, 'path.village-node[data-node="evil"]')
        assert EVIL in await tip.inner_text()
        assert await tip.locator("img, b").count() == 0
        assert await page.evaluate("window.__pwned") is None
        # The pages work under the policy: nothing was refused, nothing failed.
        assert trouble == []


PAGES = [
    "/console/",
    "/console/announcements",
    "/console/dictionary",
    "/console/playlists",
    "/console/calendar",
    "/console/approvals",
    "/console/playback",
    "/console/alerts",
    "/console/alerts/new",
    "/console/live",
    "/console/map",
    "/console/nodes",
    "/console/nodes/na1",
    "/console/groups",
    "/console/alarms",
    "/console/reports?period=week",
]


async def test_every_console_page_works_under_the_content_security_policy(make_settings):
    async with console_site(make_settings()) as site:
        page = await site.login("root", enforce_csp=True)
        trouble = watch(page)
        for path in PAGES:
            response = await page.goto(f"{site.url}{path}")
            assert response.status == 200, path
            assert response.headers["x-frame-options"] == "DENY"
            await page.wait_for_load_state("load")
        assert trouble == []
