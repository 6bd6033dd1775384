"""Mastering in memory: speech levelled, compressed, joined to the chimes and limited as PCM,
then encoded to MP3 by one ffmpeg run and checked on the decoded file."""

from __future__ import annotations

import functools
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import miniaudio
import numpy as np

from audio.chime import chime_samples
from audio.errors import AudioError
from audio.ffmpeg import run_ffmpeg
from audio.loudness import Samples, integrated_lufs, oversampled_peaks, true_peak_dbtp
from audio.mastering import MasteringSettings
from audio.measure import Measurement
from audio.speech import resample

__all__ = ["master_samples", "prepare_mastering"]

# The same programme as audio.mastering: silences around the chimes and after the speech.
_CHIME_GAP_S = 0.3
_TAIL_S = 0.4
# The MP3 encoder adds a little to the peaks: the PCM is limited this far below the ceiling.
_FIRST_HEADROOM_DB = 0.6
_TOLERANCE_LU = 0.3
# MP3 at these rates measures about this much quieter than the PCM it was made from (its
# low-pass takes high frequencies that K-weighting favours): the PCM is aimed above target.
_ENCODER_LOSS_LU = 0.4
_ATTEMPTS = 3
# Gentle compression of the speech alone (as audio.mastering's acompressor: threshold
# 0.125, ratio 3, attack 3 ms, release 80 ms) narrows synthetic speech's peak-to-loudness
# gap, so that the limiter only catches stray peaks.
_COMPRESSOR_THRESHOLD_DB = 20 * math.log10(0.125)
_COMPRESSOR_RATIO = 3.0
_COMPRESSOR_ATTACK_MS = 3.0
_COMPRESSOR_RELEASE_MS = 80.0
# The limiter's gain falls over this long before a peak and recovers over as long after it.
_LIMITER_RAMP_S = 0.01
_FALLBACK_SPEECH_LUFS = -20.0
_LAME_QUALITY = 7
_PEAK_MARGIN_DB = 1.0
_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mastering-check")


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


@functools.cache
def _chime(rate: int, closing: bool) -> tuple[Samples, float]:
    samples = chime_samples(rate, closing=closing)
    return samples, integrated_lufs(samples, rate)


def _compress(speech: Samples, rate: int) -> Samples:
    # pedalboard and scipy take a second or more to import: only a render pays for them.
    import pedalboard

    compressor = pedalboard.Compressor(
        threshold_db=_COMPRESSOR_THRESHOLD_DB,
        ratio=_COMPRESSOR_RATIO,
        attack_ms=_COMPRESSOR_ATTACK_MS,
        release_ms=_COMPRESSOR_RELEASE_MS,
    )
    return np.asarray(compressor(speech, rate), dtype=np.float32)


def _programme(speech: Samples, settings: MasteringSettings) -> Samples:
    """Lead silence, opening chime, speech (twice with a pause when repeated), closing chime."""
    rate = settings.sample_rate

    def silence(seconds: float) -> Samples:
        return np.zeros(round(seconds * rate), dtype=np.float32)

    chime_target = settings.target_lufs + settings.chime_relative_lu
    parts = [silence(settings.lead_silence_s)]
    if settings.opening_chime:
        chime, level = _chime(rate, False)
        parts += [chime * _gain(chime_target - level), silence(_CHIME_GAP_S)]
    parts.append(speech)
    if settings.repeat == 2:
        parts += [silence(settings.repeat_pause_s), speech]
    if settings.closing_chime:
        chime, level = _chime(rate, True)
        parts += [silence(_CHIME_GAP_S), chime * _gain(chime_target - level)]
    parts.append(silence(_TAIL_S))
    return np.concatenate(parts).astype(np.float32, copy=False)


def _limiter_gain(peaks: Samples, ceiling: float, rate: int) -> Samples | None:
    """Per-sample gain that keeps every oversampled peak under `ceiling`; None if not needed.

    A look-ahead limiter from two moving filters: the minimum of the needed gain over
    ±ramp, then its mean over ±ramp. Every value in that mean is at most the gain the
    centre sample needs, so the result never lets a peak through, and it changes smoothly.
    """
    from scipy import ndimage

    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12)).astype(np.float32)
    if float(needed.min()) >= 1.0:
        return None
    width = 2 * max(1, round(_LIMITER_RAMP_S * rate)) + 1
    held = ndimage.minimum_filter1d(needed, width, mode="nearest")
    return np.asarray(ndimage.uniform_filter1d(held, width, mode="nearest"), dtype=np.float32)


def _finish(programme: Samples, peaks: Samples, gain_db: float, limit_db: float,
            rate: int) -> Samples:  # fmt: skip
    """The programme at `gain_db`, limited to `limit_db` dBTP."""
    gain = _gain(gain_db)
    limiting = _limiter_gain(peaks * gain, _gain(limit_db), rate)
    out = programme * gain if limiting is None else programme * (gain * limiting)
    return out.astype(np.float32, copy=False)


