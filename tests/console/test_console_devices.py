"""Technicians' pages in a real browser: the map's markers coloured by state and following the
nodes live, the node table's filters, and nothing of another commune."""

from __future__ import annotations

from api.console import devices, pages
from tests.conftest import wait_for
from tests.console.console_support import PHONE, console_site, needs_chromium, no_horizontal_scroll
from tests.controller.test_broadcast_e2e import fleet_of

pytestmark = needs_chromium

MARKER = "document.querySelector('path.node-marker[data-node=\"{}\"]')"
ROW_STATE = "document.querySelector('tr[data-node=\"{}\"] [data-status]').dataset.status"


async def online(site, *node_ids: str) -> bool:
    nodes = {n["id"]: n for n in (await site.ctl.api("GET", "/nodes")).json()["items"]}
    return all(nodes[n]["status"] == "online" for n in node_ids)


async def test_map_table_and_live_states(make_settings, monkeypatch):
    settings = make_settings()
    async with console_site(settings) as site:
        async with fleet_of([site.configs["na1"]]) as steady:
            async with fleet_of([site.configs["na2"]]) as leaving:
                await wait_for(lambda: online(site, "na1", "na2"), 20, "na1 and na2 online")
                assert steady.summary().connected == 1 and leaving.summary().connected == 1
                page = await site.login("tech-a")
                assert await page.locator("nav >> text=Bản tin").count() == 0
                await page.click("nav >> text=Bản đồ")
                await page.wait_for_selector("path.node-marker")
                # The technician's commune only: na1, na2 (online) and na3 (never connected).
                markers = await page.eval_on_selector_all(
                    "path.node-marker", "ms => ms.map(m => [m.dataset.node, m.dataset.status])"
                )
                assert dict(markers) == {"na1": "online", "na2": "online", "na3": "unknown"}
                colours = await page.eval_on_selector_all(
                    "path.node-marker", "ms => ms.map(m => m.getAttribute('fill'))"
                )
                assert len(set(colours)) == 2  # online and unknown look different
                assert await page.inner_text(".legend .count[data-status='online']") == "2"
                await site.shot(page, "map")
            # na2 went away: its marker changes colour without a reload.
            await page.wait_for_function(
                f"{MARKER.format('na2')}.dataset.status !== 'online'", timeout=30_000
            )
            assert await page.inner_text(".legend .count[data-status='online']") == "1"
            assert await page.evaluate(f"{MARKER.format('na1')}.dataset.status") == "online"

            await page.click("nav >> text=Thiết bị")
            ids = "rs => rs.map(r => r.dataset.node)"
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1", "na2", "na3"]
            async with page.expect_navigation():
                await page.select_option("#f-status", "online")  # submits by itself
            assert "status=online" in page.url
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1"]
            async with page.expect_navigation():
                await page.select_option("#f-status", "")
            await page.fill("#f-q", "Đoài")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na3"]
            await page.goto(f"{site.url}/console/nodes?area=xa-b")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == []
            await site.shot(page, "nodes")

            # On a phone's screen: no sideways scrolling, the map and table still there.
            phone = await site.login("tech-a", PHONE)
            for path in ("/console/map", "/console/nodes"):
                await phone.goto(f"{site.url}{path}")
                assert await no_horizontal_scroll(phone), path
            assert await phone.locator("path.node-marker").count() == 0  # the table page
            officer = await site.login("officer-a")
            assert (await officer.goto(f"{site.url}/console/map")).status == 403
            assert (await officer.goto(f"{site.url}/console/nodes")).status == 403

            # More nodes than the map draws at once (two here): it asks for an area first.
            monkeypatch.setattr(pages, "MAP_NODES", 2)
            await page.goto(f"{site.url}/console/map")
            assert await page.locator("#map-too-many").count() == 1
            assert await page.locator("path.node-marker").count() == 0
            assert await page.inner_text(".legend .count[data-status='online']") == "1"
            async with page.expect_navigation():
                await page.select_option("#m-area", "thon-a1")  # submits by itself
            await page.wait_for_selector("path.node-marker")
            markers = await page.eval_on_selector_all(
                "path.node-marker", "ms => ms.map(m => m.dataset.node)"
            )
            assert sorted(markers) == ["na1", "na2"]

            # A page at a time (two rows here), with the way to the next and back.
            monkeypatch.setattr(devices, "PAGE_ROWS", 2)
            await page.goto(f"{site.url}/console/nodes")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1", "na2"]
            assert await page.inner_text("#node-count") == "1–2 trong 3 cụm loa"
            async with page.expect_navigation():
                await page.click("#node-pager-top a.next")
            assert "page=2" in page.url and "after=na2" in page.url  # by the id, not a count
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na3"]
            assert await page.inner_text("#node-count") == "3–3 trong 3 cụm loa"
            assert await page.locator("#node-pager-top a.next").count() == 0
            async with page.expect_navigation():
                await page.click("#node-pager-bottom a.prev")
            assert "before=na3" in page.url
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1", "na2"]
            assert await page.locator("#node-pager-top a.prev").count() == 0
            async with page.expect_navigation():
                await page.click("#node-pager-top a.last")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na3"]
            assert await page.inner_text("#node-pager-top span") == "Trang 2/2"
            async with page.expect_navigation():
                await page.click("#node-pager-top a.first")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1", "na2"]
            # A typed page past the end shows the last; one that is not a number, the first.
            await page.goto(f"{site.url}/console/nodes?page=9")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na3"]
            assert await page.inner_text("#node-count") == "3–3 trong 3 cụm loa"
            for odd in ("%C2%B2", "9" * 5000, "-1"):
                await page.goto(f"{site.url}/console/nodes?page={odd}")
                assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1", "na2"]
            # Links made before the list changed: back past its start shows the first page,
            # numbered 1 whatever the link said; on past its end, the last.
            await page.goto(f"{site.url}/console/nodes?before=na1&page=7")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na1", "na2"]
            assert await page.inner_text("#node-count") == "1–2 trong 3 cụm loa"
            await page.goto(f"{site.url}/console/nodes?after=na3&page=2")
            assert await page.eval_on_selector_all("tr[data-node]", ids) == ["na3"]
            assert await page.inner_text("#node-pager-top span") == "Trang 2/2"
            await page.goto(f"{site.url}/console/nodes")
            await page.wait_for_function(f"{ROW_STATE.format('na1')} === 'online'")
        # na1 went away: its row says so without a reload.
        await page.wait_for_function(f"{ROW_STATE.format('na1')} !== 'online'", timeout=30_000)
