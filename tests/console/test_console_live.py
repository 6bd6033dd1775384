"""The live microphone page in a real chromium with a fake microphone: the officer's voice reaches
simulated nodes, which decode it; an emergency alert cuts it and the page says so; stopping from
the page ends it. Refusals: a role without the right, a place outside the user's area, a
microphone refused, loudspeakers already live."""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

from audio.ffmpeg import ffmpeg_exe
from firmware_sim.player import CountingSink, SimulatedPlayer, Volume
from protocol import StreamFormat
from tests.conftest import wait_for
from tests.console.console_support import (
    FAKE_MICROPHONE,
    PHONE,
    console_site,
    needs_chromium,
    no_horizontal_scroll,
)
from tests.controller.test_broadcast_e2e import fleet_of
from tests.controller.test_live import live_run

pytestmark = needs_chromium

FRAME_SAMPLES = 1152  # an MPEG-1 layer III frame at 48 kHz
AUDIBLE = 1000  # peak of a 16-bit sample: well above encoded silence, far below the beep
REFUSE_MICROPHONE = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


class RecordingSink(CountingSink):
    """What a loudspeaker would decode, kept with the time each frame arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, bytes]] = []

    def feed(self, frames: list[bytes]) -> None:
        super().feed(frames)
        now = time.time()
        self.arrivals.extend((now, f) for f in frames)


class RecordingPlayer(SimulatedPlayer):
    def __init__(self) -> None:
        super().__init__()
        self.sinks: list[RecordingSink] = []

    def open_stream(self, fmt: StreamFormat, volume: Volume) -> RecordingSink:
        sink = RecordingSink()
        self.sinks.append(sink)
        return sink


async def decode(frames: list[bytes]) -> array[int]:
    """The frames through ffmpeg's MP3 decoder: 16-bit mono samples at 48 kHz."""
    proc = await asyncio.create_subprocess_exec(
        *(ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "mp3", "-i", "pipe:0"),
        *("-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    pcm, _ = await proc.communicate(b"".join(frames))
    assert proc.returncode == 0
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    return samples


def beeps(samples: array[int], rate: int = 48000) -> list[int]:
    """Where each sound at least 20 ms long starts (sample index): the fake microphone beeps
    twice a second, so a few seconds hold several, while a click or silence holds none."""
    window = rate // 100  # 10 ms
    loud = [
        max(abs(v) for v in samples[i : i + window]) > AUDIBLE
        for i in range(0, len(samples) - window, window)
    ]
    starts, run = [], 0
    for n, is_loud in enumerate(loud):
        run = run + 1 if is_loud else 0
        if run == 2:
            starts.append((n - 1) * window)
    # Runs closer than 100 ms are one sound.
    return [s for k, s in enumerate(starts) if k == 0 or s - starts[k - 1] > rate // 10]


def live_sink(node: Any, live_id: str) -> RecordingSink | None:
    run = live_run(node, live_id)
    sink = run._sink if run is not None else None  # the sink the node's stream feeds
    return sink if isinstance(sink, RecordingSink) else None


async def wait_page(page: Any, script: str, what: str) -> None:
    """Wait for `script` to hold in the page; on failure say what the page shows instead."""
    from playwright.async_api import TimeoutError as PageTimeout

    try:
        # Long: the browser, the encoder and the nodes share two cores with everything else.
        await page.wait_for_function(script, timeout=45_000)
    except PageTimeout:
        shown = await page.evaluate(
            "[document.getElementById('on-air').dataset.state,"
            " document.getElementById('live-msg').textContent]"
        )
        raise AssertionError(f"timed out waiting for {what}; the page shows {shown}") from None


async def deliveries(site: Any, schedule_id: int) -> dict[str, int]:
    r = await site.ctl.api("GET", f"/schedules/{schedule_id}/deliveries")
    return dict(r.json()["counts"])


async def test_live_from_the_microphone_reaches_nodes_is_cut_by_an_alert_and_stopped(
    make_settings,
):
    async with console_site(make_settings(), browser_args=FAKE_MICROPHONE) as site:
        configs = [site.configs[n] for n in ("na1", "na2", "na3")]
        async with fleet_of(configs) as fleet:
            for node in fleet.nodes:
                node.sounds.player = RecordingPlayer()
            await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
            page = await site.login("officer-a")
            await page.click("nav >> text=Phát trực tiếp")
            assert await page.inner_text("h1") == "Phát trực tiếp"
            assert await page.locator("#lv-area-xa-b").count() == 0  # only the officer's area
            await page.click("#live-start")
            assert "tiêu đề" in await page.inner_text("#live-msg")
            await page.fill("#lv-title", "Chủ tịch xã thông báo")
            await page.click("#live-start")
            assert "nơi phát" in await page.inner_text("#live-msg")
            await page.check("#lv-area-xa-a")
            await page.fill("#lv-minutes", "5")
            await page.click("#live-start")

            await page.wait_for_selector('#on-air[data-state="on_air"]')
            await wait_page(
                page, "document.getElementById('on-air').dataset.firstSent", "the first audio sent"
            )
            assert "hãy nói" in await page.inner_text("#live-msg")
            assert await page.locator("#live-setup").is_hidden()
            live_id = await page.get_attribute("#on-air", "data-live")
            live = (await site.ctl.api("GET", f"/live/{live_id}")).json()
            assert live["status"] == "on_air" and live["started_by"] == "officer-a"
            assert live["targets"]["areas"] == ["xa-a"] and live["source_connected"]

            # Every node streams it, and what it decodes is the microphone's beep, not the
            # silence the controller sends while no audio comes.
            await wait_for(
                lambda: all(
                    (s := live_sink(n, live_id)) is not None and s.frames >= 150
                    for n in fleet.nodes
                ),
                30,
                "three seconds of the live stream on every node",
            )
            first_sent = int(await page.get_attribute("#on-air", "data-first-sent")) / 1000
            first_frame, first_beep = [], []
            for node in fleet.nodes:
                sink = live_sink(node, live_id)
                assert sink is not None and sink.bytes > 0
                frames = [f for _, f in sink.arrivals]
                samples = await decode(frames)
                assert len(samples) >= len(frames) * FRAME_SAMPLES * 0.9
                found = beeps(samples)
                assert len(found) >= 3, f"{node.node_id} decoded {len(found)} beeps"
                run = live_run(node, live_id)
                assert run is not None and run.frames >= sink.frames and run.audio_ms > 3000
                first_frame.append(sink.arrivals[0][0])
                first_beep.append(sink.arrivals[found[0] // FRAME_SAMPLES][0])
            # Informal, not asserted: from the page's first blob to the nodes' first frame and
            # first beep (the beep's phase in the fake microphone's half-second cycle adds to it).
            print(
                f"\nlive: first blob sent -> first frame on a node "
                f"{min(first_frame) - first_sent:.3f} s, first beep decoded "
                f"{min(first_beep) - first_sent:.3f} s (last node {max(first_beep) - first_sent:.3f} s)"
            )

            async def all_started() -> bool:
                return await deliveries(site, live["schedule_id"]) == {"started": 3}

            await wait_for(all_started, 15, "every node to report the live item started")
            await page.wait_for_function(
                "document.getElementById('lv-listeners').textContent === '3'"
            )
            await page.wait_for_function(
                "document.querySelectorAll('#lv-nodes tr[data-state=\"started\"]').length === 3"
            )
            assert int(await page.get_attribute("#lv-level", "data-loudest")) > 0
            assert await page.inner_text("#lv-elapsed") != "0:00"
            assert await page.locator(f'#live-list tr[data-live="{live_id}"]').count() == 1
            await site.shot(page, "live-on-air")

            # An emergency alert on the same commune cuts the live item on every node.
            r = await site.ctl.api("POST", "/alerts", json={"areas": ["xa-a"], "template": "flood"})
            assert r.status_code == 201, r.text
            alert_id = r.json()["id"]
            await wait_for(
                lambda: all(n.playback.held_by for n in fleet.nodes), 15, "the alert to play"
            )
            for node in fleet.nodes:
                playing = node.playback.now_playing
                assert playing is None or playing.stream is None  # the live item is over
                await wait_for(lambda n=node: live_run(n, live_id).task.done(), 10, "stream end")

            async def all_cut() -> bool:
                return await deliveries(site, live["schedule_id"]) == {"preempted": 3}

            await wait_for(all_cut, 15, "every node to report the live item pre-empted")
            await page.wait_for_selector('#on-air[data-state="preempted"]', timeout=15_000)
            banner = await page.inner_text("#lv-preempt")
            assert "Cảnh báo khẩn cấp đã ngắt" in banner and "không loa nào" in banner
            assert (
                await page.get_attribute("#lv-preempt a", "href") == f"/console/alerts/{alert_id}"
            )
            assert await page.inner_text("#lv-badge") == "Bị ngắt"
            cut = page.locator('#lv-nodes tr[data-state="preempted"]')
            assert await cut.count() == 3
            assert "cảnh báo khẩn cấp" in (await cut.first.inner_text()).lower()
            await site.shot(page, "live-preempted")

            # Stop from the page: the broadcast ends everywhere; the page and the list say so.
            await page.click("#live-stop")
            await page.wait_for_selector('#on-air[data-state="ended"]')
            message = await page.inner_text("#live-msg")
            assert "đã kết thúc" in message and "officer-a đã dừng" in message
            assert "Cảnh báo khẩn cấp đã ngắt buổi phát trên 3/3" in message  # still told
            # The banner no longer asks to press "Dừng"; it says what happened.
            await page.wait_for_function(
                "document.getElementById('lv-preempt').textContent.includes('3/3')"
            )
            assert "Dừng" not in await page.inner_text("#lv-preempt")
            assert await page.locator("#live-stop").is_hidden()
            assert await page.locator("#live-setup").is_visible()
            ended = (await site.ctl.api("GET", f"/live/{live_id}")).json()
            assert ended["status"] == "ended" and ended["ended_by"] == "officer-a"
            assert ended["end_reason"] == "stopped by officer-a"
            await page.wait_for_selector(
                f'#live-list tr[data-live="{live_id}"][data-status="ended"]'
            )
            assert site.ctl.service.live.feeds.get(live_id) is None
            await site.ctl.api("POST", f"/alerts/{alert_id}/cancel")


async def test_live_stopped_from_the_page_and_refusals(make_settings):
    async with console_site(make_settings(), browser_args=FAKE_MICROPHONE) as site:
        # A technician has no right to go on air: no link, and the page is refused.
        tech = await site.login("tech-a")
        assert await tech.locator("nav >> text=Phát trực tiếp").count() == 0
        response = await tech.goto(f"{site.url}/console/live")
        assert response.status == 403
        assert await tech.locator("#forbidden").count() == 1
        assert await tech.locator("#live-start").count() == 0

        async with fleet_of([site.configs["na3"]]) as fleet:
            node = fleet.nodes[0]
            await wait_for(lambda: fleet.summary().connected == 1, 20, "the node to connect")
            page = await site.login("staff-a")  # commune staff may alert, so may go live
            page.on("dialog", lambda dialog: dialog.accept())
            await page.goto(f"{site.url}/console/live?lang=en")
            assert await page.inner_text("h1") == "Live broadcast"
            assert await page.inner_text("#live-start") == "Start the live broadcast"
            await page.goto(f"{site.url}/console/live?lang=vi")
            await page.fill("#lv-title", "Thông báo họp thôn")
            await page.check("#lv-area-thon-a2")
            await page.select_option("#lv-priority", "priority")
            await page.click("#live-start")
            await page.wait_for_selector('#on-air[data-state="on_air"]')
            live_id = await page.get_attribute("#on-air", "data-live")
            await wait_for(
                lambda: (r := live_run(node, live_id)) is not None and r.frames > 40,
                30,
                "the node to play the live stream",
            )
            await page.click("#live-stop")
            await page.wait_for_selector('#on-air[data-state="ended"]')
            assert "staff-a đã dừng" in await page.inner_text("#live-msg")
            got = (await site.ctl.api("GET", f"/live/{live_id}")).json()
            assert got["status"] == "ended" and got["priority"] == "priority"
            await wait_for(lambda: node.playback.now_playing is None, 10, "the node to stop")
            await wait_for(lambda: live_run(node, live_id).task.done(), 10, "the stream to end")

        # Loudspeakers already live (a source that never came): refused with the reason; then
        # stopped from the list by the officer.
        r = await site.ctl.api(
            "POST", "/live", json={"title": "Phát thử", "targets": {"areas": ["thon-a1"]}}
        )
        assert r.status_code == 201, r.text
        other = r.json()["id"]
        page = await site.login("officer-a")
        page.on("dialog", lambda dialog: dialog.accept())
        await page.goto(f"{site.url}/console/live")
        await page.fill("#lv-title", "Thông báo")
        await page.check("#lv-area-xa-a")
        await page.click("#live-start")
        await page.wait_for_function(
            "document.getElementById('live-msg').textContent.includes('dừng buổi')"
        )
        message = await page.inner_text("#live-msg")
        # In the person's words only: the API's English detail is for programs.
        assert (
            message == "Một số loa đã chọn đang phát trực tiếp buổi khác: hãy dừng buổi đó trước."
        )
        assert await page.locator("#on-air").is_hidden()
        row = page.locator(f'#live-list tr[data-live="{other}"]')
        assert "Đang phát" in await row.inner_text()
        await row.locator("button.stop-other").click()
        await page.wait_for_selector(f'#live-list tr[data-live="{other}"][data-status="ended"]')
        assert "Đã dừng" in await page.inner_text("#recent-msg")
        assert (await site.ctl.api("GET", f"/live/{other}")).json()["ended_by"] == "officer-a"

        # A place outside the user's area (sent by a tampered form): the API's 403, explained.
        outsider = await site.login("staff-b")
        await outsider.goto(f"{site.url}/console/live")
        assert await outsider.locator("#lv-area-xa-a").count() == 0
        await outsider.evaluate("document.querySelector('input[name=areas]').value = 'xa-a'")
        await outsider.check("input[name=areas]")
        await outsider.fill("#lv-title", "Thử")
        await outsider.click("#live-start")
        await outsider.wait_for_function(
            "document.getElementById('live-msg').classList.contains('error')"
        )
        message = await outsider.inner_text("#live-msg")
        assert message == "Bạn không có quyền phát trực tiếp tới nơi đã chọn."

        phone = await site.login("officer-a", PHONE)
        await phone.goto(f"{site.url}/console/live")
        assert await no_horizontal_scroll(phone)

        # The microphone refused: said plainly, and nothing goes on air.
        refused = await site.login("officer-a")
        await refused.add_init_script(REFUSE_MICROPHONE)
        await refused.goto(f"{site.url}/console/live")
        await refused.fill("#lv-title", "Thử micrô")
        await refused.check("#lv-area-thon-a2")
        await refused.click("#live-start")
        await refused.wait_for_function(
            "document.getElementById('live-msg').classList.contains('error')"
        )
        assert "chưa cho phép dùng micrô" in await refused.inner_text("#live-msg")
        assert await refused.is_enabled("#live-start")
        on_air = [b for b in (await site.ctl.api("GET", "/live")).json() if b["status"] == "on_air"]
        assert on_air == []