def _encode(samples: Samples, out_mp3: Path, settings: MasteringSettings) -> None:
    args = [
        "-y", "-f", "f32le", "-ar", str(settings.sample_rate), "-ac", "1", "-i", "pipe:0",
        "-map_metadata", "-1", "-c:a", "libmp3lame", "-b:a", f"{settings.bitrate_kbps}k",
        # LAME's quality 7 (no psychoacoustic noise shaping) halves the encode, the largest
        # cost of a render; at these bitrates, for speech on horns, it is not heard.
        "-compression_level", str(_LAME_QUALITY),
        # No version strings or tags: the same input gives the same bytes, hence the same hash.
        "-fflags", "+bitexact", "-flags:a", "+bitexact", "-id3v2_version", "0",
        "-write_id3v1", "0", "-f", "mp3", str(out_mp3),
    ]  # fmt: skip
    run_ffmpeg(args, input=samples.astype("<f4", copy=False).tobytes())


def _decoded(mp3: Path, rate: int) -> Samples:
    try:
        decoded = miniaudio.decode_file(
            str(mp3), output_format=miniaudio.SampleFormat.FLOAT32, nchannels=1, sample_rate=rate
        )
    except miniaudio.DecodeError as exc:
        raise AudioError(f"the encoded announcement could not be decoded: {exc}") from exc
    return np.frombuffer(decoded.samples, dtype=np.float32)


def prepare_mastering(sample_rate: int = 22050) -> None:
    """Import the libraries a render uses and make the chimes now (about a second), so that
    the first render, perhaps an emergency alert's, does not wait for them."""
    _compress(np.zeros(sample_rate, dtype=np.float32), sample_rate)
    _limiter_gain(np.ones(8, dtype=np.float32), 0.5, sample_rate)
    oversampled_peaks(np.zeros(8, dtype=np.float32))
    for closing in (False, True):
        _chime(sample_rate, closing)


def master_samples(
    speech: Samples, speech_rate: int, out_mp3: Path, settings: MasteringSettings | None = None
) -> Measurement:
    """Write the finished MP3 of mono `speech` at `out_mp3` and return its measurement.

    Loudness and true peak are set on the PCM in memory; the one encode is decoded again
    and measured (BS.1770-4), and encoded again only if the encoder pushed it out of bounds.
    """
    settings = settings or MasteringSettings()
    out_mp3 = Path(out_mp3)
    if len(speech) == 0:
        raise AudioError("there is no speech to master")
    rate = settings.sample_rate
    speech = resample(speech.astype(np.float32, copy=False), speech_rate, rate)
    level = integrated_lufs(speech, rate)
    if not level > -70:
        level = _FALLBACK_SPEECH_LUFS
    speech = _compress(speech * _gain(settings.target_lufs - level), rate)
    programme = _programme(speech, settings)
    level = integrated_lufs(programme, rate)
    # Limiting takes a little loudness, about as much as the encoder's margin covers.
    aim = settings.target_lufs + _ENCODER_LOSS_LU
    gain_db = aim - level if math.isfinite(level) else 0.0
    limit_db = settings.true_peak_dbtp - _FIRST_HEADROOM_DB
    # Only peaks that can come near the limit at this gain are interpolated (see
    # oversampled_peaks); an attempt with more gain than the margin measures them again.
    floor_db = limit_db - gain_db - _PEAK_MARGIN_DB
    peaks = oversampled_peaks(programme, _gain(floor_db))

    out_mp3.parent.mkdir(parents=True, exist_ok=True)
    fd, candidate_name = tempfile.mkstemp(dir=out_mp3.parent, prefix=".master-", suffix=".mp3")
    os.close(fd)
    candidate = Path(candidate_name)
    try:
        for _ in range(_ATTEMPTS):
            if limit_db - gain_db < floor_db:
                floor_db = limit_db - gain_db - _PEAK_MARGIN_DB
                peaks = oversampled_peaks(programme, _gain(floor_db))
            out = _finish(programme, peaks, gain_db, limit_db, rate)
            _encode(out, candidate, settings)
            decoded = _decoded(candidate, rate)
            # Both measurements' filters leave Python's lock free: on two cores they overlap.
            peak_job = _CHECKS.submit(true_peak_dbtp, decoded)
            result = Measurement(
                duration_s=len(decoded) / rate,
                integrated_lufs=integrated_lufs(decoded, rate),
                true_peak_dbtp=peak_job.result(),
            )
            loud_error = settings.target_lufs - result.integrated_lufs
            peak_excess = result.true_peak_dbtp - settings.true_peak_dbtp
            if abs(loud_error) <= _TOLERANCE_LU and peak_excess <= 0:
                break
            if math.isfinite(loud_error):
                gain_db += loud_error
            if peak_excess > 0:
                limit_db -= peak_excess + 0.2
        os.replace(candidate, out_mp3)
        return result
    finally:
        candidate.unlink(missing_ok=True)
