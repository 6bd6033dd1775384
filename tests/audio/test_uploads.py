"""Uploaded recordings: every accepted format mastered, every bad kind refused and cleaned up."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from audio import MediaStore, UploadLimits, UploadRefused, ingest_upload, measure
from audio.ffmpeg import run_ffmpeg

# A voice-like test signal: a tone with a slow tremolo, so the loudness gate sees speech.
_SOURCE = "sine=f=330:d={d},volume=0.3,tremolo=f=3:d=0.7"


def _make(path: Path, seconds: float = 3.0, *extra: str) -> Path:
    run_ffmpeg(["-y", "-f", "lavfi", "-i", _SOURCE.format(d=seconds), *extra, str(path)])
    return path


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def _refused(src: Path, store: MediaStore, reason: str, **limits: float) -> UploadRefused:
    with pytest.raises(UploadRefused) as caught:
        ingest_upload(src, store, limits=UploadLimits(**limits))
    assert caught.value.reason == reason, caught.value.message
    assert list(store.tmp_dir.iterdir()) == [], "temporary files left behind"
    assert list(store.media()) == []
    assert src.exists()
    return caught.value


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "args"),
    [
        ("a.wav", "wav", "pcm_s16le", ()),
        ("a.mp3", "mp3", "mp3", ()),
        ("a.m4a", "m4a", "aac", ("-c:a", "aac")),
        ("a.ogg", "ogg", "vorbis", ("-c:a", "libvorbis")),
        ("a.opus", "ogg", "opus", ("-c:a", "libopus")),
    ],
)
def test_accepted_formats_are_mastered(
    store: MediaStore, tmp_path: Path, name: str, fmt: str, codec: str, args: tuple[str, ...]
) -> None:
    src = _make(tmp_path / name, 3.0, *args)
    result = ingest_upload(src, store, opening_chime=False)
    assert (result.source_format, result.source_codec) == (fmt, codec)
    assert abs(result.source_duration_s - 3.0) < 0.1
    path = store.path_for(result.sha256)
    assert path is not None and path.stat().st_size == result.size
    measured = measure(path)
    assert abs(measured.integrated_lufs + 16.0) <= 1.0 and measured.true_peak_dbtp <= -1.5
    assert 3.0 < result.duration_s < 4.5
    assert list(store.tmp_dir.iterdir()) == []


def test_content_decides_not_the_name(store: MediaStore, tmp_path: Path) -> None:
    wav_named_mp3 = _make(tmp_path / "real.wav", 1.0)
    renamed = wav_named_mp3.rename(tmp_path / "recording.mp3")
    result = ingest_upload(renamed, store)
    assert result.source_format == "wav"
    # The opening chime is on by default for officers' recordings.
    assert result.duration_s > 1.0 + 1.5


def test_not_audio_is_refused(store: MediaStore, tmp_path: Path) -> None:
    png = tmp_path / "photo.mp3"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc=d=1:s=32x32", "-frames:v", "1", "-f", "image2",
                "-c:v", "png", str(png)])  # fmt: skip
    assert png.read_bytes()[:4] == b"\x89PNG"
    _refused(png, store, "not_audio")
    text = tmp_path / "notice.mp3"
    text.write_text("Thông báo họp tổ dân phố lúc 7h30.\n" * 200, "utf-8")
    _refused(text, store, "not_audio")
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(os.urandom(20_000))
    _refused(noise, store, "not_audio")


def test_empty_too_big_and_too_short(store: MediaStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    _refused(empty, store, "empty")
    big = _make(tmp_path / "big.wav", 2.0)
    message = _refused(big, store, "too_big", max_bytes=10_000).message
    assert "MiB" in message
    _refused(_make(tmp_path / "blip.wav", 0.2), store, "too_short")


def test_too_long_is_refused_without_decoding_it_all(store: MediaStore, tmp_path: Path) -> None:
    _refused(_make(tmp_path / "long.mp3", 4.0), store, "too_long", max_duration_s=2.0)


def test_truncated_files_are_refused(store: MediaStore, tmp_path: Path) -> None:
    for name in ("cut.mp3", "cut.wav"):
        whole = _make(tmp_path / f"whole-{name}", 6.0).read_bytes()
        cut = tmp_path / name
        cut.write_bytes(whole[: len(whole) // 2])
        _refused(cut, store, "truncated")
    whole = _make(tmp_path / "whole.m4a", 3.0, "-c:a", "aac").read_bytes()
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(whole[: len(whole) // 2])
    _refused(cut, store, "not_audio")


def test_wav_header_claiming_hours_is_refused(store: MediaStore, tmp_path: Path) -> None:
    data = bytearray(_make(tmp_path / "small.wav", 1.0).read_bytes())
    at = data.index(b"data")
    # Two gigabytes promised, one second delivered.
    data[at + 4 : at + 8] = struct.pack("<I", 0x7FFF_FFF0)
    data[4:8] = struct.pack("<I", 0x7FFF_FFF0 + at)
    bomb = tmp_path / "bomb.wav"
    bomb.write_bytes(bytes(data))
    _refused(bomb, store, "truncated")


def test_video_and_silence_are_refused(store: MediaStore, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc=d=1:s=32x32", "-f", "lavfi", "-i",
                _SOURCE.format(d=1), "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(video)])  # fmt: skip
    _refused(video, store, "video")
    silent = tmp_path / "silent.wav"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "2", str(silent)])
    _refused(silent, store, "silent")
    flac = _make(tmp_path / "a.flac", 1.0)
    assert "MP3" in _refused(flac, store, "unsupported_format").message
