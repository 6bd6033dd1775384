"""Speech through the API: preview, the administrators' dictionary, engines with fallback,
repeat, uploads refused or accepted, and the command line."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audio import get_engine
from tests.conftest import running_controller

ROOT = Path(__file__).resolve().parents[2]


async def test_preview_and_dictionary(make_settings):
    async with running_controller(make_settings()) as ctl:
        text = "UBND xã họp lúc 7h30 về ĐBSCL, ĐT 0912345678."
        r = await ctl.api("POST", "/speech/preview", json={"text": text})
        assert r.status_code == 200
        reading = r.json()["normalized_text"]
        assert reading.startswith("ủy ban nhân dân xã họp lúc bảy giờ ba mươi phút")
        assert "ĐBSCL" in reading or "đê bê" in reading.lower()

        await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        officer = await ctl.login_as_new("officer-1", "officer", "xa")
        entry = {"term": "ĐBSCL", "reading": "đồng bằng sông Cửu Long"}
        assert (
            await ctl.api("POST", "/speech/abbreviations", json=entry, token=officer)
        ).status_code == 403
        r = await ctl.api("POST", "/speech/abbreviations", json=entry)
        assert r.status_code == 201, r.text
        assert (await ctl.api("POST", "/speech/abbreviations", json=entry)).status_code == 422
        reading = (
            await ctl.api("POST", "/speech/preview", json={"text": text}, token=officer)
        ).json()
        assert "về đồng bằng sông Cửu Long" in reading["normalized_text"]
        ann = (await ctl.api("POST", "/announcements", json={"title": "t", "text": text})).json()
        assert "đồng bằng sông Cửu Long" in ann["normalized_text"]
        assert (
            await ctl.api("DELETE", f"/speech/abbreviations/{r.json()['id']}")
        ).status_code == 204
        reading = (await ctl.api("POST", "/speech/preview", json={"text": text})).json()
        assert "đồng bằng sông Cửu Long" not in reading["normalized_text"]


async def test_announcements_open_with_the_chime_unless_turned_off(make_settings):
    from audio.chime import CHIME_DURATION_S

    text = "Xin chào bà con thôn Đoài."
    durations = {}
    for chime in (True, False):  # True is the production default; tests turn it off
        async with running_controller(make_settings(opening_chime=chime)) as ctl:
            r = await ctl.api("POST", "/announcements", json={"title": "a", "text": text})
            assert r.status_code == 201, r.text
            durations[chime] = r.json()["duration_s"]
    assert durations[True] - durations[False] >= CHIME_DURATION_S, durations


async def test_engines_fallback_repeat_and_render_once(make_settings):
    async with running_controller(make_settings()) as ctl:
        text = "Xin chào bà con thôn Đông."
        once = (await ctl.api("POST", "/announcements", json={"title": "a", "text": text})).json()
        again = (await ctl.api("POST", "/announcements", json={"title": "b", "text": text})).json()
        assert once["media_sha256"] == again["media_sha256"]
        assert once["engine"] == "espeak" and once["fallback_from"] is None
        # No internet here: the online engine fails at once and the offline voice speaks.
        online = (
            await ctl.api(
                "POST", "/announcements", json={"title": "c", "text": text, "engine": "gtts"}
            )
        ).json()
        assert online["engine"] == "espeak" and online["fallback_from"] == "gtts"
        twice = (
            await ctl.api("POST", "/announcements", json={"title": "d", "text": text, "repeat": 2})
        ).json()
        assert twice["duration_s"] > once["duration_s"] * 1.6
        assert abs(twice["loudness_lufs"] + 16) <= 1
        r = await ctl.api(
            "POST", "/announcements", json={"title": "e", "text": text, "engine": "nope"}
        )
        assert r.status_code == 422 and "espeak" in r.text


async def test_uploads_accepted_and_refused(make_settings, tmp_path):
    async with running_controller(make_settings(upload_max_mb=1)) as ctl:
        wav = tmp_path / "voice.wav"
        get_engine("espeak").synthesize("Đây là bản ghi âm của cán bộ xã.", wav)
        files = {"file": ("ghi-am.mp3", wav.read_bytes(), "audio/mpeg")}  # name lies; content rules
        r = await ctl.api("POST", "/announcements/upload", data={"title": "Ghi âm"}, files=files)
        assert r.status_code == 201, r.text
        ann = r.json()
        assert ann["source"] == "upload" and ann["duration_s"] > 1
        media = await ctl.http.get(
            f"{ctl.base_url}/media/{ann['media_sha256']}.mp3",
            headers={"Authorization": f"Bearer {ctl.token}"},
        )
        assert media.status_code == 200 and media.headers["content-type"] == "audio/mpeg"

        before = len((await ctl.api("GET", "/announcements")).json())
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000
        for name, data, status, words in (
            ("a.mp3", png, 422, "not_audio"),
            ("b.wav", wav.read_bytes()[:100], 422, "refused"),
            ("c.mp3", b"", 422, "empty"),
            ("d.wav", b"x" * (2 * 1024 * 1024), 413, "too large"),
        ):
            r = await ctl.api(
                "POST",
                "/announcements/upload",
                data={"title": "x"},
                files={"file": (name, data, "audio/mpeg")},
            )
            assert r.status_code == status and words in r.text, (name, r.status_code, r.text)
        assert len((await ctl.api("GET", "/announcements")).json()) == before
        assert (
            not list((ctl.service.store.root / "tmp").glob("*"))
            if (ctl.service.store.root / "tmp").exists()
            else True
        )


async def test_an_announcement_in_use_cannot_be_deleted(make_settings):
    async with running_controller(make_settings()) as ctl:
        await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        used = (await ctl.api("POST", "/announcements", json={"title": "a", "text": "Một."})).json()
        free = (await ctl.api("POST", "/announcements", json={"title": "b", "text": "Hai."})).json()
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        await ctl.api(
            "POST",
            "/schedules",
            json={"announcement_id": used["id"], "starts_at": later, "targets": {"areas": ["xa"]}},
        )
        r = await ctl.api("DELETE", f"/announcements/{used['id']}")
        assert r.status_code == 409 and "schedule" in r.text
        assert (await ctl.api("DELETE", f"/announcements/{free['id']}")).status_code == 204
        assert (await ctl.api("GET", f"/announcements/{free['id']}")).status_code == 404


def test_speech_normalize_command_reads_lines(tmp_path):
    lines = "UBND xã thông báo\nHọp lúc 14:00 ngày 2/9\n\nGiá 25.000đ\n"
    out = subprocess.run(
        [sys.executable, "-m", "controller.cli", "speech", "normalize"],
        input=lines,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={"RADIO_DEMO": "1", "RADIO_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert out == [
        "ủy ban nhân dân xã thông báo",
        "Họp lúc mười bốn giờ ngày hai tháng chín",
        "",
        "Giá hai mươi lăm nghìn đồng",
    ]


def test_speech_render_command_writes_an_mp3(tmp_path):
    target = tmp_path / "out.mp3"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "speech",
            "render",
            "Xin chào 7h30.",
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={"RADIO_DEMO": "1", "RADIO_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert target.stat().st_size > 1000
    assert '"engine": "espeak"' in out and "bảy giờ ba mươi phút" in out
