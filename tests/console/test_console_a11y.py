"""WCAG 2 A and AA, checked by axe-core (the axe-playwright-python package bundles it) on every
console page each role visits, at a phone's width: contrast of text, names of fields and
controls, landmarks, lists. And the keyboard alone: from the home page to the alert form's
"Phát cảnh báo ngay", every step with a visible focus ring."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe

from tests.console.console_support import console_site, needs_chromium
from tests.console.test_console_vietnamese import PHONE, toured_site

pytestmark = needs_chromium

# WCAG 2.0 and 2.1, levels A and AA (color-contrast is among them).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


async def violations(axe: Axe, page: Any, url: str) -> list[str]:
    response = await page.goto(url)
    assert response.status == 200, url
    await page.wait_for_load_state("load")
    results = await axe.run(page, options=AXE_OPTIONS)
    assert "color-contrast" in {
        r["ruleId"] for r in await page.evaluate("axe.getRules(['wcag2aa'])")
    }  # the check that fails on faint text is among those run
    found = []
    for v in results.response["violations"]:
        for node in v["nodes"]:
            found.append(f"{url}: {v['id']}: {node['target']} {node['failureSummary'][:160]!r}")
    return found


async def test_every_page_meets_wcag_aa_at_phone_width(make_settings):
    axe = Axe()
    async with toured_site(make_settings) as (site, pages):
        found: list[str] = []
        for user, paths in pages.items():
            page = await site.login(user, PHONE)
            for path in paths:
                found += [f"{user}: {p}" for p in await violations(axe, page, f"{site.url}{path}")]
            # The check sees faint text: grey #bbb on white (1.9:1) is reported.
            await page.evaluate(
                """document.querySelector('main').insertAdjacentHTML('beforeend',
                '<p id="faint" style="color: #bbb">Chữ mờ</p>')"""
            )
            faint = (await axe.run(page, options=AXE_OPTIONS)).response["violations"]
            assert any(
                v["id"] == "color-contrast" and n["target"] == ["#faint"]
                for v in faint
                for n in v["nodes"]
            ), faint
            await page.context.close()
            site.contexts.remove(page.context)
        assert found == [], "\n".join(found)


# The focused element's ring as the browser draws it: an outline (or a ring of box-shadow) of at
# least 2 px that is not transparent.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || !el.matches(':focus-visible')) return null;
  const s = getComputedStyle(el);
  const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2
    && s.outlineColor !== 'rgba(0, 0, 0, 0)' && s.outlineColor !== 'transparent';
  return {id: el.id, text: (el.innerText || el.value || '').trim(), ring};
}"""


async def tab_to(page: Any, wanted: str, limit: int = 80) -> list[str]:
    """Press Tab until the element `wanted` (a CSS selector) has the focus; every element met
    on the way must show its focus ring. The ids met, in order."""
    met = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focus = await page.evaluate(FOCUS_RING)
        assert focus is not None, f"Tab after {met[-3:]} focused nothing visible"
        assert focus["ring"], f"no visible focus ring on {focus}"
        met.append(focus["id"] or focus["text"][:30])
        if await page.evaluate(f"document.activeElement.matches({wanted!r})"):
            return met
    raise AssertionError(f"{wanted} never reached by Tab: {met}")


async def test_an_alert_by_keyboard_alone_at_phone_width(make_settings):
    async with console_site(make_settings()) as site:
        page = await site.login("staff-a", PHONE)
        await tab_to(page, "#home-alert")
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/alerts/new")
        # The first template: Tab reaches the group of choices, Space picks the focused one.
        await tab_to(page, 'input[name="template"]')
        await page.keyboard.press("Space")
        assert await page.evaluate("document.activeElement.checked")
        await tab_to(page, "#area-thon-a1")
        await page.keyboard.press("Space")
        assert await page.is_checked("#area-thon-a1")
        await tab_to(page, "#alert-send")
        assert await page.inner_text("#alert-send") == "Phát cảnh báo ngay"
        assert "Thôn Đông" in await page.inner_text("#alert-summary")
        await page.keyboard.press("Enter")
        await page.wait_for_url(lambda url: not url.endswith("/new"))
        alert_id = page.url.rsplit("/", 1)[1]
        view = (await site.ctl.api("GET", f"/alerts/{alert_id}")).json()
        assert view["alert"]["areas"] == ["thon-a1"], view
