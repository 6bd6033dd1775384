"""Playlists built, reordered (by mouse and keyboard) and saved in the page, scheduled to a named
group, refused deletion while scheduled; a relayed station with a fallback recording; an alert's
village chosen on the map — in a real browser; and `radio serve` stopping while a live page
still streams."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.console.pages import LOCAL, duration
from api.main import SHUTDOWN_GRACE_S
from tests.console.console_support import PHONE, console_site, needs_chromium, no_horizontal_scroll
from tests.faults.test_fault_restarts import ServeProcess

ORDER = "Array.from(document.querySelectorAll('#entries li')).map(li => li.dataset.kind)"
FOCUSED = "[document.activeElement.closest('li').dataset.kind, document.activeElement.className]"


async def announce(site: Any, title: str, text: str) -> dict[str, Any]:
    r = await site.ctl.api("POST", "/announcements", json={"title": title, "text": text})
    assert r.status_code == 201, r.text
    return dict(r.json())


@needs_chromium
async def test_playlist_built_reordered_scheduled_to_a_group(make_settings):
    async with console_site(make_settings()) as site:
        morning = await announce(site, "Tin sáng", "Xin chào bà con.")
        power = await announce(site, "Lịch cắt điện", "Chiều nay cắt điện từ hai giờ.")
        page = await site.login("officer-a")

        # A group of loudspeakers, made from nodes of the officer's commune only.
        await page.click("nav >> text=Nhóm loa")
        await page.fill("#g-name", "Loa chợ Đông")
        assert await page.input_value("#g-id") == "loa-cho-dong"
        # The members are found by typing (a province has thousands): the officer's own
        # commune's only, the chosen area's only, without the marks too.
        await page.wait_for_selector("#gn-na1")
        assert await page.locator("#gn-nb1").count() == 0
        await page.select_option("#g-area", "thon-a1")
        await page.wait_for_selector("#gn-na3", state="detached")
        await page.select_option("#g-area", "xa-a")
        await page.check("#gn-na1")
        await page.fill("#g-search", "doai")
        await page.wait_for_selector("#gn-na1", state="detached")
        await page.check("#gn-na3")
        assert await page.inner_text("#g-found") == "1 cụm loa."
        chosen = await page.locator("#g-chosen li").all_inner_texts()
        assert [c.split(" (")[0] for c in chosen] == ["Loa Đông 1", "Loa Đoài 1"]
        # Changing the area unticks what was chosen; choosing again works.
        await page.select_option("#g-area", "thon-a1")
        assert await page.locator("#g-chosen li").count() == 0
        await page.select_option("#g-area", "xa-a")
        await page.fill("#g-search", "")
        await page.check("#gn-na1")
        await page.fill("#g-search", "Đoài")
        await page.check("#gn-na3")
        await page.click('#g-chosen li[data-node="na1"] button')
        assert await page.locator("#g-chosen li").count() == 1
        await page.fill("#g-search", "")
        await page.check("#gn-na1")
        await page.click("#g-save")
        await page.wait_for_selector('tr[data-group="loa-cho-dong"]')
        assert "Loa Đoài 1" in await page.inner_text('tr[data-group="loa-cho-dong"]')
        await site.shot(page, "groups")

        # Two announcements, a chime and a 2 s silence; the total follows every change.
        await page.click("nav >> text=Danh sách phát")
        await page.fill("#pl-title", "Chương trình sáng")
        for ann in (morning, power):
            await page.select_option("#pl-library", str(ann["id"]))
            await page.click("#add-announcement")
        assert await page.inner_text("#pl-total") == duration(
            (morning["duration_s"] + power["duration_s"]) * 1000
        )
        await page.click("#add-chime")
        await page.fill("#pl-silence", "2")
        await page.click("#add-silence")
        spoken = morning["duration_s"] + power["duration_s"]
        assert await page.inner_text("#pl-total") == duration((spoken + 2) * 1000)
        assert "tiếng chuông" in await page.inner_text("#pl-total-note")  # not known until saved
        assert await page.evaluate(ORDER) == ["announcement", "announcement", "chime", "silence"]

        # Reordered with the mouse, then from the keyboard: the focus stays on the moved entry.
        await page.click('#entries li[data-index="0"] button.down')
        assert await page.evaluate(
            "Array.from(document.querySelectorAll('#entries li')).map(li => li.dataset.announcement)"
        ) == [str(power["id"]), str(morning["id"]), None, None]
        await page.focus('#entries li[data-index="3"] button.up')
        await page.keyboard.press("Enter")
        await page.keyboard.press("Enter")
        assert await page.evaluate(ORDER) == ["announcement", "silence", "announcement", "chime"]
        assert await page.evaluate(FOCUSED) == ["silence", "up"]
        await page.keyboard.press("Space")
        assert await page.evaluate(ORDER) == ["silence", "announcement", "announcement", "chime"]
        # At the top its "up" is disabled: the focus moves to "down" in the same entry.
        assert await page.evaluate(FOCUSED) == ["silence", "down"]
        assert "vị trí 1 trên 4" in await page.inner_text("#pl-moved")
        await page.keyboard.press("Enter")
        assert await page.evaluate(ORDER) == ["announcement", "silence", "announcement", "chime"]
        await site.shot(page, "playlist-builder")

        await page.click("#pl-save")
        await page.wait_for_url("**/console/playlists?saved=*")
        playlist_id = int(page.url.split("saved=")[1].split("#")[0])
        saved = (await site.ctl.api("GET", f"/playlists/{playlist_id}")).json()
        assert [i["kind"] for i in saved["items"]] == [
            "announcement",
            "silence",
            "announcement",
            "chime",
        ]
        assert [i["announcement_id"] for i in saved["items"][::2]] == [power["id"], morning["id"]]
        chime_s = saved["items"][3]["duration_s"]
        assert chime_s > 0 and saved["duration_s"] == pytest.approx(spoken + 2 + chime_s, abs=0.01)
        total = duration(saved["duration_s"] * 1000)
        row = page.locator(f'tr[data-playlist="{playlist_id}"]')
        assert await row.locator("td.total").inner_text() == total
        assert total in await page.inner_text("#pl-saved")
        # Now the chime's length is known: the builder counts it.
        await page.click("#add-chime")
        assert await page.inner_text("#pl-total") == duration(chime_s * 1000)
        assert await page.inner_text("#pl-total-note") == ""

        # Edited: renamed, the silence removed; the list shows the new total.
        await row.locator("button.edit").click()
        assert await page.input_value("#pl-title") == "Chương trình sáng"
        await page.fill("#pl-title", "Chương trình sáng thứ Hai")
        await page.click('#entries li[data-kind="silence"] button.remove')
        async with page.expect_navigation():
            await page.click("#pl-save")
        saved = (await site.ctl.api("GET", f"/playlists/{playlist_id}")).json()
        assert saved["title"] == "Chương trình sáng thứ Hai" and len(saved["items"]) == 3
        assert await row.locator("td.total").inner_text() == duration(saved["duration_s"] * 1000)
        phone = await site.login("officer-a", PHONE)
        await phone.goto(f"{site.url}/console/playlists")
        assert await no_horizontal_scroll(phone)

        # Scheduled from the calendar's form, labelled as a playlist, to the group.
        await row.locator("a.schedule-it").click()
        await page.wait_for_url("**/console/calendar?announcement=*")
        label = await page.eval_on_selector("#s-ann", "s => s.selectedOptions[0].textContent")
        assert "danh sách phát" in label and duration(saved["duration_s"] * 1000) in label
        tomorrow = (datetime.now(LOCAL) + timedelta(days=1)).date()
        await page.fill("#s-date", tomorrow.strftime("%d/%m/%Y"))
        await page.fill("#s-time", "10:00")
        await page.check("#tg-group-loa-cho-dong")
        await site.shot(page, "schedule-playlist")
        await page.click("#schedule-btn")
        await page.wait_for_selector("#cal-done")
        assert "Đã lên lịch phát" in await page.inner_text("#cal-done")
        day = page.locator(f'section.day[data-day="{tomorrow.isoformat()}"]')
        assert "Chương trình sáng thứ Hai" in await day.inner_text()
        schedules = (await site.ctl.api("GET", "/schedules")).json()
        mine = [s for s in schedules if s["announcement_id"] == playlist_id]
        assert len(mine) == 1 and mine[0]["targets"]["groups"] == ["loa-cho-dong"]
        assert mine[0]["targets"]["areas"] == []

        # While scheduled, neither deleted nor changed: the page says why.
        await page.click("nav >> text=Danh sách phát")
        row = page.locator(f'tr[data-playlist="{playlist_id}"]')
        assert str(mine[0]["id"]) in await row.locator("td.used").inner_text()
        page.once("dialog", lambda dialog: dialog.accept())
        await row.locator("button.delete").click()
        await page.wait_for_function("document.getElementById('list-msg').textContent")
        message = await page.inner_text("#list-msg")
        assert (
            message == f"Danh sách đang được lịch số {mine[0]['id']} dùng: hãy huỷ lịch đó trước."
        )
        assert await row.count() == 1
        await row.locator("button.edit").click()
        await page.click("#pl-save")
        await page.wait_for_function(
            "document.getElementById('pl-msg').textContent.includes('huỷ')"
        )
        r = await site.ctl.api("GET", f"/playlists/{playlist_id}")
        assert r.status_code == 200 and r.json()["title"] == "Chương trình sáng thứ Hai"
        await site.shot(page, "playlists")


@needs_chromium
async def test_playlist_relaying_a_station_with_a_fallback(make_settings):
    async with console_site(make_settings()) as site:
        spare = await announce(site, "Nhạc chờ", "Chương trình sẽ trở lại sau ít phút.")
        page = await site.login("officer-a")
        await page.goto(f"{site.url}/console/playlists")
        await page.fill("#pl-title", "Tiếp sóng đài tỉnh")
        await page.click("#add-chime")

        # A bad address or length is refused in the page, before anything is sent.
        await page.fill("#pl-stream-url", "ftp://radio.example.vn/live")
        await page.click("#add-stream")
        assert "http://" in await page.inner_text("#pl-msg")
        assert await page.evaluate("document.activeElement.id") == "pl-stream-url"
        await page.fill("#pl-stream-url", "https://radio.example.vn/tinh/live.m3u8")
        await page.fill("#pl-stream-minutes", "0")
        await page.click("#add-stream")
        assert "1 đến 360 phút" in await page.inner_text("#pl-msg")
        assert await page.evaluate(ORDER) == ["chime"]

        # Thirty minutes of the station, the recording if it cannot be reached, through the
        # controller; the format is left to the address (.m3u8: HLS).
        await page.fill("#pl-stream-minutes", "30")
        await page.select_option("#pl-stream-fallback", str(spare["id"]))
        await page.check("#pl-stream-via")
        await page.click("#add-stream")
        assert await page.evaluate(ORDER) == ["chime", "stream"]
        entry = await page.inner_text('#entries li[data-kind="stream"]')
        assert "Tiếp sóng radio.example.vn" in entry and "dự phòng: Nhạc chờ" in entry
        assert "30:00" in entry
        await page.click('#entries li[data-kind="stream"] button.up')
        assert await page.evaluate(ORDER) == ["stream", "chime"]
        await site.shot(page, "playlist-stream")
        await page.click("#pl-save")
        await page.wait_for_url("**/console/playlists?saved=*")
        playlist_id = int(page.url.split("saved=")[1].split("#")[0])
        saved = (await site.ctl.api("GET", f"/playlists/{playlist_id}")).json()
        stream, chime = saved["items"]
        assert stream["kind"] == "stream" and chime["kind"] == "chime"
        assert stream["url"] == "https://radio.example.vn/tinh/live.m3u8"
        assert stream["format"] == "hls" and stream["via_controller"] is True
        assert stream["duration_s"] == 1800 and stream["announcement_id"] == spare["id"]
        row = page.locator(f'tr[data-playlist="{playlist_id}"]')
        listed = await row.inner_text()
        assert "Tiếp sóng radio.example.vn (dự phòng: Nhạc chờ)" in listed and "30:00" in listed

        # Edited: the relay keeps its address, format, fallback and route; a second relay,
        # direct, MP3 chosen by hand and without a fallback, is added after it.
        await row.locator("button.edit").click()
        assert "dự phòng: Nhạc chờ" in await page.inner_text('#entries li[data-kind="stream"]')
        await page.fill("#pl-stream-url", "http://stream.example.vn:8000/vov1")
        await page.select_option("#pl-stream-format", "mp3")
        await page.fill("#pl-stream-minutes", "15")
        await page.select_option("#pl-stream-fallback", "")
        await page.uncheck("#pl-stream-via")
        await page.click("#add-stream")
        assert await page.evaluate(ORDER) == ["stream", "chime", "stream"]
        async with page.expect_navigation():
            await page.click("#pl-save")
        saved = (await site.ctl.api("GET", f"/playlists/{playlist_id}")).json()
        first, _, second = saved["items"]
        assert (first["url"], first["format"], first["via_controller"]) == (
            "https://radio.example.vn/tinh/live.m3u8",
            "hls",
            True,
        )
        assert first["announcement_id"] == spare["id"] and first["duration_s"] == 1800
        assert (second["url"], second["format"], second["via_controller"]) == (
            "http://stream.example.vn:8000/vov1",
            "mp3",
            False,
        )
        assert second["announcement_id"] is None and second["duration_s"] == 900
        listed = await page.locator(f'tr[data-playlist="{playlist_id}"]').inner_text()
        assert "Tiếp sóng stream.example.vn" in listed


@needs_chromium
async def test_alert_village_chosen_on_the_map(make_settings):
    async with console_site(make_settings()) as site:
        page = await site.login("staff-a")
        await page.goto(f"{site.url}/console/alerts/new")
        await page.wait_for_selector("path.village-node")
        nodes = await page.eval_on_selector_all(
            "path.village-node", "ps => ps.map(p => [p.dataset.node, p.dataset.area])"
        )
        assert sorted(nodes) == [["na1", "thon-a1"], ["na2", "thon-a1"], ["na3", "thon-a2"]]
        chosen = "n => document.querySelector(`path.village-node[data-node='${n}']`).dataset.chosen"

        # A click on a loudspeaker ticks its village; the list and the map agree.
        await page.locator('path.village-node[data-node="na3"]').click()
        assert await page.is_checked("#area-thon-a2")
        assert not await page.is_checked("#area-thon-a1")
        assert [await page.evaluate(chosen, n) for n in ("na1", "na3")] == ["false", "true"]
        # The village's name, from the keyboard and by the mouse: on, then off again.
        label = '.village-label[data-area="thon-a1"]'
        await page.focus(label)
        await page.keyboard.press("Enter")
        assert await page.is_checked("#area-thon-a1")
        assert await page.get_attribute(label, "aria-pressed") == "true"
        assert await page.evaluate(chosen, "na2") == "true"
        await page.click(f"{label} .tag")
        assert not await page.is_checked("#area-thon-a1")
        assert await page.evaluate(chosen, "na2") == "false"
        # Ticking the commune in the list covers every village on the map.
        await page.check("#area-xa-a")
        assert [await page.evaluate(chosen, n) for n in ("na1", "na2", "na3")] == ["true"] * 3
        await page.uncheck("#area-xa-a")
        assert await page.evaluate(chosen, "na1") == "false"
        await site.shot(page, "alert-map")

        await page.click("label[for=tpl-flood]")
        await page.click("#alert-options summary")
        await page.check("#alert-test")
        await page.fill("#alert-repeat", "1")
        body = await page.inner_text("#alert-summary")
        assert "Thôn Đoài" in body and "Thôn Đông" not in body
        await page.click("#alert-send")
        await page.wait_for_url(lambda url: not url.endswith("/new"))
        rows = page.locator("tr[data-node]")
        assert await rows.evaluate_all("rs => rs.map(r => r.dataset.node)") == ["na3"]
        alert = (await site.ctl.api("GET", f"/alerts/{page.url.rsplit('/', 1)[1]}")).json()
        assert alert["alert"]["areas"] == ["thon-a2"] and alert["alert"]["test"] is True


async def test_serve_stops_while_a_live_page_streams(tmp_path: Path):
    """An open alert page's event stream never ends by itself: the server stops anyway."""
    serve = ServeProcess(tmp_path / "data")
    serve.radio("area", "add", "xa-a", "--name", "Xã A", "--kind", "commune")
    serve.radio("user", "add", "chief", "--role", "admin")
    serve.start()
    try:
        http = await serve.client()
        r = await http.post("/alerts", json={"template": "flood", "areas": ["xa-a"], "test": True})
        assert r.status_code == 201, r.text
        url = f"/alerts/{r.json()['id']}/events"
        async with http.stream("GET", url) as events:
            assert events.status_code == 200
            # Held: a dropped iterator would close the stream, as a closed page does.
            stream = events.aiter_text()
            assert "event: snapshot" in await anext(stream)
            assert serve.proc is not None
            serve.proc.terminate()
            try:
                code = await asyncio.to_thread(serve.proc.wait, SHUTDOWN_GRACE_S + 25)
            except subprocess.TimeoutExpired:
                pytest.fail("the server did not stop while a page held an event stream open")
            # The server cut the stream (the page would reconnect to the next one).
            with pytest.raises(httpx.RemoteProtocolError):
                async for _ in stream:
                    pass
        # uvicorn raises the signal again once it has stopped: killed by SIGTERM, after a clean stop.
        assert code in (0, -signal.SIGTERM), code
        await http.aclose()
    finally:
        serve.stop()
