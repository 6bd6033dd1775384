"""An officer on a phone schedules a Monday-and-Thursday announcement as one schedule, opens it
from the calendar, skips one Thursday, changes it and cancels it; the air time offered is Viet
Nam's whatever the phone's clock zone; approvals show the text, a player and the repetition —
in a real browser at 390 px."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from api.console.pages import LOCAL
from tests.console.console_support import console_site, needs_chromium, no_horizontal_scroll

pytestmark = needs_chromium

PHONE = {"width": 390, "height": 844}
TEXT = "Bà con chú ý lịch tiêm phòng cho gia súc tại nhà văn hoá thôn."


def next_monday() -> date:
    today = datetime.now(LOCAL).date()
    return today + timedelta(days=7 - today.weekday())


def next_hour() -> str:
    return (datetime.now(LOCAL) + timedelta(hours=1)).strftime("%H:00")


async def test_monday_and_thursday_open_from_calendar_skip_one_day(make_settings):
    async with console_site(make_settings()) as site:
        r = await site.ctl.api("POST", "/announcements", json={"title": "Tiêm phòng", "text": TEXT})
        assert r.status_code == 201, r.text
        ann_id = r.json()["id"]
        # A phone whose clock zone is New York's: the form still offers Viet Nam's next hour.
        page = await site.login("officer-a", PHONE, timezone_id="America/New_York")
        before = next_hour()
        await page.goto(f"{site.url}/console/calendar?announcement={ann_id}")
        offered = await page.input_value("#s-time")
        assert offered in {before, next_hour()}, offered
        assert await page.get_attribute("#s-time", "step") is None  # minutes, no seconds
        assert await page.locator("#s-weekdays").is_hidden()  # only for weekly

        monday = next_monday()
        thursday = monday + timedelta(days=3)
        await page.fill("#s-date", monday.strftime("%d/%m/%Y"))
        await page.fill("#s-time", "07:30")
        await page.select_option("#s-repeat", "WEEKLY")
        assert await page.locator("#s-weekdays").is_visible()
        assert await page.is_checked("#s-wd-MO")  # the day of the date chosen
        await page.check("#s-wd-TH")
        # Ticking the commune visibly ticks its villages; unticking gives them back.
        await page.check("#tg-xa-a")
        for village in ("#tg-thon-a1", "#tg-thon-a2"):
            assert await page.is_checked(village) and await page.is_disabled(village)
        await page.uncheck("#tg-xa-a")
        assert not await page.is_checked("#tg-thon-a1")
        assert await page.is_enabled("#tg-thon-a1")
        await page.check("#tg-thon-a1")
        await page.click("#schedule-btn")
        await page.wait_for_selector("#cal-done")
        assert "Đã lên lịch phát" in await page.inner_text("#cal-done")

        schedules = (await site.ctl.api("GET", "/schedules")).json()
        assert len(schedules) == 1  # one schedule for both days
        sid = schedules[0]["id"]
        assert schedules[0]["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TH"
        assert schedules[0]["targets"]["areas"] == ["thon-a1"]

        # The week of that Monday: both days, the title whole and the village by name.
        await page.goto(f"{site.url}/console/calendar?day={monday.isoformat()}")
        for d in (monday, thursday):
            entry = page.locator(f'section.day[data-day="{d.isoformat()}"] li.entry')
            assert await entry.count() == 1
            text = await entry.inner_text()
            assert "07:30" in text and "Tiêm phòng" in text and "Thôn Đông" in text
            assert "thon-a1" not in text
        # The list view, for a phone: only days with broadcasts, nothing sideways.
        await page.click("#view-list")
        await page.wait_for_selector("#calendar.list")
        assert await no_horizontal_scroll(page)
        shown = page.locator("#calendar.list section.day:visible")
        days = await shown.evaluate_all("ds => ds.map(d => d.dataset.day)")
        assert days[:2] == [monday.isoformat(), thursday.isoformat()], days
        await site.shot(page, "phone-calendar-list")

        # The calendar as a file for calendar apps.
        href = await page.get_attribute("#ics-link", "href")
        ics = await page.request.get(f"{site.url}{href}")
        assert ics.status == 200 and "RRULE:FREQ=WEEKLY;BYDAY=MO,TH" in await ics.text()

        # Open Thursday's entry: the schedule's page with that day to skip.
        await page.click(f'section.day[data-day="{thursday.isoformat()}"] li.entry a.open')
        await page.wait_for_url(f"**/console/schedules/{sid}?day={thursday.isoformat()}")
        assert await no_horizontal_scroll(page)
        timing = await page.inner_text("#sched-timing")
        assert "Hằng tuần vào Thứ Hai, Thứ Năm lúc 07:30" in timing, timing
        assert await page.inner_text("#sched-places") == "Thôn Đông"
        assert TEXT in await page.inner_text("#sched-text")
        await site.shot(page, "phone-schedule")
        await page.click("#skip-this-day")
        await page.wait_for_function(
            "document.getElementById('sched-msg').classList.contains('ok')"
        )
        assert thursday.strftime("%d/%m/%Y") in await page.inner_text("#sched-msg")
        assert await page.locator("#skip-chosen").is_hidden()
        got = (await site.ctl.api("GET", f"/schedules/{sid}")).json()
        assert got["exdates"] == [thursday.isoformat()]

        await page.click("#back-to-calendar")
        await page.wait_for_url("**/console/calendar?day=*")
        assert await page.locator(f'li.entry[data-schedule="{sid}"]').count() == 1  # Monday
        thursday_cell = page.locator(f'section.day[data-day="{thursday.isoformat()}"]')
        assert await thursday_cell.locator("li.entry").count() == 0

        # From Monday's entry: the skipped Thursday can be played again, then skipped again
        # from the list of coming broadcasts.
        await page.click(f'section.day[data-day="{monday.isoformat()}"] li.entry a.open')
        assert thursday.strftime("%d/%m/%Y") in await page.inner_text("#skipped")
        assert await page.locator(f'#coming li[data-day="{thursday}"]').count() == 0
        await page.click(f'#skipped li[data-day="{thursday}"] button.restore-day')
        await page.wait_for_url("**done=restored")
        assert (await site.ctl.api("GET", f"/schedules/{sid}")).json()["exdates"] == []
        await page.click(f'#coming li[data-day="{thursday}"] button.skip-day')
        await page.wait_for_selector(f'#coming li[data-day="{thursday}"]', state="detached")
        got = (await site.ctl.api("GET", f"/schedules/{sid}")).json()
        assert got["exdates"] == [thursday.isoformat()]

        # Change it: 08:00 instead, still both days.
        await page.click("#edit-box summary")
        assert await page.is_checked("#s-wd-MO") and await page.is_checked("#s-wd-TH")
        assert await page.input_value("#s-time") == "07:30"
        await page.fill("#s-time", "08:00")
        await page.click("#schedule-btn")
        await page.wait_for_url("**done=scheduled")
        assert "lúc 08:00" in await page.inner_text("#sched-timing")
        assert "Đã lưu" in await page.inner_text("#sched-msg")
        got = (await site.ctl.api("GET", f"/schedules/{sid}")).json()
        assert got["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TH" and got["exdates"] == [str(thursday)]

        # Cancel it: gone from the calendar.
        page.on("dialog", lambda dialog: dialog.accept())
        await page.click("#cancel-schedule")
        await page.wait_for_url("**done=cancelled")
        assert "Đã huỷ" in await page.inner_text("#cal-done")
        assert await page.locator(f'li.entry[data-schedule="{sid}"]').count() == 0
        got = (await site.ctl.api("GET", f"/schedules/{sid}")).json()
        assert got["status"] == "cancelled"


async def test_a_browser_set_to_english_types_days_and_times_the_vietnamese_way(make_settings):
    """A browser in American English in New York: the form still shows and takes dd/mm/yyyy and
    24-hour times, says in Vietnamese what is mistyped (keeping the text), and the schedule
    plays at the Viet Nam time typed."""
    async with console_site(make_settings()) as site:
        r = await site.ctl.api("POST", "/announcements", json={"title": "Tiêm phòng", "text": TEXT})
        assert r.status_code == 201, r.text
        ann_id = r.json()["id"]
        page = await site.login("officer-a", PHONE, locale="en-US", timezone_id="America/New_York")
        assert await page.evaluate("navigator.language") == "en-US"
        before_day, before_hour = datetime.now(LOCAL).date(), next_hour()
        await page.goto(f"{site.url}/console/calendar?announcement={ann_id}")
        for field in ("#s-date", "#s-time", "#s-until"):
            assert await page.get_attribute(field, "type") is None  # text, not a picker
            assert await page.get_attribute(field, "inputmode") == "numeric"
            assert await page.get_attribute(field, "pattern")
        # Defaults in Viet Nam time: today there and its next whole hour, 24-hour.
        shown_day = await page.input_value("#s-date")
        days = {d.strftime("%d/%m/%Y") for d in (before_day, datetime.now(LOCAL).date())}
        assert shown_day in days, shown_day
        assert await page.input_value("#s-time") in {before_hour, next_hour()}
        hints = await page.inner_text("#schedule-form")
        assert "ngày/tháng/năm" in hints and "24 giờ" in hints

        # Typed the American way: said in Vietnamese under each field, the text left as typed.
        await page.check("#tg-thon-a1")
        await page.fill("#s-date", "12/31/2026")
        await page.fill("#s-time", "8:05 PM")
        await page.click("#schedule-btn")
        await page.wait_for_selector("#s-date-err:not([hidden])")
        assert "ngày/tháng/năm" in await page.inner_text("#s-date-err")
        assert "24 giờ" in await page.inner_text("#s-time-err")
        assert await page.get_attribute("#s-date", "aria-invalid") == "true"
        assert await page.evaluate("document.activeElement.id") == "s-date"
        assert await page.input_value("#s-date") == "12/31/2026"
        assert await page.input_value("#s-time") == "8:05 PM"
        assert "không hợp lệ" in await page.inner_text("#schedule-msg")
        assert (await site.ctl.api("GET", "/schedules")).json() == []
        # A repeating one with its last day mistyped and a day that does not exist: both named.
        await page.select_option("#s-repeat", "DAILY")
        await page.fill("#s-until", "31-12-2026")
        await page.fill("#s-date", "31/02/2027")
        await page.fill("#s-time", "20:05")
        await page.click("#schedule-btn")
        await page.wait_for_selector("#s-until-err:not([hidden])")
        assert "ngày/tháng/năm" in await page.inner_text("#s-until-err")
        assert await page.is_visible("#s-date-err")
        assert await page.is_hidden("#s-time-err")
        assert (await site.ctl.api("GET", "/schedules")).json() == []

        # Typed right: dd/mm/yyyy, 20:05 on the 24-hour clock, the last day a week later.
        day = datetime.now(LOCAL).date() + timedelta(days=2)
        last = day + timedelta(days=7)
        await page.fill("#s-date", day.strftime("%d/%m/%Y"))
        await page.fill("#s-until", last.strftime("%d/%m/%Y"))
        await page.click("#schedule-btn")
        await page.wait_for_selector("#cal-done")
        schedules = (await site.ctl.api("GET", "/schedules")).json()
        assert len(schedules) == 1, schedules
        starts = datetime.fromisoformat(schedules[0]["starts_at"])
        if starts.tzinfo is None:
            starts = starts.replace(tzinfo=UTC)
        assert starts.astimezone(LOCAL).replace(tzinfo=None) == datetime(
            day.year, day.month, day.day, 20, 5
        )
        assert schedules[0]["rrule"] == "FREQ=DAILY"
        assert schedules[0]["ends_on"] == last.isoformat()

        # Its page, opened to change it, shows the same dd/mm/yyyy and 20:05.
        await page.goto(f"{site.url}/console/schedules/{schedules[0]['id']}")
        await page.click("#edit-box summary")
        assert await page.input_value("#s-date") == day.strftime("%d/%m/%Y")
        assert await page.input_value("#s-time") == "20:05"
        assert await page.input_value("#s-until") == last.strftime("%d/%m/%Y")


async def test_approvals_show_text_player_and_repetition(make_settings):
    async with console_site(make_settings()) as site:
        r = await site.ctl.api("POST", "/announcements", json={"title": "Tiêm phòng", "text": TEXT})
        ann = r.json()
        staff = await site.ctl.login_as_new("staff-a2", "commune_staff", "xa-a")
        monday = next_monday()
        r = await site.ctl.api(
            "POST",
            "/schedules",
            json={
                "announcement_id": ann["id"],
                "starts_at": f"{monday.isoformat()}T17:00",
                "targets": {"areas": ["thon-a2"]},
                "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
                "ends_on": (monday + timedelta(days=30)).isoformat(),
            },
            token=staff,
        )
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        sid = r.json()["id"]
        officer = await site.login("officer-a", PHONE)
        await officer.goto(f"{site.url}/console/approvals")
        row = officer.locator(f'tr[data-schedule="{sid}"]')
        text = await row.inner_text()
        assert TEXT in text and "Thôn Đoài" in text
        assert "Hằng tuần vào Thứ Hai, Thứ Năm lúc 17:00" in text, text
        until = (monday + timedelta(days=30)).strftime("%d/%m/%Y")
        assert f"đến hết {until}" in text
        player = row.locator("audio.draft-player")
        assert await player.get_attribute("src") == f"/console/media/{ann['media_sha256']}.mp3"
        await officer.wait_for_function(
            """() => { const a = document.querySelector('audio.draft-player');
                a.preload = 'auto'; a.load(); return true; }"""
        )
        await officer.wait_for_function("document.querySelector('audio.draft-player').duration > 1")
        assert await no_horizontal_scroll(officer)
        await site.shot(officer, "phone-approvals")
