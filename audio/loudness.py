"""Loudness (ITU-R BS.1770-4, EBU R128) and true peak of mono PCM held in memory."""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["Samples", "integrated_lufs", "oversampled_peaks", "true_peak_dbtp"]

Samples = NDArray[np.float32]
"""Mono PCM, full scale ±1.0."""

# BS.1770-4 Annex 2 measures true peak at four times the rate (at least 192 kHz is not
# required below 48 kHz); a 48-tap interpolation filter, 12 taps per phase, as it suggests.
OVERSAMPLE = 4
_TAPS_PER_PHASE = 12
_BLOCK = 64
# Above this share of blocks to interpolate, the whole signal is interpolated at once.
_SPARSE_SHARE = 0.6
_PIECE = 1 << 18


def integrated_lufs(samples: Samples, rate: int) -> float:
    """Gated integrated loudness in LUFS; -inf when silent or shorter than one 400 ms block."""
    if len(samples) <= int(0.4 * rate):
        return -math.inf
    # libebur128, the EBU's reference C implementation (its K-weighting is derived for any
    # rate, espeak's 22050 Hz included), through its binding: a few ms for 30 s of speech.
    import pyebur128

    state = pyebur128.R128State(1, rate, pyebur128.MeasurementMode.MODE_I)
    state.add_frames(np.ascontiguousarray(samples, dtype=np.float32), len(samples))
    level = float(pyebur128.get_loudness_global(state))
    return level if math.isfinite(level) and level > -70 else -math.inf


@functools.cache
def _interpolator() -> NDArray[np.float32]:
    """A Kaiser-windowed (beta 8) low-pass at the original Nyquist rate, its taps summing to
    OVERSAMPLE to keep the level: the window method's textbook filter (what scipy's
    `firwin(taps, 1 / OVERSAMPLE, window=("kaiser", 8.0))` designs, times OVERSAMPLE). In
    numpy: scipy.signal alone would add some 65 MB to the controller's memory."""
    taps = OVERSAMPLE * _TAPS_PER_PHASE
    cutoff = 1.0 / OVERSAMPLE  # of the Nyquist frequency
    m = np.arange(taps) - (taps - 1) / 2
    fir = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, 8.0)
    return np.asarray(fir / fir.sum() * OVERSAMPLE, dtype=np.float32)


@functools.cache
def _reach_and_bound() -> tuple[int, float]:
    """How many samples either side an interpolated point depends on, and the most any
    point can exceed the largest of them: the largest sum of absolute taps of one phase."""
    fir = _interpolator()
    reach = (len(fir) - 1) // 2 // OVERSAMPLE + 1
    phases = [np.abs(fir[phase::OVERSAMPLE]).sum() for phase in range(OVERSAMPLE)]
    return reach, float(max(phases))


def oversampled_peaks(samples: Samples, floor: float = 0.0) -> Samples:
    """For each sample n, the largest magnitude of the signal between samples n and n + 1,
    read at OVERSAMPLE points (the sample itself included).

    Points that cannot reach `floor` are not interpolated: their entry is the sample's own
    magnitude. A point is at most the interpolator's greatest gain times the largest sample
    within its reach, so the skipped entries are exact as far as `floor` is concerned.
    """
    samples = samples.astype(np.float32, copy=False)
    magnitude = np.abs(samples)
    count = len(samples)
    if count == 0:
        return magnitude
    reach, bound = _reach_and_bound()
    # Whole blocks are kept or skipped: a block is skipped when it and its neighbours (the
    # interpolator reaches less than a block) are too quiet to reach `floor`.
    blocks = -(-count // _BLOCK)
    loudest = np.zeros(blocks * _BLOCK, np.float32)
    loudest[:count] = magnitude
    loudest = loudest.reshape(blocks, _BLOCK).max(axis=1)
    nearby = loudest.copy()
    nearby[1:] = np.maximum(nearby[1:], loudest[:-1])
    nearby[:-1] = np.maximum(nearby[:-1], loudest[1:])
    (kept,) = np.nonzero(nearby * bound >= floor)
    if len(kept) == 0:
        return magnitude
    peaks = magnitude.copy()
    if len(kept) > _SPARSE_SHARE * blocks:
        # Most of the signal counts: long passes over all of it are cheaper than many short
        # ones (in pieces, so that a ten-minute text does not need four times its memory).
        for start in range(0, count, _PIECE):
            _interpolate_into(peaks, samples, start, min(count, start + _PIECE), reach)
        return peaks
    # Consecutive kept blocks are interpolated as one stretch.
    breaks = np.nonzero(np.diff(kept) > 1)[0]
    firsts = np.concatenate([kept[:1], kept[breaks + 1]])
    lasts = np.concatenate([kept[breaks], kept[-1:]])
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        _interpolate_into(peaks, samples, first * _BLOCK, min(count, (last + 1) * _BLOCK), reach)
    return peaks


def _interpolate_into(peaks: Samples, samples: Samples, start: int, stop: int, reach: int) -> None:
    """Raise peaks[start:stop] to the interpolated points between those samples and the next."""
    fir = _interpolator()
    delay = (len(fir) - 1) // 2
    # The points after sample n depend on samples n - reach .. n + reach only: the stretch
    # with that margin (zeros beyond the signal's ends) gives exactly the whole signal's values.
    low, high = start - reach, stop + reach
    stretch = samples[max(low, 0) : min(high, len(samples))]
    if low < 0 or high > len(samples):
        stretch = np.concatenate([np.zeros(max(0, -low), np.float32), stretch,
                                  np.zeros(max(0, high - len(samples)), np.float32)])  # fmt: skip
    # Upsampled by OVERSAMPLE and filtered, point `first + phase + OVERSAMPLE * i` is, by the
    # polyphase identity, point `q + i` of the stretch convolved with one phase of the taps
    # (`first + phase` = OVERSAMPLE * q + r, phase r). Each phase's points are summed tap by
    # tap over shifted slices: twice as fast as scipy's upfirdn, which computes every point.
    first = delay + OVERSAMPLE * reach
    span = stop - start
    target = peaks[start:stop]
    taps = len(fir) // OVERSAMPLE
    edge = np.zeros(taps - 1, dtype=np.float32)
    padded = np.concatenate([edge, stretch, edge])
    points = np.empty(span, dtype=np.float32)
    term = np.empty(span, dtype=np.float32)
    for phase in range(OVERSAMPLE):
        q, r = divmod(first + phase, OVERSAMPLE)
        points.fill(0.0)
        for j, tap in enumerate(fir[r::OVERSAMPLE].tolist()):
            at = q - j + taps - 1
            np.multiply(padded[at : at + span], tap, out=term)
            points += term
        np.abs(points, out=points)
        np.maximum(target, points, out=target)


def true_peak_dbtp(samples: Samples) -> float:
    """True peak in dBTP (4x oversampled); -inf for silence."""
    if len(samples) == 0:
        return -math.inf
    sample_peak = float(np.abs(samples).max())
    if sample_peak <= 0:
        return -math.inf
    peak = float(oversampled_peaks(samples, floor=sample_peak).max())
    return 20 * math.log10(peak)
