"""gTTS and Piper: clear refusals when they cannot run, and the WAV they produce when they can."""

from __future__ import annotations

import stat
import sys
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


def test_piper_without_program_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    engine = get_engine("piper", model_path=tmp_path / "vi.onnx")
    with pytest.raises(EngineUnavailable, match="'piper' program"):
        engine.synthesize("Xin chào.", tmp_path / "out.wav")


def _fake_piper(bin_dir: Path, tone_wav: Path) -> None:
    """A stand-in `piper` that copies a prepared WAV to --output_file."""
    script = bin_dir / "piper"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "sys.stdin.read()\n"
        "out = sys.argv[sys.argv.index('--output_file') + 1]\n"
        f"shutil.copyfile({str(tone_wav)!r}, out)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_piper_without_model_is_refused_then_runs_with_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tone = tmp_path / "tone.wav"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=d=0.5", "-ac", "1", str(tone)])
    _fake_piper(bin_dir, tone)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(EngineUnavailable, match="needs model_path"):
        get_engine("piper").synthesize("Xin chào.", tmp_path / "out.wav")
    model = tmp_path / "vi_VN-test.onnx"
    with pytest.raises(EngineUnavailable, match="does not exist"):
        get_engine("piper", model_path=model).synthesize("Xin chào.", tmp_path / "out.wav")
    model.write_bytes(b"onnx")
    with pytest.raises(EngineUnavailable, match=r"vi_VN-test\.onnx\.json"):
        get_engine("piper", model_path=model).synthesize("Xin chào.", tmp_path / "out.wav")
    (tmp_path / "vi_VN-test.onnx.json").write_text("{}")
    engine = get_engine("piper", model_path=model, rate_wpm=300)
    engine.synthesize("Xin chào.", tmp_path / "out.wav")
    assert (tmp_path / "out.wav").read_bytes() == tone.read_bytes()
    assert engine.voice == "vi_VN-test"
    assert engine.describe()["model_path"] == str(model)
