"""Logging in to the console in a real browser: refusals, throttling, logout, CSRF, the language
switch, the keyboard, a phone's screen; and without a session nothing but the login page."""

from __future__ import annotations

import httpx

from api.session import SESSION_COOKIE
from tests.console.console_support import PHONE, console_site, needs_chromium, no_horizontal_scroll

pytestmark = needs_chromium


async def test_refusal_throttle_logout_and_csrf(make_settings):
    async with console_site(make_settings()) as site:
        page = await site.page()
        await page.goto(f"{site.url}/console/nodes")
        assert page.url == f"{site.url}/console/login?next=%2Fconsole%2Fnodes"
        assert await page.get_attribute("html", "lang") == "vi"
        assert await page.inner_text("h1") == "Đăng nhập"
        await site.shot(page, "login")

        for _ in range(5):
            await page.fill("#username", "tech-a")
            await page.fill("#password", "not-the-password-1")
            await page.click("#login-submit")
            assert "Sai tên đăng nhập hoặc mật khẩu" in await page.inner_text("#login-error")
        # Throttled now, even with the right password; the API's own login shares the throttle.
        await page.fill("#password", "correct-horse-42")
        await page.click("#login-submit")
        assert "thử lại sau" in await page.inner_text("#login-error")
        api_login = await site.ctl.http.post(
            f"{site.url}/api/v1/auth/token",
            data={"username": "tech-a", "password": "correct-horse-42"},
        )
        assert api_login.status_code == 429
        site.ctl.service.login_throttle.clear("u:tech-a", "ip:127.0.0.1")

        await page.fill("#password", "correct-horse-42")
        await page.click("#login-submit")
        await page.wait_for_url(f"{site.url}/console/nodes")  # back where it was going
        cookie = next(c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
        assert await page.evaluate("document.cookie.includes('radio_session')") is False

        # The JSON API takes the cookie for reads; writes need the page's CSRF header.
        status = await page.evaluate("fetch('/api/v1/nodes').then(r => r.status)")
        assert status == 200
        refused = await page.evaluate(
            """fetch('/api/v1/nodes', {method: 'POST', headers: {'Content-Type':
               'application/json'}, body: JSON.stringify({id: 'x1', name: 'x', area_id:
               'thon-a1'})}).then(r => r.status)"""
        )
        assert refused == 403
        made = await page.evaluate(
            """fetch('/api/v1/nodes', {method: 'POST', headers: {'Content-Type':
               'application/json', 'X-CSRF-Token': Radio.csrf}, body: JSON.stringify({id:
               'x1', name: 'x', area_id: 'thon-a1'})}).then(r => r.status)"""
        )
        assert made == 201
        # A logout without the token (as a forged form on another site would send) is refused.
        jar = {SESSION_COOKIE: cookie["value"]}
        async with httpx.AsyncClient(base_url=site.url, cookies=jar, timeout=60) as other:
            assert (await other.post("/console/logout")).status_code == 403
            assert (await other.get("/api/v1/auth/me")).json()["username"] == "tech-a"

        await page.click("#logout")
        await page.wait_for_url(f"{site.url}/console/login")
        async with httpx.AsyncClient(base_url=site.url, cookies=jar, timeout=60) as other:
            assert (await other.get("/api/v1/auth/me")).status_code == 401  # revoked
            r = await other.get("/console/map")
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login")

        # A login form posted from elsewhere (no login cookie) is refused.
        async with httpx.AsyncClient(base_url=site.url, timeout=60) as stranger:
            r = await stranger.post(
                "/console/login",
                data={"username": "tech-a", "password": "correct-horse-42", "login_form": "x"},
            )
            assert r.status_code == 400 and SESSION_COOKIE not in r.cookies
            assert (await stranger.get("/", follow_redirects=True)).url.path == "/console/login"


async def test_keyboard_language_and_phone(make_settings):
    async with console_site(make_settings()) as site:
        page = await site.page(PHONE)
        await page.goto(f"{site.url}/console/login")
        assert await no_horizontal_scroll(page)
        # Keyboard only: the form starts focused, Tab walks it in order, Enter submits.
        assert await page.evaluate("document.activeElement.id") == "username"
        await page.keyboard.type("staff-a")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "password"
        await page.keyboard.type("correct-horse-42")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "login-submit"
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{site.url}/console/")
        await page.keyboard.press("Tab")  # the first stop of every page skips to the content
        assert await page.evaluate("document.activeElement.className") == "skip"

        for path in (
            "/console/",
            "/console/announcements",
            "/console/calendar",
            "/console/calendar?view=month",
            "/console/alerts/new",
            "/console/playback",
        ):
            await page.goto(f"{site.url}{path}")
            assert await no_horizontal_scroll(page), path
            # Every control has a label a screen reader can read.
            unlabelled = await page.evaluate(
                """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(e => !e.labels.length && !e.getAttribute('aria-label'))
                   .map(e => e.id || e.name)"""
            )
            assert unlabelled == [], (path, unlabelled)
        await site.shot(page, "phone-alert")

        await page.goto(f"{site.url}/console/calendar")
        assert await page.inner_text("h1") == "Lịch phát"
        await page.click("#menu-toggle")  # on a phone the switch is in the folded menu
        await page.click("#lang-switch")
        await page.wait_for_load_state()
        assert await page.get_attribute("html", "lang") == "en"
        assert await page.inner_text("h1") == "Programme"
        await page.goto(f"{site.url}/console/announcements")  # the choice is kept
        assert await page.inner_text("h1") == "Announcements"
        assert await page.inner_text("#logout") == "Log out"
        await page.click("#menu-toggle")  # on a phone the switch is in the folded menu
        await page.click("#lang-switch")
        await page.wait_for_load_state()
        assert await page.inner_text("h1") == "Bản tin"
