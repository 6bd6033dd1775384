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

from audio import MasteringSettings, MediaStore, Renderer, RenderSettings, measure, pcm_master
from audio.chime import chime_samples, make_chime
from audio.ffmpeg import ffmpeg_exe
from audio.loudness import (
    OVERSAMPLE,
    Samples,
    _interpolator,
    integrated_lufs,
    oversampled_peaks,
    true_peak_dbtp,
)
from audio.measure import probe
from audio.pcm_master import _limiter_gain, master_samples, moving_mean, moving_min
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


def test_limiting_only_around_the_peaks_is_limiting_everywhere(speech_dir: Path) -> None:
    from scipy import ndimage

    samples, rate = read_wav(speech_dir / "long.wav")
    peaks = oversampled_peaks(samples * 3)
    ceiling = float(peaks.max()) / 2
    gain = _limiter_gain(peaks, ceiling, rate)
    assert gain is not None
    # The reference: both moving filters over the whole signal.
    width = 2 * round(0.01 * rate) + 1
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12)).astype(np.float32)
    held = ndimage.minimum_filter1d(needed, width, mode="nearest")
    reference = ndimage.uniform_filter1d(held, width, mode="nearest")
    assert (reference == 1.0).any() and (reference < 1.0).any()
    assert np.allclose(gain, reference, rtol=0, atol=1e-6)
    assert (peaks * gain <= ceiling * (1 + 1e-6)).all()
    assert _limiter_gain(peaks, float(peaks.max()) * 1.01, rate) is None


def test_the_numpy_filters_are_scipys() -> None:
    from scipy import ndimage

    rng = np.random.default_rng(7)
    for n, width in ((1, 1), (1, 9), (5, 3), (100, 1), (100, 7), (1000, 883), (50_000, 441)):
        x = rng.uniform(0.0, 1.0, n).astype(np.float32)
        assert np.array_equal(
            moving_min(x, width), ndimage.minimum_filter1d(x, width, mode="nearest")
        )
        reference = ndimage.uniform_filter1d(x, width, mode="nearest")
        assert np.allclose(moving_mean(x, width), reference, rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        moving_min(np.ones(4, np.float32), 2)
    taps = OVERSAMPLE * 12
    fir = signal.firwin(taps, 1.0 / OVERSAMPLE, window=("kaiser", 8.0)) * OVERSAMPLE
    assert np.allclose(_interpolator(), fir, rtol=0, atol=1e-7)


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
    # leaves the slow imports alone; preparing loads them, as the controller does at start,
    # and never scipy (some 65 MB of memory).
    script = (
        "import sys, audio\n"
        "slow = ('scipy', 'pyebur128', 'pedalboard', 'lameenc')\n"
        "print(sorted(m for m in slow if m in sys.modules))\n"
        "audio.prepare_mastering()\n"
        "print(sorted(m for m in slow if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = done.stdout.splitlines()
    assert before == "[]"
    assert after == "['lameenc', 'pedalboard', 'pyebur128']"


def test_a_programme_encoded_in_two_parts_plays_as_one(speech_dir: Path, tmp_path: Path) -> None:
    # Two sentences with a pause between them: the encode is cut in that pause.
    sentence, rate = read_wav(speech_dir / "numbers.wav")
    speech = np.concatenate([sentence, np.zeros(rate // 2, np.float32), sentence, sentence])
    settings = MasteringSettings()
    programme = pcm_master._programme(speech, settings)
    cut = pcm_master._split_point(programme, settings.sample_rate)
    assert cut is not None and len(programme) / 4 < cut < 3 * len(programme) / 4
    assert np.abs(programme[cut - 2000 : cut + 2000]).max() < pcm_master._SILENT

    out = tmp_path / "two.mp3"
    reported = master_samples(speech, rate, out, settings)
    # ffmpeg reads the file as one stream without a complaint, and measures what was reported.
    done = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    measured = measure(out)
    assert abs(reported.integrated_lufs - measured.integrated_lufs) <= LOUDNESS_TOLERANCE_LU
    assert abs(measured.integrated_lufs - settings.target_lufs) <= 1.0
    assert measured.true_peak_dbtp <= settings.true_peak_dbtp
    # The cut adds only the second encoder's delay and the first's last frame's padding.
    whole = tmp_path / "one.mp3"
    data = pcm_master._encode_part(
        np.clip(np.rint(programme * 32767.0), -32768, 32767).astype("<i2"), settings
    )
    whole.write_bytes(data)
    assert 0 <= measured.duration_s - measure(whole).duration_s < 0.1
    # The same programme gives the same bytes, whichever part finishes first.
    again = tmp_path / "again.mp3"
    master_samples(speech, rate, again, settings)
    assert again.read_bytes() == out.read_bytes()


def test_a_programme_without_a_pause_in_its_middle_is_encoded_whole() -> None:
    rate = 22050
    tone = (0.3 * np.sin(np.arange(20 * rate) * 2 * np.pi * 440 / rate)).astype(np.float32)
    assert pcm_master._split_point(tone, rate) is None
    # A pause near an end is not a middle.
    edged = np.concatenate([np.zeros(rate, np.float32), tone])
    assert pcm_master._split_point(edged, rate) is None
    assert pcm_master._split_point(np.zeros(rate * 4, np.float32), rate) is None
