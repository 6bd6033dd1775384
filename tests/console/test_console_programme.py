"""Commune staff write an announcement, hear it, schedule it on the calendar; an officer approves
the draft; clashes show in the week; another commune sees none of it — in a real browser."""

from __future__ import annotations

import math
import struct
import wave
from datetime import datetime, timedelta
from pathlib import Path

from api.console.pages import LOCAL
from tests.clocks import SteppedClock
from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium
from tests.controller.test_broadcast_e2e import fleet_of

pytestmark = needs_chromium

TEXT = "UBND xã thông báo: 7h30 sáng mai họp dân tại nhà văn hóa, ĐT 0912 345 678."
AUDIO_LOADED = """() => { const a = document.getElementById('player');
    return a.readyState >= 1 && a.duration > 1 && !a.error; }"""


def tone(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return path


async def test_write_listen_schedule_approve(make_settings, tmp_path):
    async with console_site(make_settings()) as site:
        staff = await site.login("staff-a")
        await staff.click("nav >> text=Bản tin")
        await staff.fill("#ann-title", "Họp dân")
        await staff.fill("#ann-text", TEXT)
        await staff.click("#preview-btn")
        await staff.wait_for_selector("#reading:not([hidden])")
        reading = await staff.inner_text("#reading-text")
        assert "ủy ban nhân dân" in reading and "bảy giờ ba mươi phút" in reading

        await staff.click("#render-btn")
        await staff.wait_for_selector("#result:not([hidden])")
        await staff.wait_for_function(AUDIO_LOADED)  # the page fetched the MP3 with its cookie
        assert await staff.evaluate("document.getElementById('player').duration") > 3
        await site.shot(staff, "announcement")

        # A recording, uploaded from the same page, is mastered and playable too.
        await staff.fill("#up-title", "Ghi âm")
        await staff.set_input_files("#up-file", str(tone(tmp_path / "tone.wav")))
        await staff.click("#upload-btn")
        await staff.wait_for_function(
            "document.getElementById('result-title').textContent === 'Ghi âm'"
        )
        await staff.wait_for_function(AUDIO_LOADED)
        # The recent list took both by itself, without a reload.
        await staff.wait_for_function(
            "document.querySelectorAll('#recent tbody tr').length === 2", timeout=15_000
        )
        recent = await staff.inner_text("#recent")
        assert "Họp dân" in recent and "Ghi âm" in recent
        assert await staff.locator("#recent tbody audio").count() == 2

        # Schedule the spoken announcement for tomorrow 09:00 in one village: a draft.
        await staff.goto(f"{site.url}/console/announcements")
        await staff.click("tr:has-text('Họp dân') >> text=Lên lịch phát")
        await staff.wait_for_url("**/console/calendar?announcement=*")
        tomorrow = (datetime.now(LOCAL) + timedelta(days=1)).date()
        await staff.fill("#s-date", tomorrow.strftime("%d/%m/%Y"))
        await staff.fill("#s-time", "09:00")
        await staff.check("#tg-thon-a1")
        await staff.click("#schedule-btn")
        await staff.wait_for_selector("#cal-done")
        assert "chờ cán bộ phụ trách duyệt" in await staff.inner_text("#cal-done")
        day = staff.locator(f'section.day[data-day="{tomorrow.isoformat()}"]')
        entry = day.locator("li.entry")
        assert await entry.count() == 1
        assert "09:00" in await entry.inner_text() and "Chờ duyệt" in await entry.inner_text()
        schedule_id = await entry.get_attribute("data-schedule")
        await site.shot(staff, "calendar-week")

        # Staff may not approve; the officer may.
        await staff.goto(f"{site.url}/console/approvals")
        assert await staff.locator("#forbidden").count() == 1
        assert await staff.locator("nav >> text=Duyệt lịch").count() == 0
        officer = await site.login("officer-a")
        await officer.click("nav >> text=Duyệt lịch")
        row = officer.locator(f'tr[data-schedule="{schedule_id}"]')
        assert "Họp dân" in await row.inner_text()
        await row.locator("button.approve").click()
        await officer.wait_for_selector(f'tr[data-schedule="{schedule_id}"]', state="detached")
        assert "Đã duyệt" in await officer.inner_text("#approve-msg")
        r = await site.ctl.api("GET", f"/schedules/{schedule_id}")
        assert r.json()["status"] == "scheduled" and r.json()["approved_by"] == "officer-a"

        # Now on air: the same time again at the same priority is refused, and the page says why.
        await staff.goto(f"{site.url}/console/calendar?day={tomorrow.isoformat()}")
        await staff.fill("#s-time", "09:00")
        await staff.check("#tg-thon-a1")
        await staff.click("#schedule-btn")
        await staff.wait_for_function("document.getElementById('schedule-msg').textContent")
        assert "Trùng lịch" in await staff.inner_text("#schedule-msg")

        # A more urgent broadcast over it: both show as clashing, in the week and the month.
        ann_id = r.json()["announcement_id"]
        urgent = await site.ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": ann_id,
                "starts_at": f"{tomorrow.isoformat()}T09:00:02",
                "targets": {"areas": ["xa-a"]},
                "priority": "priority",
                "title": "Tin khẩn",
            },
        )
        assert urgent.status_code == 201, urgent.text
        await officer.goto(f"{site.url}/console/calendar?day={tomorrow.isoformat()}")
        day = officer.locator(f'section.day[data-day="{tomorrow.isoformat()}"]')
        assert await day.locator("li.entry.clash").count() == 2
        assert "Chờ duyệt" not in await day.inner_text()
        assert await officer.locator("#clash-note").count() == 1
        await officer.click("#view-month")
        await officer.wait_for_selector("#calendar.month")
        day = officer.locator(f'section.day[data-day="{tomorrow.isoformat()}"]')
        assert await day.locator("li.entry").count() == 2
        await site.shot(officer, "calendar-month")

        # Another commune's staff see none of it, even when they ask for it by name.
        other = await site.login("staff-b")
        await other.goto(f"{site.url}/console/calendar?area=xa-a&day={tomorrow.isoformat()}")
        assert await other.locator("li.entry").count() == 0
        assert "Không xem được địa bàn này" in await other.inner_text("main")
        await other.goto(f"{site.url}/console/announcements")
        assert "Họp dân" not in await other.inner_text("main")
        await other.goto(f"{site.url}/console/playback?area=xa-a")
        assert "Không xem được địa bàn này" in await other.inner_text("main")


