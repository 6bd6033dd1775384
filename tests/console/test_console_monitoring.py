"""A technician finds a faulty loudspeaker and takes it on, in a real browser: a fault injected in
a simulated node raises an alarm, the pages show it, the node page acknowledges it and sends a
command, and its telemetry is drawn."""

from __future__ import annotations

import re

from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium
from tests.controller.test_broadcast_e2e import fleet_of

pytestmark = needs_chromium


async def test_fault_alarm_acknowledged_and_command_from_the_node_page(make_settings):
    async with console_site(make_settings(alarm_check_s=1)) as site:
        async with fleet_of([site.configs["na1"], site.configs["na2"]]) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            page = await site.login("tech-a")
            await page.click("nav >> text=Cảnh báo thiết bị")
            assert await page.locator("tr[data-alarm]").count() == 0

            faulty = next(n for n in fleet.nodes if n.node_id == "na2")
            faulty.health.speaker_ok = False  # the speaker check fails from the next heartbeat
            await page.wait_for_function(
                "document.getElementById('alarm-msg').textContent.includes('na2')",
                timeout=30_000,
            )  # told live, without a reload

            await page.click("nav >> text=Thiết bị")
            row = page.locator('tr[data-node="na2"]')
            assert "Lỗi loa" in await row.locator("td.alarms").inner_text()
            assert await page.locator('tr[data-node="na1"] td.alarms').inner_text() == ""
            await row.locator("a").click()
            await page.wait_for_url("**/console/nodes/na2")
            alarm = page.locator("tr[data-alarm]")
            assert "Lỗi loa" in await alarm.inner_text()
            await alarm.locator("input.note").fill("Đang cử người thay loa")
            await alarm.locator("button.ack").click()
            await page.wait_for_function(
                "document.querySelector('tr[data-alarm]').dataset.state === 'acknowledged'"
            )
            alarms = (await site.ctl.api("GET", "/alarms", params={"node_id": "na2"})).json()
            assert alarms[0]["acked_by"] == "tech-a"
            assert alarms[0]["ack_note"] == "Đang cử người thay loa"

            await page.click("button[data-command='test_tone']")
            await page.wait_for_function(
                "document.getElementById('command-msg').classList.contains('ok')",
                timeout=30_000,
            )
            assert "thiết bị đã làm" in await page.inner_text("#command-msg")
            await page.reload()
            assert await page.locator("figure.chart svg polyline").count() >= 1
            # Each drawn chart has its axes: values with the unit, and times in Viet Nam time.
            drawn = page.locator("figure.chart:has(polyline)")
            for k in range(await drawn.count()):
                figure = drawn.nth(k)
                unit = (await figure.locator("figcaption strong").inner_text()).split("(")[-1]
                values = await figure.locator(".y-axis span").all_inner_texts()
                assert len(values) == 3 and values[0].endswith(unit.rstrip(")")), values
                times = await figure.locator(".x-axis span").all_inner_texts()
                assert len(times) == 3, times
                assert all(re.fullmatch(r"\d\d:\d\d( \d\d/\d\d)?", t) for t in times), times
            await site.shot(page, "node")

            await page.goto(f"{site.url}/console/alarms?state=acknowledged")
            assert await page.locator("tr[data-alarm]").count() == 1
            # Commune staff have no technician pages.
            staff = await site.login("staff-a")
            assert (await staff.goto(f"{site.url}/console/alarms")).status == 403
            assert (await staff.goto(f"{site.url}/console/nodes/na2")).status == 403
