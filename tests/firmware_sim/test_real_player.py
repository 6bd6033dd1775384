"""The real player, for real, on a machine without a sound card: ALSA's `file` plugin (over its
`null` device) stands in for the card, and what it wrote is checked against what was sent —
decoded by miniaudio, the same decoder, so lengths and levels can be compared sample by sample.

What cannot run here: a physical card and PulseAudio (no daemon); the ALSA path up to the
device is the same one a Raspberry Pi takes.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes.util
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import miniaudio
import pytest

from audio.ffmpeg import ffmpeg_exe
from firmware_sim.sound_card import DeviceError, SoundCardPlayer
from protocol.audio_frames import FrameReader
from tests.conftest import running_controller, wait_for
from tests.stream_station import Station

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("asound") is None,
    reason="ALSA's library (libasound2) is not installed: the real player cannot be tried",
)

ASOUNDRC = """pcm.radiotest {{
    type file
    slave.pcm "null"
    file "{path}"
    format "raw"
    hint {{ show on description "commune radio test sink" }}
}}
"""


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An ALSA device "radiotest" writing 16-bit mono 48 kHz PCM to a file."""
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "card.raw"
    (home / ".asoundrc").write_text(ASOUNDRC.format(path=out))
    monkeypatch.setenv("HOME", str(home))
    yield out


def sounding(pcm: bytes) -> array.array[int]:
    """The samples that are not silence (runs of 32 zeros or more are: gaps, padding)."""
    samples = array.array("h", pcm)
    out: array.array[int] = array.array("h")
    zeros = 0
    for s in samples:
        if s == 0:
            zeros += 1
            continue
        if 0 < zeros < 32:
            out.extend([0] * zeros)
        zeros = 0
        out.append(s)
    return out


def rms(samples: array.array[int]) -> float:
    return (sum(s * s for s in samples) / max(len(samples), 1)) ** 0.5


def reference(path: Path, gain: float = 1.0) -> array.array[int]:
    """The file as miniaudio decodes it (at the gain the player applies), less its silence."""
    decoded = miniaudio.decode_file(str(path), miniaudio.SampleFormat.SIGNED16, 1, 48000)
    samples = (
        decoded.samples
        if gain == 1.0
        else array.array("h", (int(s * gain) for s in decoded.samples))
    )
    return sounding(samples.tobytes())


def make_mp3(path: Path, seconds: float, hz: int = 440) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=f={hz}:d={seconds}:sample_rate=48000", "-ac", "1", "-b:a", "64k", str(path)],
        check=True,
    )  # fmt: skip
    return path


def played(sink: Path, player: SoundCardPlayer) -> array.array[int]:
    """What the card wrote, once it has written all the player handed it so far (the sounds
    being done: the last of their audio is in that)."""
    fed = player.fed
    deadline = time.monotonic() + 10
    while sink.stat().st_size < fed:
        assert time.monotonic() < deadline, f"the card wrote {sink.stat().st_size} of {fed} bytes"
        time.sleep(0.01)
    player.close()
    return sounding(sink.read_bytes())


def test_a_recording_is_decoded_and_written_whole(sink: Path, tmp_path: Path) -> None:
    mp3 = make_mp3(tmp_path / "tone.mp3", 1.5)
    player = SoundCardPlayer("radiotest", "alsa")
    voice = player.play_file(mp3, lambda: 100)
    deadline = time.monotonic() + 10
    while not voice.done and time.monotonic() < deadline:
        time.sleep(0.01)
    out, ref = played(sink, player), reference(mp3)
    assert len(ref) > 70_000  # 1.5 s at 48 kHz, less the encoder's padding
    assert len(out) == pytest.approx(len(ref), rel=0.01)
    assert rms(out) == pytest.approx(rms(ref), rel=0.01) and rms(out) > 1000
    crossings = sum(1 for a, b in itertools.pairwise(out) if a < 0 <= b)
    assert crossings / (len(out) / 48000) == pytest.approx(440, rel=0.02)  # still a 440 Hz tone


def test_volume_scales_what_the_card_gets(sink: Path, tmp_path: Path) -> None:
    mp3 = make_mp3(tmp_path / "tone.mp3", 0.5)
    player = SoundCardPlayer("radiotest", "alsa")
    voice = player.play_file(mp3, lambda: 50)
    while not voice.done:
        time.sleep(0.01)
    out, ref = played(sink, player), reference(mp3)
    assert rms(out) / rms(ref) == pytest.approx(0.25, rel=0.05)  # (50/100)² of the level


