"""The console's session without a browser: the cookie's flags behind HTTPS, a forged or revoked
cookie, audio for logged-in people only, and every page sending strangers to the login page."""

from __future__ import annotations

import httpx

from api.console.i18n import catalogue
from api.console.pages import PAGES
from api.session import CSRF_HEADER, LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import TEST_PASSWORD, running_controller


async def log_in(base: str, username: str, client: httpx.AsyncClient) -> httpx.Response:
    """The login form as a browser posts it: the form's token comes with its own cookie."""
    page = await client.get(f"{base}/console/login")
    token = page.text.split('name="login_form" value="', 1)[1].split('"', 1)[0]
    # Sent by hand: the cookie is marked Secure (HTTPS in front), and this test speaks HTTP.
    nonce = page.cookies[LOGIN_COOKIE]
    return await client.post(
        f"{base}/console/login",
        data={"username": username, "password": TEST_PASSWORD, "login_form": token},
        headers={"Cookie": f"{LOGIN_COOKIE}={nonce}"},
    )


async def test_cookie_flags_forgery_media_and_redirects(make_settings):
    settings = make_settings(public_url="https://radio.example.vn")
    async with running_controller(settings) as ctl:
        async with httpx.AsyncClient(timeout=30) as browser:
            for page in PAGES:
                r = await browser.get(f"{ctl.base_url}{page.path}")
                assert r.status_code == 303, page.path
                assert r.headers["location"].startswith("/console/login?next=")
            r = await log_in(ctl.base_url, "root", browser)
            assert r.status_code == 303 and r.headers["location"] == "/console/"
            flags = r.headers["set-cookie"].lower()
            assert f"{SESSION_COOKIE}=" in flags
            assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags
            session = r.cookies[SESSION_COOKIE]

        jar = {SESSION_COOKIE: session}
        async with httpx.AsyncClient(base_url=ctl.base_url, cookies=jar, timeout=60) as browser:
            ann = await ctl.api("POST", "/announcements", json={"title": "t", "text": "Chào."})
            media = f"/console/media/{ann.json()['media_sha256']}.mp3"
            r = await browser.get(media, headers={"Range": "bytes=0-99"})
            assert r.status_code == 206 and len(r.content) == 100
            assert (await browser.get("/console/media/..%2Fsecrets.mp3")).status_code == 404
            page = await browser.get("/console/")
            assert page.status_code == 200 and 'lang="vi"' in page.text
            csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            r = await browser.post("/api/v1/speech/preview", json={"text": "UBND"})
            assert r.status_code == 403 and CSRF_HEADER in r.json()["detail"]
            r = await browser.post(
                "/api/v1/speech/preview", json={"text": "UBND"}, headers={CSRF_HEADER: csrf}
            )
            assert r.status_code == 200 and "ủy ban" in r.json()["normalized_text"]
            # A bearer token wins over the cookie, and needs no CSRF header.
            r = await browser.post(
                "/api/v1/speech/preview",
                json={"text": "UBND"},
                headers={"Authorization": f"Bearer {ctl.token}"},
            )
            assert r.status_code == 200

        async with httpx.AsyncClient(base_url=ctl.base_url, timeout=60) as stranger:
            assert (await stranger.get(media)).status_code == 401
        forged = {SESSION_COOKIE: session[:-4] + "AAAA"}
        async with httpx.AsyncClient(base_url=ctl.base_url, cookies=forged, timeout=60) as forger:
            assert (await forger.get("/console/")).status_code == 303
            assert (await forger.get("/api/v1/nodes")).status_code == 401
            assert (await forger.get(media)).status_code == 401


def test_every_message_exists_in_both_languages():
    vi, en = catalogue("vi"), catalogue("en")
    assert set(vi) == set(en)
    assert all(text.strip() for text in [*vi.values(), *en.values()])
    assert vi["login.title"] == "Đăng nhập" and en["login.title"] == "Log in"
