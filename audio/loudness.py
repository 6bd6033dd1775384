"""Loudness (ITU-R BS.1770-4, EBU R128) and true peak of mono PCM held in memory."""

from __future__ import annotations

import functools
import math

import numpy as np
import pyloudnorm
from numpy.typing import NDArray
from scipy import signal

__all__ = ["Samples", "integrated_lufs", "oversampled_peaks", "true_peak_dbtp"]

Samples = NDArray[np.float32]
"""Mono PCM, full scale ±1.0."""

# BS.1770-4 Annex 2 measures true peak at four times the rate (at least 192 kHz is not
# required below 48 kHz); a 48-tap interpolation filter, 12 taps per phase, as it suggests.
OVERSAMPLE = 4
_TAPS_PER_PHASE = 12
_BLOCK = 64
# Above this share of blocks to interpolate, the whole signal is interpolated at once.
_SPARSE_SHARE = 0.05


@functools.cache
def _meter(rate: int) -> pyloudnorm.Meter:
    # De Man's derivation of the K-weighting filters holds at any rate (espeak speaks at
    # 22050 Hz); the default ones are tuned for 48 kHz.
    return pyloudnorm.Meter(rate, filter_class="DeMan")


def integrated_lufs(samples: Samples, rate: int) -> float:
    """Gated integrated loudness in LUFS; -inf when silent or shorter than one 400 ms block."""
    if len(samples) <= int(0.4 * rate):
        return -math.inf
    level = float(_meter(rate).integrated_loudness(samples.astype(np.float64, copy=False)))
    return level if math.isfinite(level) else -math.inf


@functools.cache
def _interpolator() -> NDArray[np.float32]:
    taps = OVERSAMPLE * _TAPS_PER_PHASE
    # Kaiser-windowed low-pass at the original Nyquist rate, gain OVERSAMPLE to keep level.
    fir = signal.firwin(taps, 1.0 / OVERSAMPLE, window=("kaiser", 8.0)) * OVERSAMPLE
    return np.asarray(fir, dtype=np.float32)


@functools.cache
def _phases() -> tuple[NDArray[np.float32], int, float]:
    """The interpolator as one row of taps per oversampled phase, the reach of each row in
    samples either side, and the largest sum of a row's absolute taps (its greatest gain)."""
    fir = _interpolator()
    taps = len(fir)
    delay = (taps - 1) // 2
    reach = delay // OVERSAMPLE + 1
    # Phase k between samples n and n + 1 is sum over d of fir[delay + k - 4d] * x[n + d].
    rows = np.zeros((OVERSAMPLE, 2 * reach + 1))
    for phase in range(OVERSAMPLE):
        for d in range(-reach, reach + 1):
            tap = delay + phase - OVERSAMPLE * d
            if 0 <= tap < taps:
                rows[phase, d + reach] = fir[tap]
    return rows.astype(np.float32), reach, float(np.abs(rows).sum(axis=1).max())


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
    rows, reach, bound = _phases()
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
    if len(kept) > _SPARSE_SHARE * blocks:
        # Most of the signal counts: one polyphase pass over all of it is cheaper.
        fir = _interpolator()
        delay = (len(fir) - 1) // 2
        up = np.abs(signal.upfirdn(fir, samples, up=OVERSAMPLE))[delay:]
        peaks = magnitude.copy()
        for phase in range(OVERSAMPLE):  # strided maxima: far faster than a reshape's
            np.maximum(peaks, up[phase : phase + count * OVERSAMPLE : OVERSAMPLE], out=peaks)
        return peaks
    chosen = (kept[:, None] * _BLOCK + np.arange(_BLOCK)[None, :]).ravel()
    chosen = chosen[chosen < count]
    padded = np.concatenate([np.zeros(reach, np.float32), samples, np.zeros(reach, np.float32)])
    windows = padded[chosen[:, None] + np.arange(2 * reach + 1)[None, :]]
    between = np.abs(windows @ rows.T).max(axis=1)
    peaks = magnitude.copy()
    peaks[chosen] = np.maximum(peaks[chosen], between)
    return peaks


def true_peak_dbtp(samples: Samples) -> float:
    """True peak in dBTP (4x oversampled); -inf for silence."""
    if len(samples) == 0:
        return -math.inf
    sample_peak = float(np.abs(samples).max())
    if sample_peak <= 0:
        return -math.inf
    peak = float(oversampled_peaks(samples, floor=sample_peak).max())
    return 20 * math.log10(peak)
