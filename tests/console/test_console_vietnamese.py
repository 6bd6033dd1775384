"""Every console page, for every role, at a phone's width and a desktop's, in Vietnamese: no
English words, no ISO or UTC timestamps, no decimals with a dot, and nothing that scrolls the
page sideways. The fleet is put in the states that leaked English before: a loudspeaker
offline, one on battery with a failed speaker check, an alert played out, a playback log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from api.console.i18n import catalogue
from api.console.pages import LOCAL, PAGES
from tests.conftest import wait_for
from tests.console.console_support import console_site, needs_chromium
from tests.controller.test_broadcast_e2e import announce, fleet_of

pytestmark = needs_chromium

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}

# Words of the controller's and the browser's English that once reached the Vietnamese pages
# (alarm details, event codes, reasons, errors). User names and codes are left out below.
ENGLISH = [
    "offline",
    "online",
    "since",
    "needs",
    "failed",
    "check",
    "battery",
    "raised",
    "finished",
    "stopped",
    "speaker",
    "alert",
    "schedule",
    "cancelled",
    "pending",
    "unknown",
    "played",
    "none",
    "None",
    "null",
    "undefined",
    "NaN",
    "true",
    "false",
    "Error",
    "Not Found",
    "Loading",
    "Submit",
    "Save",
    "Delete",
    "the",
    "and",
    "with",
    "from",
]
ENGLISH_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH) + r")\b")
TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\bUTC\b|[+-]00:00\b|\dZ\b")
DOT_DECIMAL_RE = re.compile(r"\b\d+\.\d+ ?(giây|phút|°C|%|MB|ms|dBm)")
# A message asked for by a key the catalogue does not hold shows the key itself
# ("home.about_reports", "role.system").
SECTIONS = sorted({key.split(".", 1)[0] for key in catalogue("vi")})
RAW_KEY_RE = re.compile(r"\b(" + "|".join(SECTIONS) + r")\.[a-z][a-z0-9_]*\b")

# The page's words as a person meets them: visible text and the labels a screen reader says.
# Left out: code (ids, action codes), what is marked translate="no" (names people chose) and
# the language switch itself (lang="en").
PAGE_WORDS = """() => {
  const skip = (el) => el.closest('script, style, code, [translate="no"], [lang="en"]');
  const seen = (el) => el.getClientRects().length > 0;
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && !skip(el) && seen(el) && n.textContent.trim()) out.push(n.textContent.trim());
  }
  for (const el of document.querySelectorAll('[placeholder], [aria-label], [title], option')) {
    if (skip(el)) continue;
    for (const a of ['placeholder', 'aria-label', 'title']) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
    if (el.tagName === 'OPTION') out.push(el.textContent.trim());
  }
  out.push(document.title);
  return out;
}"""
OVERFLOW = "document.scrollingElement.scrollWidth > window.innerWidth"
# Controls a finger cannot hit on a phone: less than 44 px high (WCAG 2.5.5).
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    'main summary, main button, main select, .leaflet-control-zoom a, main a.go, main a[download]'))
  .filter((el) => el.getClientRects().length && el.getBoundingClientRect().height < 43.5)
  .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${el.textContent.trim().slice(0, 30)}" ${Math.round(el.getBoundingClientRect().height)} px`)"""