async def test_a_stream_is_decoded_as_its_frames_arrive(sink: Path) -> None:
    station = await Station("mp3", kbps=64, hz=660).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", station.port)
    player = SoundCardPlayer("radiotest", "alsa")
    stream = player.open_stream("mp3", lambda: 100)  # type: ignore[arg-type]
    frames = FrameReader()
    try:
        writer.write(b"GET /live.mp3 HTTP/1.0\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"200 OK" in head
        loop = asyncio.get_running_loop()
        end = loop.time() + 30  # about 2 s of audio; a loaded machine starts ffmpeg late
        while frames.frames <= 80 and loop.time() < end:
            stream.feed(frames.feed(await reader.read(2048)))
        # The end of the input: the decoder plays out its last frames, then its voice is done.
        stream.end()
        await wait_for(lambda: stream.voice.done, 10, "the decoder's last frames")
    finally:
        writer.close()
        await station.close()
        stream.stop()
    out = await asyncio.to_thread(played, sink, player)
    heard_s = len(out) / 48000
    assert frames.frames > 60
    # Everything fed but the few frames still in the decoder when it was stopped.
    assert frames.audio_ms / 1000 - 0.3 < heard_s <= frames.audio_ms / 1000 + 0.05
    assert rms(out) > 1000


def test_a_missing_device_is_named_with_those_that_exist(sink: Path) -> None:
    with pytest.raises(DeviceError, match=r"'hw:9,9' not found.*radiotest"):
        SoundCardPlayer("hw:9,9", "alsa")
    with pytest.raises(DeviceError, match="use one of"):
        SoundCardPlayer("default", "oss")


LEAD_S = 20


def start_single(provision: Path, cache: Path, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOME": str(home)}
    cmd = [sys.executable, "-m", "firmware_sim", "--single", "--provision", str(provision)]
    cmd += ["--cache-dir", str(cache), "--audio-device", "radiotest"]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)


@pytest.mark.slow
async def test_single_node_plays_a_schedule_into_the_card_and_again_from_disk(
    sink: Path, tmp_path: Path, make_settings
) -> None:
    home = Path(os.environ["HOME"])
    provision, cache, log = tmp_path / "loa-01.json", tmp_path / "cache", tmp_path / "node.log"
    async with running_controller(make_settings()) as ctl:
        for body in (
            {"id": "xa-a", "name": "Xã A", "kind": "commune"},
            {"id": "thon-1", "name": "Thôn 1", "kind": "village", "parent_id": "xa-a"},
        ):
            assert (await ctl.api("POST", "/areas", json=body)).status_code == 201
        r = await ctl.api(
            "POST", "/nodes", json={"id": "loa-01", "name": "Loa", "area_id": "thon-1"}
        )
        provision.write_text(json.dumps(r.json()["provisioning"]))
        node = start_single(provision, cache, home, log)
        try:
            # The node runs in its own process on the machine's clock: the leads leave room
            # for a busy machine to start it, fetch the media, and restart it in between.
            first = await _announce(ctl, "Loa thôn một phát thử lần thứ nhất.", LEAD_S)
            await _wait_state(ctl, first["schedule"], "finished", LEAD_S + 60, log)
            heard = sounding(await asyncio.to_thread(sink.read_bytes))
            # Played at the node's volume (70: a gain of 0.49) and otherwise sample for sample.
            ref = reference(_media(ctl, first["ann"]), gain=0.49)
            assert len(heard) == pytest.approx(len(ref), rel=0.02)
            assert rms(heard) == pytest.approx(rms(ref), rel=0.02)

            second = await _announce(
                ctl, "Lần thứ hai, phát từ bộ nhớ sau khi khởi động lại.", 2 * LEAD_S
            )
            await _wait_state(ctl, second["schedule"], "downloaded", LEAD_S, log)
            stop(node)
            reference_2 = reference(_media(ctl, second["ann"]), gain=0.49)
        except BaseException:
            node.kill()
            raise
    # The controller and its broker are gone: the node restarts and plays from its disk.
    node = start_single(provision, cache, home, log)
    try:
        # With no controller to tell, the node keeps its reports in its outbox on disk: the
        # item's playback_finished there says it has played to its end.
        await wait_for(lambda: _finished(cache, second["schedule"]), 2 * LEAD_S + 60,
                       "the second announcement to play from the cache")  # fmt: skip
    finally:
        stop(node)  # the card's file is complete once the node has exited
    assert node.returncode == 0
    heard = sounding(await asyncio.to_thread(sink.read_bytes))
    assert len(heard) == pytest.approx(len(reference_2), rel=0.02)
    assert "restored from disk" in await asyncio.to_thread(log.read_text)


def _finished(cache: Path, schedule_id: int) -> bool:
    outbox = cache / "loa-01" / "outbox.jsonl"
    if not outbox.exists():
        return False
    for line in outbox.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event["type"] == "playback_finished" and event["broadcast_id"] == str(schedule_id):
                return True
    return False


async def _announce(ctl, text: str, in_s: float) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ann = (await ctl.api("POST", "/announcements", json={"title": "Thử", "text": text})).json()
    starts = (datetime.now(UTC) + timedelta(seconds=in_s)).isoformat()
    body = {"announcement_id": ann["id"], "starts_at": starts, "targets": {"nodes": ["loa-01"]}}
    r = await ctl.api("POST", "/schedules", json=body)
    assert r.status_code == 201, r.text
    return {"ann": ann["id"], "schedule": r.json()["id"]}


def _media(ctl, ann_id: int) -> Path:  # type: ignore[no-untyped-def]
    from controller.core.models import Announcement

    with ctl.service.db.session() as s:
        ann = s.get(Announcement, ann_id)
    return Path(ctl.service.store.path_for(ann.media_sha256))


async def _wait_state(ctl, schedule_id: int, state: str, timeout: float, log: Path) -> None:  # type: ignore[no-untyped-def]
    async def reached() -> bool:
        r = await ctl.api("GET", f"/schedules/{schedule_id}/deliveries")
        return r.json()["counts"].get(state) == 1

    try:
        await wait_for(reached, timeout, f"delivery {state}")
    except AssertionError:
        tail = (await asyncio.to_thread(log.read_text))[-3000:]
        raise AssertionError(f"delivery never {state}; node log:\n{tail}") from None
