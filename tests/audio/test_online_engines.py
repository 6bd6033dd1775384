"""gTTS and Piper: clear refusals when they cannot run, and the WAV they produce when they can."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio import EngineUnavailable, engine_names, get_engine
from audio.engines.gtts import GttsEngine
from audio.ffmpeg import run_ffmpeg


def _tone_mp3(path: Path, seconds: float = 1.0) -> bytes:
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-ac", "1", str(path)])
    return path.read_bytes()


def test_engines_are_registered() -> None:
    assert {"espeak", "gtts", "piper"} <= set(engine_names())


def test_gtts_without_network_is_unavailable_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    def offline(*args: object, **kwargs: object) -> None:
        raise requests.ConnectionError("network is unreachable")

    # The same failure as on a controller without internet, on any machine.
    monkeypatch.setattr(requests.Session, "send", offline)
    engine = get_engine("gtts", voice="vi", timeout_s=2)
    with pytest.raises(EngineUnavailable, match="gTTS"):
        engine.synthesize("Xin chào bà con.", tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == []


def test_gtts_mp3_becomes_mono_wav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mp3 = _tone_mp3(tmp_path / "tone.mp3")

    def stream(self: object) -> Iterator[bytes]:
        yield mp3[: len(mp3) // 2]
        yield mp3[len(mp3) // 2 :]

    monkeypatch.setattr("gtts.gTTS.stream", stream)
    out = tmp_path / "speech" / "out.wav"
    GttsEngine().synthesize("Xin chào.", out)
    with wave.open(str(out)) as handle:
        assert handle.getnchannels() == 1
        assert 0.9 < handle.getnframes() / handle.getframerate() < 1.2
    assert [p.name for p in out.parent.iterdir()] == ["out.wav"]


def test_gtts_empty_answer_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gtts.gTTS.stream", lambda self: iter([b""]))
    with pytest.raises(EngineUnavailable, match="no audio"):
        GttsEngine().synthesize("Xin chào.", tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == []


def test_piper_program_missing_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    model = tmp_path / "vi.onnx"
    model.write_bytes(b"onnx")
    (tmp_path / "vi.onnx.json").write_text("{}")
    engine = get_engine("piper", model_path=model, executable="no-such-piper")
    with pytest.raises(EngineUnavailable, match="'no-such-piper' program"):
        engine.synthesize("Xin chào.", tmp_path / "out.wav")


def test_piper_without_model_files_is_refused(tmp_path: Path) -> None:
    """The real voice is exercised in tests/audio/test_piper.py."""
    with pytest.raises(EngineUnavailable, match="needs model_path"):
        get_engine("piper").synthesize("Xin chào.", tmp_path / "out.wav")
    model = tmp_path / "vi_VN-test.onnx"
    with pytest.raises(EngineUnavailable, match="does not exist"):
        get_engine("piper", model_path=model).synthesize("Xin chào.", tmp_path / "out.wav")
    model.write_bytes(b"onnx")
    with pytest.raises(EngineUnavailable, match=r"vi_VN-test\.onnx\.json"):
        get_engine("piper", model_path=model).synthesize("Xin chào.", tmp_path / "out.wav")
    engine = get_engine("piper", model_path=model, rate_wpm=300)
    assert engine.voice == "vi_VN-test"
    assert engine.describe()["model_path"] == str(model)
