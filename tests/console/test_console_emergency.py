"""An alert issued from the console's page — on a phone in four taps from the home page — watched
live as simulated nodes confirm it until it has played out, then the all-clear, which ends it and
is itself over once played — in a real browser."""

from __future__ import annotations

from api.console import emergency
from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium
from tests.controller.test_broadcast_e2e import fleet_of

pytestmark = needs_chromium

STATE_OF = "document.querySelector('tr[data-node=\"{}\"] [data-state]').dataset.state"
PHONE = {"width": 390, "height": 844}


async def test_flood_alert_in_four_taps_from_home_on_a_phone(make_settings):
    async with console_site(make_settings()) as site:
        configs = [site.configs[n] for n in ("na1", "na2", "na3")]
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            page = await site.login("staff-a", PHONE)
            taps = []

            async def tap(selector: str) -> None:
                taps.append(selector)
                await page.click(selector)

            await tap("#home-alert")
            await page.wait_for_url("**/console/alerts/new")
            # The commune is on the first screen: templates are short choices, their texts and
            # the free-text box are not in the way.
            commune = await page.locator("label[for=area-xa-a]").bounding_box()
            assert commune["y"] + commune["height"] <= PHONE["height"], commune
            assert await page.locator("#own-text").is_hidden()
            assert await page.inner_text("#tpl-text") == ""

            await tap("label[for=tpl-flood]")
            assert "lũ" in (await page.inner_text("#tpl-text")).lower()
            await tap("label[for=area-xa-a]")
            # The commune's villages show ticked with it (and are not sent on their own).
            for village in ("#area-thon-a1", "#area-thon-a2"):
                assert await page.is_checked(village) and await page.is_disabled(village)
            summary = await page.inner_text("#alert-summary")
            assert "Xã An" in summary and "Thôn" not in summary, summary
            await site.shot(page, "phone-alert-new")
            await tap("#alert-send")
            await page.wait_for_url(lambda url: not url.endswith("/new"))
            assert len(taps) == 4, taps
            alert_id = page.url.rsplit("/", 1)[1]

            # The confirmations arrive live, from every loudspeaker of the commune.
            rows = page.locator("tr[data-node]")
            await page.wait_for_function("document.querySelectorAll('tr[data-node]').length === 3")
            assert sorted(await rows.evaluate_all("rs => rs.map(r => r.dataset.node)")) == [
                "na1",
                "na2",
                "na3",
            ]
            for node in ("na1", "na2", "na3"):
                await page.wait_for_function(
                    f"['playing', 'done'].includes({STATE_OF.format(node)})", timeout=40_000
                )
            await site.shot(page, "phone-alert-live")
            r = await site.ctl.api("GET", f"/alerts/{alert_id}")
            alert = r.json()["alert"]
            assert alert["areas"] == ["xa-a"] and alert["created_by"] == "staff-a"
            assert alert["template"] == "flood"
            r = await site.ctl.api("POST", f"/alerts/{alert_id}/cancel")
            assert r.status_code == 200, r.text


