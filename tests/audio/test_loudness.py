"""In-process loudness and true peak against ffmpeg's ebur128 on the same files, and the
in-memory mastering measured again by ffmpeg."""

from __future__ import annotations

import math
import subprocess
import sys
import wave
from pathlib import Path

import miniaudio
import numpy as np
import pytest
from scipy import signal

from audio import MasteringSettings, MediaStore, Renderer, RenderSettings, measure
from audio.chime import chime_samples, make_chime
from audio.loudness import (
    OVERSAMPLE,
    Samples,
    _interpolator,
    integrated_lufs,
    oversampled_peaks,
    true_peak_dbtp,
)
from audio.measure import probe
from audio.pcm_master import master_samples
from audio.speech import read_wav

# ffmpeg prints both to 0.1; BS.1770 meters differ by a few hundredths (filters, resampling).
LOUDNESS_TOLERANCE_LU = 0.2
PEAK_TOLERANCE_DB = 0.3


def _write_wav(path: Path, samples: Samples, rate: int) -> Path:
    pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return path


def _decoded_mp3(path: Path) -> tuple[Samples, int]:
    rate = probe(path).sample_rate
    decoded = miniaudio.decode_file(
        str(path), output_format=miniaudio.SampleFormat.FLOAT32, nchannels=1, sample_rate=rate
    )
    return np.frombuffer(decoded.samples, dtype=np.float32), rate


def _assert_agrees_with_ffmpeg(path: Path, samples: Samples, rate: int) -> None:
    reference = measure(path)
    assert abs(integrated_lufs(samples, rate) - reference.integrated_lufs) <= LOUDNESS_TOLERANCE_LU
    assert abs(true_peak_dbtp(samples) - reference.true_peak_dbtp) <= PEAK_TOLERANCE_DB
    assert abs(len(samples) / rate - reference.duration_s) < 0.01


@pytest.mark.parametrize("name", ["short", "numbers", "long"])
def test_espeak_speech_measures_as_ffmpeg_does(speech_dir: Path, name: str) -> None:
    path = speech_dir / f"{name}.wav"
    samples, rate = read_wav(path)
    _assert_agrees_with_ffmpeg(path, samples, rate)


def test_rendered_mp3_measures_as_ffmpeg_does(tmp_path: Path) -> None:
    renderer = Renderer(MediaStore(tmp_path / "media"), RenderSettings())
    text = "UBND xã thông báo: từ 7h30 ngày 15/3, trạm y tế xã tổ chức tiêm phòng. Xin cảm ơn."
    result = renderer.render_text(text)
    path = renderer.store.path_for(result.sha256)
    assert path is not None
    reference = measure(path)
    # What the renderer records is what ffmpeg measures on the stored file.
    assert abs(result.integrated_lufs - reference.integrated_lufs) <= LOUDNESS_TOLERANCE_LU
    assert abs(result.true_peak_dbtp - reference.true_peak_dbtp) <= PEAK_TOLERANCE_DB
    samples, rate = _decoded_mp3(path)
    _assert_agrees_with_ffmpeg(path, samples, rate)


def test_inter_sample_peaks_are_found(tmp_path: Path) -> None:
    # A tone at a quarter of the rate, sampled 45 degrees off its crests: every sample is
    # 3 dB below the true peak (-6.02 dB), which only oversampling sees. (ffmpeg's meter,
    # which resamples to 48 kHz first, reads this tone 0.6 dB high: it is no reference here.)
    rate = 22050
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * (rate / 4) * t + np.pi / 4)).astype(np.float32)
    assert 20 * math.log10(float(np.abs(tone).max())) == pytest.approx(-9.03, abs=0.01)
    assert true_peak_dbtp(tone) == pytest.approx(20 * math.log10(0.5), abs=0.2)


def test_chime_measures_as_ffmpeg_does(tmp_path: Path) -> None:
    path = make_chime(tmp_path / "chime.wav", 22050)
    samples, rate = read_wav(path)
    _assert_agrees_with_ffmpeg(path, samples, rate)


