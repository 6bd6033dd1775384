"""Mastering in memory: speech levelled, compressed, joined to the chimes and limited as PCM,
then encoded to MP3 once (LAME, in process) and checked on the decoded file."""

from __future__ import annotations

import functools
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import miniaudio
import numpy as np
from numpy.typing import NDArray

from audio.chime import chime_samples
from audio.errors import AudioError
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
# Encoding a programme in two parts at once: only where at least this long a silence is
# (samples under about -80 dBFS), in a programme at least this long.
_SPLIT_SILENCE_S = 0.2
_SPLIT_MIN_S = 8.0
_SILENT = 1e-4
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mastering")


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


@functools.cache
def _chime(rate: int, closing: bool) -> tuple[Samples, float]:
    samples = chime_samples(rate, closing=closing)
    return samples, integrated_lufs(samples, rate)


def _extended(samples: Samples, width: int) -> Samples:
    """`samples` with the ends repeated width // 2 times: each window centred on a sample."""
    if width % 2 != 1 or len(samples) == 0:
        raise ValueError("a centred window has an odd width, over at least one sample")
    return np.pad(samples, width // 2, mode="edge")


def _windows(samples: Samples, width: int, fill: float) -> NDArray[np.float32]:
    """`samples` extended at the ends, cut into rows of `width`, the last padded with `fill`."""
    padded = _extended(samples, width)
    rows = -(-len(padded) // width)
    out = np.full(rows * width, fill, dtype=samples.dtype)
    out[: len(padded)] = padded
    return out.reshape(rows, width)


def moving_min(samples: Samples, width: int) -> Samples:
    """The minimum of each sample's centred window of odd `width`, the ends extended
    (scipy.ndimage's `minimum_filter1d(mode="nearest")`) in linear time (van Herk, Gil and
    Werman): every window spans the end of one row and the start of the next."""
    rows = _windows(samples, width, np.inf)
    from_start = np.minimum.accumulate(rows, axis=1).ravel()
    to_end = np.minimum.accumulate(rows[:, ::-1], axis=1)[:, ::-1].ravel()
    n = len(samples)
    return np.minimum(to_end[:n], from_start[width - 1 : width - 1 + n])


def moving_mean(samples: Samples, width: int) -> Samples:
    """The mean of each sample's centred window of odd `width`, the ends extended
    (scipy.ndimage's `uniform_filter1d(mode="nearest")`), from a running sum in doubles."""
    sums = np.concatenate([[0.0], np.cumsum(_extended(samples, width), dtype=np.float64)])
    n = len(samples)
    means: Samples = ((sums[width : width + n] - sums[:n]) / width).astype(np.float32)
    return means


def _compress(speech: Samples, rate: int) -> Samples:
    # pedalboard takes a while to import: only a render pays for it.
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
    (over,) = np.nonzero(peaks > ceiling)
    if len(over) == 0:
        return None
    width = 2 * max(1, round(_LIMITER_RAMP_S * rate)) + 1
    # A sample's gain depends on the needed gain less than `width` either side, so the
    # filters run only over stretches around the peaks to limit, each with `width` of
    # unity gain on both sides: exactly what filtering the whole signal would give there.
    breaks = np.nonzero(np.diff(over) > 2 * width)[0]
    starts = np.maximum(np.concatenate([over[:1], over[breaks + 1]]) - width, 0)
    stops = np.minimum(np.concatenate([over[breaks], over[-1:]]) + width + 1, len(peaks))
    gain = np.ones(len(peaks), dtype=np.float32)
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        needed = np.minimum(1.0, ceiling / np.maximum(peaks[start:stop], 1e-12))
        needed = needed.astype(np.float32, copy=False)
        gain[start:stop] = moving_mean(moving_min(needed, width), width)
    return gain


def _finish(programme: Samples, peaks: Samples, gain_db: float, limit_db: float,
            rate: int) -> Samples:  # fmt: skip
    """The programme at `gain_db`, limited to `limit_db` dBTP."""
    gain = _gain(gain_db)
    limiting = _limiter_gain(peaks * gain, _gain(limit_db), rate)
    out = programme * gain if limiting is None else programme * (gain * limiting)
    return out.astype(np.float32, copy=False)


def _encoder(bitrate_kbps: int, rate: int) -> Any:
    import lameenc  # loaded with the first render, as the other mastering libraries

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(_LAME_QUALITY)
    return encoder


def _split_point(samples: Samples, rate: int) -> int | None:
    """Where the programme can be cut in two for encoding: the middle of the silence (a pause
    between sentences or around a chime) nearest the programme's middle, within its middle
    half; None when there is no such silence or the programme is short."""
    if len(samples) < _SPLIT_MIN_S * rate:
        return None
    quiet = np.abs(samples) < _SILENT
    # Runs of quiet samples: where `quiet` switches on and off.
    edges = np.diff(np.concatenate([[False], quiet, [False]]).astype(np.int8))
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    long = stops - starts >= round(_SPLIT_SILENCE_S * rate)
    middles = (starts[long] + stops[long]) // 2
    quarter = len(samples) // 4
    middles = middles[(middles > quarter) & (middles < len(samples) - quarter)]
    if len(middles) == 0:
        return None
    return int(middles[np.argmin(np.abs(middles - len(samples) // 2))])


def _encode_part(pcm: NDArray[np.int16], settings: MasteringSettings) -> bytes:
    encoder = _encoder(settings.bitrate_kbps, settings.sample_rate)
    try:
        return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())
    except RuntimeError as exc:
        raise AudioError(f"the announcement could not be encoded: {exc}") from exc


def _encode(samples: Samples, out_mp3: Path, settings: MasteringSettings) -> None:
    """Mono MP3 at the programme's own rate, encoded in this process by LAME (lameenc).

    LAME's quality 7 (no psychoacoustic noise shaping) halves the encode, the largest cost
    of a render; at these bitrates, for speech on horns, it is not heard. No tags are
    written: the same input gives the same bytes, hence the same hash.

    A programme with a pause near its middle is encoded as two streams at once, one per
    core (LAME leaves Python's lock free), cut in that silence and written one after the
    other: MP3 is a sequence of frames, and each stream's first frame needs nothing from
    before it, so players and decoders read the file as one. The cut adds the encoder's
    delay, about 50 ms, to a pause that is already 350 ms or more.
    """
    pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
    cut = _split_point(samples, settings.sample_rate)
    if cut is None:
        data = _encode_part(pcm, settings)
    else:
        second = _WORKERS.submit(_encode_part, pcm[cut:], settings)
        data = _encode_part(pcm[:cut], settings) + second.result()
    out_mp3.write_bytes(data)


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
    integrated_lufs(np.zeros(sample_rate, dtype=np.float32), sample_rate)
    _encoder(MasteringSettings().bitrate_kbps, sample_rate)
    _limiter_gain(np.ones(8, dtype=np.float32), 0.5, sample_rate)
    oversampled_peaks(np.zeros(8, dtype=np.float32))
    for closing in (False, True):
        _chime(sample_rate, closing)


def master_samples(
    speech: Samples, speech_rate: int, out_mp3: Path, settings: MasteringSettings | None = None
) -> Measurement:
    """Write the finished MP3 of mono `speech` at `out_mp3` and return its measurement.

    Loudness and true peak are set on the PCM in memory; the encode is decoded again
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
            peak_job = _WORKERS.submit(true_peak_dbtp, decoded)
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