async def test_alert_from_the_page_confirmations_all_clear_cancel(make_settings, monkeypatch):
    async with console_site(make_settings()) as site:
        configs = [site.configs[n] for n in ("na1", "na2", "na3")]
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            page = await site.login("staff-a")
            page.on("dialog", lambda dialog: dialog.accept())
            await page.click("#home-alert")  # the shortcut on the home page
            # Only the person's own commune is offered.
            assert await page.locator("#area-thon-b1").count() == 0
            assert await page.locator("#own-text").is_hidden()  # opens when chosen
            await page.click("label[for=tpl-own]")
            await page.fill("#alert-title", "Thử loa")
            await page.fill("#alert-text", "Kiểm tra hệ thống cảnh báo.")
            await page.click("#alert-options summary")
            await page.fill("#alert-repeat", "1")
            await page.click("#alert-send")
            assert page.url.endswith("/alerts/new")  # no place chosen yet: nothing sent
            assert "nơi phát" in await page.inner_text("#alert-msg")
            await page.check("#area-thon-a1")
            assert await page.inner_text("#alert-msg") == ""  # the refusal was of the form before
            summary = await page.inner_text("#alert-summary")
            assert "Thử loa" in summary and "Thôn Đông" in summary
            await site.shot(page, "alert-confirm")
            await page.click("#alert-send")
            await page.wait_for_url(lambda url: not url.endswith("/new"))
            first = page.url.rsplit("/", 1)[1]

            rows = page.locator("tr[data-node]")
            assert sorted(await rows.evaluate_all("rs => rs.map(r => r.dataset.node)")) == [
                "na1",
                "na2",
            ]
            # Played to the end on both: that can only reach the page through the live stream.
            for node in ("na1", "na2"):
                await page.wait_for_function(f"{STATE_OF.format(node)} === 'done'", timeout=40_000)
            assert await page.inner_text(".count[data-state='done']") == "2"
            # Played out everywhere: shown live, nothing left to cancel, the all-clear offered.
            await page.wait_for_function(
                "document.getElementById('alert-status').dataset.status === 'finished'"
            )
            assert await page.inner_text("#alert-status") == "Đã phát xong"
            assert await page.locator("#cancel-alert").is_hidden()
            await site.shot(page, "alert-live")

            # The counts are filters, and the nodes come a page at a time (one at a time here;
            # an alert for a province reaches thousands).
            rows_per_page = emergency.PAGE_ROWS
            monkeypatch.setattr(emergency, "PAGE_ROWS", 1)
            await page.goto(f"{site.url}/console/alerts/{first}")
            ids = "rs => rs.map(r => r.dataset.node)"
            shown = await rows.evaluate_all(ids)
            assert len(shown) == 1 and await page.inner_text("#count-all .count") == "2"
            assert await page.inner_text("#node-count") == "1–1 trong 2 cụm loa"
            await page.click("#alert-pager-top a.next")
            await page.wait_for_url("**page=2")
            assert sorted(shown + await rows.evaluate_all(ids)) == ["na1", "na2"]
            assert await page.locator("#alert-pager-top a.next").count() == 0
            # A page typed beyond the end, however far, is the last one.
            for far in ("99999999999", "9" * 40):
                response = await page.goto(f"{site.url}/console/alerts/{first}?page={far}")
                assert response is not None and response.status == 200
                assert "2/2" in await page.inner_text("#alert-pager-top")
            await page.click("#counts a[href='?state=failed']")
            await page.wait_for_url("**state=failed")
            assert (
                await rows.count() == 0
                and await page.inner_text(".count[data-state='done']") == "2"
            )
            assert await page.inner_text("#node-count") == "Không có cụm loa nào ở trạng thái này."
            assert await page.get_attribute("#counts a[href='?state=failed']", "aria-current")
            monkeypatch.setattr(emergency, "PAGE_ROWS", rows_per_page)

            # A filtered page keeps its rows live as they leave the state it lists, and says
            # that the list has changed (a failure heard late, as ingestion puts it).
            await page.goto(f"{site.url}/console/alerts/{first}?state=done")
            assert await rows.count() == 2 and await page.locator("#list-changed").is_hidden()
            alerts = site.ctl.service.alerts
            heard = alerts.heard("na1", first, "alert_failed", alerts.clock.now_ms(), "v1; test")
            assert heard is not None
            site.ctl.service.changes.publish(heard)
            await page.wait_for_function(f"{STATE_OF.format('na1')} === 'failed'")
            await page.locator("#list-changed").wait_for(state="visible")
            assert await page.inner_text(".count[data-state='failed']") == "1"
            await page.click("#list-changed a")
            await page.wait_for_function("document.querySelectorAll('tr[data-node]').length == 1")
            assert await rows.evaluate_all(ids) == ["na2"]
            await page.goto(f"{site.url}/console/alerts/{first}")

            await page.click("#all-clear")
            await page.wait_for_function(f"!location.pathname.endsWith('{first}')")
            clear = page.url.rsplit("/", 1)[1]
            assert "hết nguy hiểm" in await page.inner_text("h1")
            assert await page.locator("#all-clear").count() == 0  # no all-clear of an all-clear
            for node in ("na1", "na2"):
                await page.wait_for_function(f"{STATE_OF.format(node)} === 'done'", timeout=30_000)
            # Played once everywhere, the all-clear is over too: no button left on it.
            await page.wait_for_function(
                "document.getElementById('alert-status').dataset.status === 'finished'"
            )
            assert await page.locator("#alert-actions").is_hidden()

            await page.goto(f"{site.url}/console/alerts/{first}")
            assert await page.inner_text("#alert-status") == "Đã kết thúc"
            assert "hết nguy hiểm" in await page.inner_text("#ended-by")
            assert await page.locator("#alert-actions").is_hidden()
            await page.goto(f"{site.url}/console/")
            assert await page.locator("#active-h").count() == 0  # nothing sounds any more

            r = await site.ctl.api("GET", f"/alerts/{first}")
            assert r.json()["alert"]["status"] == "ended"  # the all-clear ended it
            r = await site.ctl.api("GET", f"/alerts/{clear}")
            assert r.json()["alert"]["status"] == "finished"
            assert r.json()["alert"]["created_by"] == "staff-a"

            # A technician sees neither the alert pages nor content pages.
            tech = await site.login("tech-a")
            for path in ("/console/alerts/new", "/console/announcements", "/console/calendar"):
                response = await tech.goto(f"{site.url}{path}")
                assert response.status == 403, path
            assert await tech.locator("nav >> text=Cảnh báo khẩn cấp").count() == 0
            await tech.goto(f"{site.url}/console/")
            assert await tech.locator("#home-alert").count() == 0  # no shortcut either
