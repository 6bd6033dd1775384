"""An agency's warning that waits for an officer appears at the top of the home page (also on a
page already open), its text shown as text, and one tap sends it to the mapped village's loudspeakers — in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.cap_feed_server import FeedServer, atom
from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium
from tests.controller.test_alerts import sounding
from tests.controller.test_broadcast_e2e import fleet_of
from tests.controller.test_cap_feeds_e2e import STORM, dated

pytestmark = needs_chromium
HOSTILE = "&lt;img src=x onerror=&quot;document.title='pwned'&quot;&gt;"


async def test_pending_warning_on_top_of_home_sent_in_one_tap(make_settings):
    settings = make_settings(cap_feed_allowed_hosts="127.0.0.1")
    async with FeedServer() as agency, console_site(settings) as site:
        ctl = site.ctl
        admin = await ctl.login_as_new("quan-tri", "admin")
        r = await ctl.api(
            "PUT",
            "/cap/geocodes",
            json={"value_name": "VN-ADM", "value": "18145", "area_id": "thon-a1"},
            token=admin,
        )
        assert r.status_code == 200, r.text
        document = dated(
            STORM,
            datetime.now(UTC),
            **{"Người dân vùng ven biển": f"{HOSTILE} Người dân vùng ven biển"},
        )
        agency.put("/cap/bao.xml", document)
        agency.put("/canhbao.atom", atom([("bao", "/cap/bao.xml")]))
        r = await ctl.api(
            "POST",
            "/cap/feeds",
            json={"name": "NCHMF", "url": agency.url("/canhbao.atom"), "enabled": False},
            token=admin,
        )
        feed_id = r.json()["id"]

        configs = [site.configs[n] for n in ("na1", "na2", "na3")]
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            page = await site.login("officer-a")
            assert await page.locator("#cap-warnings").count() == 0
            # The warning arrives while the officer has the home page open: it appears on top.
            r = await ctl.api("POST", f"/cap/feeds/{feed_id}/poll", token=admin)
            assert len(r.json()["taken"]) == 1, r.text  # no rule: it waits for an officer
            await page.wait_for_selector("#cap-warnings li", timeout=30_000)
            first = page.locator("main h2").first
            assert await first.inner_text() == "Cảnh báo của cơ quan chuyên môn chờ phát"
            item = page.locator("#cap-warnings li").first
            text = await item.inner_text()
            assert "Tin bão khẩn cấp" in text and "Thôn Đông" in text, text
            assert "<img src=x" in text and await page.locator("#cap-warnings img").count() == 0
            assert await page.title() != "pwned"
            await site.shot(page, "home-cap-warning")
            await page.click("#cap-warnings button.capw-approve")
            await page.wait_for_url("**/console/alerts/*")
            alert_id = page.url.rsplit("/", 1)[1]
            await wait_for(
                lambda: all(
                    sounding(n) == f"alert:{alert_id}"
                    for n in fleet.nodes
                    if n.node_id in ("na1", "na2")
                ),
                20,
                "thôn A1's loudspeakers to sound the warning",
            )
            assert not (sounding(fleet.nodes[2]) or "").startswith("alert:")
            await page.goto(f"{site.url}/console/")
            assert await page.locator("#cap-warnings").count() == 0