def test_skipping_quiet_blocks_changes_no_peak_that_counts(speech_dir: Path) -> None:
    samples, _ = read_wav(speech_dir / "long.wav")
    everywhere = oversampled_peaks(samples)
    # The reference: the whole signal interpolated in one pass, its delay removed.
    fir = _interpolator()
    delay = (len(fir) - 1) // 2
    up = np.abs(signal.upfirdn(fir, samples, up=OVERSAMPLE))[delay : delay + 4 * len(samples)]
    reference = np.maximum(np.abs(samples), up.reshape(len(samples), OVERSAMPLE).max(axis=1))
    assert np.allclose(everywhere, reference, rtol=0, atol=1e-6)
    floor = float(everywhere.max()) / 2
    loud_only = oversampled_peaks(samples, floor)
    counted = everywhere >= floor
    assert counted.any() and np.array_equal(loud_only[counted], everywhere[counted])
    assert (loud_only[~counted] < floor).all()


def test_chime_in_memory_is_the_chime_ffmpeg_makes(tmp_path: Path) -> None:
    for closing in (False, True):
        made, rate = read_wav(make_chime(tmp_path / f"{closing}.wav", 22050, closing=closing))
        computed = chime_samples(rate, closing=closing)
        assert len(made) == len(computed)
        assert float(np.abs(made - computed).max()) < 2 / 32768


def test_too_short_or_silent_has_no_loudness() -> None:
    rate = 22050
    assert integrated_lufs(np.zeros(rate * 2, dtype=np.float32), rate) == -math.inf
    assert integrated_lufs(np.full(rate // 4, 0.5, dtype=np.float32), rate) == -math.inf
    assert true_peak_dbtp(np.zeros(100, dtype=np.float32)) == -math.inf


@pytest.mark.parametrize(
    "settings",
    [
        MasteringSettings(),
        MasteringSettings(target_lufs=-20.0, true_peak_dbtp=-3.0, repeat=2, closing_chime=True),
        MasteringSettings(opening_chime=False, bitrate_kbps=64, sample_rate=44100),
    ],
)
def test_mastering_in_memory_meets_the_settings(
    speech_dir: Path, tmp_path: Path, settings: MasteringSettings
) -> None:
    speech, rate = read_wav(speech_dir / "numbers.wav")
    out = tmp_path / "out.mp3"
    reported = master_samples(speech, rate, out, settings)
    measured = measure(out)
    assert abs(measured.integrated_lufs - settings.target_lufs) <= 1.0
    assert measured.true_peak_dbtp <= settings.true_peak_dbtp
    assert abs(reported.integrated_lufs - measured.integrated_lufs) <= LOUDNESS_TOLERANCE_LU
    assert abs(reported.duration_s - measured.duration_s) < 0.01
    info = probe(out)
    assert (info.codec, info.channels) == ("mp3", "mono")
    assert (info.sample_rate, info.bitrate_kbps) == (settings.sample_rate, settings.bitrate_kbps)
    speech_s = len(speech) / rate
    chimes = settings.opening_chime + settings.closing_chime
    expected = settings.repeat * speech_s + (settings.repeat - 1) * settings.repeat_pause_s
    assert expected + chimes * 1.9 < measured.duration_s < expected + chimes * 2.2 + 1.0


def test_mastering_in_memory_refuses_no_speech(tmp_path: Path) -> None:
    from audio import AudioError

    with pytest.raises(AudioError, match="no speech"):
        master_samples(np.zeros(0, dtype=np.float32), 22050, tmp_path / "x.mp3")


def test_libraries_load_with_the_first_render_or_when_prepared() -> None:
    # A fresh interpreter: `import audio` (every controller start, every `radio` command)
    # leaves the slow imports alone; preparing loads them, as the controller does at start.
    script = (
        "import sys, audio\n"
        "slow = ('scipy', 'pyloudnorm', 'pedalboard')\n"
        "print(sorted(m for m in slow if m in sys.modules))\n"
        "audio.prepare_mastering()\n"
        "print(sorted(m for m in slow if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = done.stdout.splitlines()
    assert before == "[]"
    assert after == "['pedalboard', 'pyloudnorm', 'scipy']"
