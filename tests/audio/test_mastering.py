"""Mastering: loudness on target, true peak under the ceiling, chime present, mono MP3."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio import MasteringSettings, master, measure
from audio.chime import make_chime
from audio.measure import probe


@pytest.mark.parametrize("name", ["short", "numbers", "long"])
def test_loudness_and_true_peak_measured_independently(
    speech_dir: Path, tmp_path: Path, name: str
) -> None:
    settings = MasteringSettings()
    out = tmp_path / f"{name}.mp3"
    reported = master(speech_dir / f"{name}.wav", out, settings)
    measured = measure(out)
    assert abs(measured.integrated_lufs - settings.target_lufs) <= 1.0
    assert measured.true_peak_dbtp <= settings.true_peak_dbtp
    assert reported == measured
    # The opening chime and silences come before the speech.
    assert measured.duration_s > measure(speech_dir / f"{name}.wav").duration_s + 1.5


def test_mp3_is_mono_at_configured_rate_and_bitrate(speech_dir: Path, tmp_path: Path) -> None:
    for settings in (MasteringSettings(), MasteringSettings(bitrate_kbps=64, sample_rate=44100)):
        out = tmp_path / f"{settings.bitrate_kbps}.mp3"
        master(speech_dir / "short.wav", out, settings)
        info = probe(out)
        assert info.codec == "mp3"
        assert info.channels == "mono"
        assert info.sample_rate == settings.sample_rate
        assert info.bitrate_kbps == settings.bitrate_kbps


def test_other_targets_repeat_and_closing_chime(speech_dir: Path, tmp_path: Path) -> None:
    speech = speech_dir / "numbers.wav"
    plain = master(speech, tmp_path / "plain.mp3", MasteringSettings(opening_chime=False))
    settings = MasteringSettings(
        target_lufs=-20.0, true_peak_dbtp=-3.0, repeat=2, repeat_pause_s=2.0, closing_chime=True
    )
    repeated = master(speech, tmp_path / "repeated.mp3", settings)
    assert abs(repeated.integrated_lufs + 20.0) <= 1.0
    assert repeated.true_peak_dbtp <= -3.0
    # Twice the speech, a 2 s pause and two chimes.
    assert repeated.duration_s > 2 * measure(speech).duration_s + 2.0 + 3.0
    assert plain.duration_s < measure(speech).duration_s + 1.5


def test_chime_is_audible_and_short(tmp_path: Path) -> None:
    chime = measure(make_chime(tmp_path / "chime.wav", 22050))
    assert 1.0 < chime.duration_s < 3.0
    assert -40.0 < chime.integrated_lufs < -10.0
    closing = make_chime(tmp_path / "closing.wav", 22050, closing=True)
    assert closing.read_bytes() != (tmp_path / "chime.wav").read_bytes()


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        MasteringSettings(repeat=3)
    with pytest.raises(ValueError):
        MasteringSettings(bitrate_kbps=47)
