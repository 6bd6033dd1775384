"""Speech engines: the espeak-ng vi voice through the bundled library, and the registry."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from audio import AudioError, get_engine
from audio.engines import SpeechEngine, engine_names


def _duration(path: Path) -> tuple[float, int, int]:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate(), wav.getnchannels(), wav.getsampwidth()


def test_espeak_writes_mono_wav_of_plausible_length(tmp_path: Path) -> None:
    engine = get_engine("espeak")
    assert isinstance(engine, SpeechEngine)
    assert (engine.name, engine.voice) == ("espeak", "vi")
    out = tmp_path / "speech.wav"
    # 16 syllables at 150 words per minute: a few seconds, not milliseconds or minutes.
    engine.synthesize("Ủy ban nhân dân xã thông báo lịch tiêm phòng cho đàn gia súc.", out)
    seconds, channels, width = _duration(out)
    assert channels == 1 and width == 2
    assert 2.0 < seconds < 10.0
    assert not list(tmp_path.glob(".tmp-*")), "temporary file left behind"


def test_slower_rate_gives_longer_speech(tmp_path: Path) -> None:
    text = "Đề nghị bà con chủ động phòng chống dịch bệnh cho gia súc, gia cầm."
    get_engine("espeak", rate_wpm=120).synthesize(text, tmp_path / "slow.wav")
    get_engine("espeak", rate_wpm=220).synthesize(text, tmp_path / "fast.wav")
    assert _duration(tmp_path / "slow.wav")[0] > _duration(tmp_path / "fast.wav")[0] * 1.3


def test_unknown_engine_lists_known_names() -> None:
    with pytest.raises(ValueError, match="espeak"):
        get_engine("gtts-nope")
    assert "espeak" in engine_names()


def test_unknown_voice_and_empty_text_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioError):
        get_engine("espeak", voice="no-such-voice").synthesize("xin chào", tmp_path / "x.wav")
    with pytest.raises(AudioError):
        get_engine("espeak").synthesize("   ", tmp_path / "y.wav")
