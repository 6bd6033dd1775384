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
            if status == 422:  # the reason as a code, for the console to say in its words
                assert r.json()["code"].startswith("upload_"), r.text
        r = await ctl.api(
            "POST", "/announcements/upload", data={"title": "x"}, files={"file": ("a.mp3", png)}
        )
        assert r.json()["code"] == "upload_not_audio", r.text
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
        [sys.executable, "-m", "radio.cli", "speech", "normalize"],
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
            "radio.cli",
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


async def test_local_lists_per_area_and_who_may_edit_them(make_settings):
    async with running_controller(make_settings()) as ctl:
        for area in (
            {"id": "huyen", "name": "Huyện", "kind": "district"},
            {"id": "xa-a", "name": "Xã A", "kind": "commune", "parent_id": "huyen"},
            {"id": "thon-1", "name": "Thôn 1", "kind": "village", "parent_id": "xa-a"},
            {"id": "xa-b", "name": "Xã B", "kind": "commune", "parent_id": "huyen"},
        ):
            assert (await ctl.api("POST", "/areas", json=area)).status_code == 201
        officer_a = await ctl.login_as_new("officer-a", "officer", "xa-a")
        staff_a = await ctl.login_as_new("staff-a", "commune_staff", "xa-a")
        staff_village = await ctl.login_as_new("staff-t1", "commune_staff", "thon-1")
        staff_b = await ctl.login_as_new("staff-b", "commune_staff", "xa-b")
        auditor = await ctl.login_as_new("auditor-1", "auditor", None)

        local = {"term": "Ea Kar", "reading": "Ê a Ca", "area_id": "xa-a"}
        # Commune B's staff and an auditor may not touch commune A's list; the list for
        # every area is the administrators'.
        assert (
            await ctl.api("POST", "/speech/abbreviations", json=local, token=staff_b)
        ).status_code == 403
        assert (
            await ctl.api("POST", "/speech/abbreviations", json=local, token=auditor)
        ).status_code == 403
        common = {"term": "Ea Kar", "reading": "E a Kar"}
        assert (
            await ctl.api("POST", "/speech/abbreviations", json=common, token=officer_a)
        ).status_code == 403
        r = await ctl.api("POST", "/speech/abbreviations", json=local, token=staff_a)
        assert r.status_code == 201, r.text
        local_id = r.json()["id"]
        assert r.json()["area_id"] == "xa-a" and r.json()["created_by"] == "staff-a"
        again = await ctl.api("POST", "/speech/abbreviations", json=local, token=officer_a)
        assert again.status_code == 422 and again.json()["code"] == "dictionary_duplicate"
        # The same term may be in another list: the nearest list wins.
        assert (await ctl.api("POST", "/speech/abbreviations", json=common)).status_code == 201
        missing = {**local, "area_id": "nowhere"}
        assert (await ctl.api("POST", "/speech/abbreviations", json=missing)).status_code == 404

        text = "Hội nghị tại Ea Kar."

        async def reading(token: str | None, **extra: str) -> str:
            body = {"text": text, **extra}
            r = await ctl.api("POST", "/speech/preview", json=body, token=token)
            assert r.status_code == 200, r.text
            return r.json()["normalized_text"]

        assert await reading(staff_a) == "Hội nghị tại Ê a Ca."
        assert await reading(staff_village) == "Hội nghị tại Ê a Ca."  # a village of commune A
        assert await reading(staff_b) == "Hội nghị tại E a Kar."
        assert await reading(None) == "Hội nghị tại E a Kar."  # the administrator: every area
        assert await reading(None, area_id="thon-1") == "Hội nghị tại Ê a Ca."
        assert (
            await ctl.api(
                "POST", "/speech/preview", json={"text": text, "area_id": "xa-a"}, token=staff_b
            )
        ).status_code == 403

        # Announcements get the reading of their author's area.
        ann = await ctl.api(
            "POST", "/announcements", json={"title": "t", "text": text}, token=staff_village
        )
        assert ann.status_code == 201, ann.text
        assert ann.json()["normalized_text"] == "Hội nghị tại Ê a Ca."
        ann = await ctl.api(
            "POST", "/announcements", json={"title": "t", "text": text}, token=staff_b
        )
        assert ann.json()["normalized_text"] == "Hội nghị tại E a Kar."

        # Lists: commune B sees the common list only, commune A both, filters by list.
        terms_b = await ctl.api("GET", "/speech/abbreviations", token=staff_b)
        assert [e["area_id"] for e in terms_b.json()] == [None]
        seen_a = (await ctl.api("GET", "/speech/abbreviations", token=staff_village)).json()
        assert sorted(e["area_id"] or "" for e in seen_a) == ["", "xa-a"]
        only_a = await ctl.api("GET", "/speech/abbreviations", params={"area_id": "xa-a"})
        assert [e["id"] for e in only_a.json()] == [local_id]
        only_common = await ctl.api("GET", "/speech/abbreviations", params={"common": "true"})
        assert [e["area_id"] for e in only_common.json()] == [None]

        assert (
            await ctl.api("DELETE", f"/speech/abbreviations/{local_id}", token=staff_b)
        ).status_code == 404
        assert (
            await ctl.api("DELETE", f"/speech/abbreviations/{local_id}", token=staff_village)
        ).status_code == 403
        assert (
            await ctl.api("DELETE", f"/speech/abbreviations/{local_id}", token=officer_a)
        ).status_code == 204
        assert await reading(staff_a) == "Hội nghị tại E a Kar."


async def test_preview_shows_inline_overrides(make_settings):
    async with running_controller(make_settings()) as ctl:
        text = "Mời [[UBND|uỷ ban]] xã và UBND huyện họp lúc 7h."
        r = await ctl.api("POST", "/speech/preview", json={"text": text})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["normalized_text"] == "Mời uỷ ban xã và ủy ban nhân dân huyện họp lúc bảy giờ."
        assert body["overrides"] == [{"shown": "UBND", "reading": "uỷ ban"}]
        assert body["shown_text"] == "Mời UBND xã và UBND huyện họp lúc 7h."
        ann = await ctl.api("POST", "/announcements", json={"title": "t", "text": text})
        assert ann.json()["normalized_text"] == body["normalized_text"]