async def test_scheduled_from_the_page_the_log_shows_it_played(make_settings):
    clock = SteppedClock()  # held from the form until both nodes hold the media
    async with console_site(make_settings(), clock=clock) as site:
        configs = [site.configs[n] for n in ("na1", "na2")]
        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            r = await site.ctl.api(
                "POST", "/announcements", json={"title": "Loa thử", "text": "Xin chào bà con."}
            )
            assert r.status_code == 201, r.text
            officer = await site.login("officer-a")
            await officer.goto(f"{site.url}/console/calendar?announcement={r.json()['id']}")
            # A whole minute two minutes ahead; the clock waits there for the nodes.
            clock.pause()
            now = datetime.fromtimestamp(clock.now_ms() / 1000, LOCAL)
            at = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
            await officer.fill("#s-date", at.date().strftime("%d/%m/%Y"))
            await officer.fill("#s-time", at.strftime("%H:%M"))
            await officer.check("#tg-thon-a1")
            await officer.click("#schedule-btn")
            await officer.wait_for_selector("#cal-done")
            assert "Đã lên lịch phát" in await officer.inner_text("#cal-done")
            await wait_for(
                lambda: all(
                    (b := n.timeline.body) is not None
                    and b.items
                    and all(n.media.is_ready(i.media.sha256) for i in b.items)
                    for n in fleet.nodes
                ),
                30,
                "both nodes to hold the broadcast",
            )
            # The log, opened before air time, follows the nodes' reports by itself.
            await officer.goto(f"{site.url}/console/playback?day={at.date().isoformat()}")
            assert await officer.locator("#log-live").count() == 1
            clock.skip_to(at)
            clock.resume()
            await officer.wait_for_function(
                "document.querySelectorAll('#log tbody tr').length === 2"
            )
            finished = "document.querySelectorAll('#log [data-state=\"finished\"]').length === 2"
            await officer.wait_for_function(finished, timeout=150_000)
            rows = officer.locator("#log tbody tr")
            assert await rows.count() == 2
            text = await officer.inner_text("#log")
            assert "Loa thử" in text and text.count("Đã phát xong") == 2
            # Loudspeakers by name and village, not by code.
            assert "Loa Đông 1 · Thôn Đông" in text and "Loa Đông 2 · Thôn Đông" in text
            assert "na1" not in text
            assert "2 lượt phát" in await officer.inner_text("#log-summary")
            log = await site.ctl.api(
                "GET", "/playback-log", params={"area_id": "xa-a", "date": str(at.date())}
            )
            assert [row["state"] for row in log.json()] == ["finished", "finished"]
            await site.shot(officer, "playback-log")
