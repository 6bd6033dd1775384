"""The project's own opening and closing chimes, synthesised by ffmpeg (no bundled audio)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from audio.ffmpeg import run_ffmpeg
from audio.loudness import Samples

__all__ = ["CHIME_DURATION_S", "chime_expression", "chime_samples", "make_chime"]

# A bright major arpeggio, C5-E5-G5, rising to open and falling to close: recognisable
# through horn loudspeakers, which reproduce little below 300 Hz.
_NOTES_HZ = (523.25, 659.25, 783.99)
_NOTE_SPACING_S = 0.32
_DECAY_PER_S = 3.0
_OVERTONE_LEVEL = 0.3
_AMPLITUDE = 0.22
_FADE_S = 0.3
CHIME_DURATION_S = 1.9


def _note(start_s: float, freq_hz: float) -> str:
    t = f"(t-{start_s:g})"
    # A 3 ms attack ramp avoids a click; the octave overtone fades faster, like a struck bell.
    return (
        f"gte(t,{start_s:g})*exp(-{_DECAY_PER_S:g}*{t})*min(1,{t}*300)"
        f"*(sin(2*PI*{freq_hz:g}*{t})+{_OVERTONE_LEVEL:g}*sin(4*PI*{freq_hz:g}*{t})*exp(-2*{t}))"
    )


def chime_expression(closing: bool = False) -> str:
    """The aevalsrc expression of the chime (commas unescaped)."""
    notes = tuple(reversed(_NOTES_HZ)) if closing else _NOTES_HZ
    terms = [_note(index * _NOTE_SPACING_S, freq) for index, freq in enumerate(notes)]
    return f"{_AMPLITUDE:g}*({'+'.join(terms)})"


def make_chime(out_wav: Path, sample_rate: int, *, closing: bool = False) -> Path:
    """Write the opening (or, with `closing`, the closing) chime as a mono 16-bit WAV."""
    out_wav = Path(out_wav)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    expression = chime_expression(closing).replace(",", r"\,")
    graph = (
        f"aevalsrc=exprs={expression}:s={sample_rate}:d={CHIME_DURATION_S:g}:c=mono,"
        f"afade=t=out:st={CHIME_DURATION_S - _FADE_S:g}:d={_FADE_S:g}"
    )
    fd, tmp_name = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        run_ffmpeg(["-y", "-filter_complex", graph, "-c:a", "pcm_s16le", "-f", "wav", tmp_name])
        os.replace(tmp_name, out_wav)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return out_wav


def chime_samples(sample_rate: int, *, closing: bool = False) -> Samples:
    """The same chime as `make_chime`, computed in memory (float, full scale ±1.0)."""
    t = np.arange(round(CHIME_DURATION_S * sample_rate), dtype=np.float64) / sample_rate
    notes = tuple(reversed(_NOTES_HZ)) if closing else _NOTES_HZ
    total = np.zeros_like(t)
    for index, freq in enumerate(notes):
        local = t - index * _NOTE_SPACING_S
        sounding = local >= 0
        local = np.where(sounding, local, 0.0)
        tone = np.sin(2 * np.pi * freq * local) + _OVERTONE_LEVEL * np.sin(
            4 * np.pi * freq * local
        ) * np.exp(-2 * local)
        total += sounding * np.exp(-_DECAY_PER_S * local) * np.minimum(1, local * 300) * tone
    fade_start = CHIME_DURATION_S - _FADE_S
    fade = np.clip((CHIME_DURATION_S - t) / _FADE_S, 0.0, 1.0)
    total *= np.where(t < fade_start, 1.0, fade)
    return (_AMPLITUDE * total).astype(np.float32)