# Text squeezed into a column too narrow for it: a word broken one or two letters per line
# (a value beside a long label on a phone). Inline form controls and icons are not text.
SQUEEZED = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.children.length || !el.offsetParent) continue;
    const text = el.textContent.trim();
    if (text.length < 4) continue;
    const style = getComputedStyle(el);
    const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.3;
    const r = el.getBoundingClientRect();
    if (r.width < parseFloat(style.fontSize) * 1.6 && r.height > line * 2.5) out.push(text);
  }
  return out;
}"""


async def problems(page: Any, url: str) -> list[str]:
    found = []
    response = await page.goto(url)
    if response.status != 200:
        return [f"{url}: status {response.status}"]
    await page.wait_for_load_state("load")
    if await page.evaluate(OVERFLOW):
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        found.append(f"{url}: scrolls sideways ({width} px)")
    for text in await page.evaluate(SQUEEZED):
        found.append(f"{url}: squeezed one letter per line: {text[:60]!r}")
    if page.viewport_size["width"] < 600:
        for what in await page.evaluate(SMALL_TARGETS):
            found.append(f"{url}: too small to tap: {what}")
    for text in await page.evaluate(PAGE_WORDS):
        for pattern, what in (
            (ENGLISH_RE, "English"),
            (TIMESTAMP_RE, "ISO/UTC time"),
            (DOT_DECIMAL_RE, "dot decimal"),
            (RAW_KEY_RE, "a message's key"),
        ):
            if pattern.search(text):
                found.append(f"{url}: {what}: {text[:120]!r}")
    return found


@asynccontextmanager
async def toured_site(make_settings: Any) -> AsyncIterator[tuple[Any, dict[str, list[str]]]]:
    """A console whose fleet is in every state a page shows, and the pages each role visits to
    check them all (tests/console/test_console_a11y.py walks the same pages)."""
    settings = make_settings(alarm_check_s=1, alarm_offline_after_s=0)
    async with console_site(settings) as site:
        ctl = site.ctl
        async with fleet_of([site.configs["nb1"]]) as gone:
            await wait_for(lambda: gone.summary().connected == 1, 20, "nb1 to connect")
        async with fleet_of([site.configs[n] for n in ("na1", "na2", "na3")]) as fleet:
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            sick = next(n for n in fleet.nodes if n.node_id == "na2")
            sick.health.speaker_ok = False
            sick.health.power, sick.health.battery_pct = "battery", 38

            async def alarms_up() -> bool:
                kinds = {
                    (a["node_id"], a["kind"]) for a in (await ctl.api("GET", "/alarms")).json()
                }
                return {("nb1", "offline"), ("na2", "speaker_fault"), ("na2", "mains_lost")} <= (
                    kinds
                )

            await wait_for(alarms_up, 40, "the offline, speaker and mains alarms")
            r = await ctl.api(
                "POST", "/alerts", json={"areas": ["xa-a"], "template": "flood", "repeat": 1}
            )
            assert r.status_code == 201, r.text
            alert_id = r.json()["id"]

            async def alert_played() -> bool:
                view = (await ctl.api("GET", f"/alerts/{alert_id}")).json()
                return view["alert"]["status"] == "finished"

            await wait_for(alert_played, 60, "the alert to play out")
            ann = await announce(ctl)
            # A title as long as a real one: lists of them must still fit a phone's width.
            long_title = (
                "Thông báo lịch tiêm vắc xin phòng bệnh sởi cho trẻ em từ 1 đến 5 tuổi "
                "tại trạm y tế xã"
            )
            r = await ctl.api(
                "POST", "/announcements", json={"title": long_title, "text": "Mời bà con đến."}
            )
            assert r.status_code == 201, r.text
            at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            body = {"announcement_id": ann["id"], "starts_at": at, "targets": {"areas": ["xa-a"]}}
            r = await ctl.api("POST", "/schedules", json=body)
            assert r.status_code == 201, r.text
            once = f"/console/schedules/{r.json()['id']}"
            # A weekly schedule with one day skipped (its page lists coming days and skipped
            # ones, and the weekday boxes), and a commune staff's draft (a card to approve).
            first = (datetime.now(LOCAL) + timedelta(days=1)).date()
            weekly = {
                **body,
                "starts_at": f"{first.isoformat()}T07:30",
                "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
                "ends_on": (first + timedelta(days=60)).isoformat(),
            }
            r = await ctl.api("POST", "/schedules", json=weekly)
            assert r.status_code == 201, r.text
            weekly_id = r.json()["id"]
            entries = (
                await ctl.api(
                    "GET",
                    "/calendar",
                    params={
                        "area_id": "xa-a",
                        "from": first.isoformat(),
                        "to": (first + timedelta(days=30)).isoformat(),
                    },
                )
            ).json()
            day = next(e["start"][:10] for e in entries if e["schedule_id"] == weekly_id)
            r = await ctl.api("POST", f"/schedules/{weekly_id}/skip", json={"day": day})
            assert r.status_code == 200, r.text
            repeating = f"/console/schedules/{weekly_id}"
            staff = await ctl.login_as_new("staff-a2", "commune_staff", "xa-a")
            r = await ctl.api(
                "POST",
                "/schedules",
                json={**weekly, "starts_at": f"{first.isoformat()}T17:00"},
                token=staff,
            )
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text
            draft = f"/console/schedules/{r.json()['id']}"

            alert = f"/console/alerts/{alert_id}"
            pages = {
                "staff-a": [
                    "/console/",
                    "/console/announcements",
                    "/console/dictionary",
                    "/console/playlists",
                    "/console/calendar",
                    "/console/calendar?view=month",
                    "/console/calendar?view=list",
                    once,
                    repeating,
                    draft,
                    "/console/groups",
                    "/console/playback",
                    "/console/alerts",
                    "/console/alerts/new",
                    alert,
                    "/console/live",
                    "/console/reports",
                ],
                "officer-a": [
                    "/console/",
                    "/console/approvals",
                    "/console/bulletin-rules",
                    draft,
                    repeating,
                    "/console/alerts/new",
                    "/console/live",
                    "/console/reports?period=year",
                ],
                "tech-a": [
                    "/console/",
                    "/console/map",
                    "/console/nodes",
                    "/console/nodes/na1",
                    "/console/nodes/na2",
                    "/console/alarms",
                    "/console/alarms?state=all",
                    "/console/reports",
                ],
                "auditor": [
                    "/console/",
                    "/console/calendar",
                    "/console/calendar?view=list",
                    repeating,
                    "/console/playback",
                    "/console/alerts",
                    alert,
                    "/console/nodes",
                    "/console/nodes/nb1",
                    "/console/alarms",
                    "/console/audit",
                    "/console/audit?action=login&area=xa-a",
                    "/console/reports",
                ],
                "root": [
                    "/console/",
                    "/console/audit",
                    "/console/nodes/nb1",
                    "/console/service-accounts",
                    "/console/bulletin-rules",
                ],
            }
            yield site, pages


async def test_every_page_for_every_role_is_vietnamese_and_fits(make_settings):
    async with toured_site(make_settings) as (site, pages):
        # Every page of the console is in the list: a new page is checked too.
        visited = {path.split("?")[0] for paths in pages.values() for path in paths}
        assert {page.path for page in PAGES} <= visited
        found: list[str] = []
        for user, paths in pages.items():
            for viewport in (PHONE, DESKTOP):
                page = await site.login(user, viewport)
                for path in paths:
                    found += [
                        f"{user} {viewport['width']}: {p}"
                        for p in await problems(page, f"{site.url}{path}")
                    ]
                await page.context.close()
                site.contexts.remove(page.context)
        assert found == [], "\n".join(found)
        favicon = await site.ctl.http.get(f"{site.url}/favicon.ico")
        assert favicon.status_code == 200 and favicon.headers["content-type"] == "image/svg+xml"


async def test_commands_name_themselves_and_an_offline_node_is_explained(make_settings):
    async with console_site(make_settings()) as site:
        async with fleet_of([site.configs["na1"]]) as gone:
            await wait_for(lambda: gone.summary().connected == 1, 20, "na1 to connect")

        async def na1_offline() -> bool:
            node = (await site.ctl.api("GET", "/nodes/na1")).json()
            return node["status"] != "online"

        # Gone: the controller knows before the page asks it to play a tone there.
        await wait_for(na1_offline, 60, "the controller to see na1 offline")
        async with fleet_of([site.configs["na2"]]) as fleet:
            await wait_for(lambda: fleet.summary().connected == 1, 20, "na2 to connect")

            async def reported() -> bool:
                node = (await site.ctl.api("GET", "/nodes/na2")).json()
                return bool(node.get("telemetry"))

            await wait_for(reported, 20, "na2's first heartbeat")
            volume = fleet.nodes[0].health.volume
            page = await site.login("tech-a", PHONE)
            await page.goto(f"{site.url}/console/nodes/na2")
            # The box starts at what the node reports, not at a number of the page's own.
            assert await page.input_value("#volume") == str(volume)

            await page.click("button[data-command='test_tone']")
            await page.wait_for_selector("#command-msg.ok", timeout=30_000)
            assert await page.inner_text("#command-msg") == "Phát âm thử: thiết bị đã làm."
            await page.fill("#volume", str((volume + 10) % 101))
            await page.click("button[data-command='volume']")
            await page.wait_for_function(
                "document.getElementById('command-msg').textContent.startsWith('Đặt âm lượng')",
                timeout=30_000,
            )
            await page.wait_for_selector("#command-msg.ok", timeout=30_000)
            said = await page.inner_text("#command-msg")
            assert said == f"Đặt âm lượng {(volume + 10) % 101}: thiết bị đã làm.", said
            await page.fill("#volume", "")
            await page.click("button[data-command='volume']")
            await page.wait_for_selector("#command-msg.error")
            assert "từ 0 đến 100" in await page.inner_text("#command-msg")

            # A command to an offline node: said in words, under no other heading, naming no
            # option the console does not have.
            await page.goto(f"{site.url}/console/nodes/na1")
            await page.click("button[data-command='test_tone']")
            await page.wait_for_selector("#command-msg.error")
            said = await page.inner_text("#command-msg")
            assert said.startswith("Phát âm thử: Cụm loa đang mất kết nối"), said
            assert "offline" not in said and "Trùng lịch" not in said


async def test_scripts_write_viet_nam_time_whatever_the_computers_clock(make_settings):
    async with console_site(make_settings()) as site:
        # A computer set to New York and to English: the console still says Viet Nam time.
        context = await site.browser.new_context(timezone_id="America/New_York", locale="en-US")
        site.contexts.append(context)
        page = await context.new_page()
        await page.goto(f"{site.url}/console/login")
        said = await page.evaluate(
            """() => [
              Radio.time("2026-12-05T06:20:15"),
              Radio.time("2026-12-05T06:20:15+00:00", { seconds: true }),
              Radio.time("2026-12-31T17:30:00Z"),
              Radio.time("2026-12-05T13:20:00+07:00", { hourOnly: true }),
              Radio.time("not a time"),
              Radio.number(36, 1),
              Radio.number(2.25, 2),
            ]"""
        )
        assert said == [
            "05/12/2026 13:20",
            "05/12/2026 13:20:15",
            "01/01/2027 00:30",
            "13:20",
            "—",
            "36,0",
            "2,25",
        ]
        await page.goto(f"{site.url}/console/login?lang=en")
        assert await page.evaluate("Radio.number(36, 1)") == "36.0"
        assert await page.evaluate("Radio.time('2026-12-05T06:20:15Z')") == "05/12/2026 13:20"
