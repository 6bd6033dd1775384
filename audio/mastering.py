"""Chime, speech and silences assembled, brought to a loudness target and encoded as mono MP3."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audio.chime import make_chime
from audio.errors import AudioError
from audio.ffmpeg import has_filter_option, run_ffmpeg
from audio.measure import Measurement, measure

__all__ = ["MasteringSettings", "Measurement", "make_chime", "master", "measure"]

# Gap between the chime's tail and the first word, and silence after the last one, so
# that players which start or stop abruptly do not clip speech.
_CHIME_GAP_S = 0.3
_TAIL_S = 0.4
# Limiting at four times the rate approximates true-peak limiting; the first attempt
# leaves this much headroom for the MP3 encoder's overshoot.
_OVERSAMPLE = 4
_FIRST_HEADROOM_DB = 0.6
_TOLERANCE_LU = 0.3
# Compression and limiting take about this much loudness from espeak speech levelled to
# the target; starting with it as make-up gain usually saves an encode.
_DYNAMICS_LOSS_DB = 6.5
_ATTEMPTS = 3
# Synthetic speech peaks some 18 dB above its loudness; outdoor horns need less than 14.
# Gentle compression of the speech alone narrows that gap, so that the final limiter
# only catches stray peaks and speech stays intelligible over street noise.
_SPEECH_COMPRESSOR = "acompressor=threshold=0.125:ratio=3:attack=3:release=80:knee=4"
# Espeak speech too short to gate (under 0.4 s) has no integrated loudness; assume this.
_FALLBACK_SPEECH_LUFS = -20.0


class MasteringSettings(BaseModel):
    """How an announcement is finished for the loudspeakers (all levels per EBU R128)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_lufs: float = Field(-16.0, ge=-30.0, le=-10.0)
    true_peak_dbtp: float = Field(-1.5, ge=-6.0, le=0.0)
    bitrate_kbps: Literal[32, 40, 48, 56, 64, 80, 96, 112, 128, 160] = 48
    # 22050 Hz is espeak-ng's own rate (no resampling) and plenty for horn loudspeakers.
    sample_rate: Literal[16000, 22050, 24000, 32000, 44100, 48000] = 22050
    opening_chime: bool = True
    closing_chime: bool = False
    chime_relative_lu: float = Field(-4.0, ge=-20.0, le=0.0)
    repeat: int = Field(1, ge=1, le=2)
    repeat_pause_s: float = Field(2.0, ge=0.0, le=30.0)
    lead_silence_s: float = Field(0.3, ge=0.0, le=10.0)


def _silence(label: str, seconds: float, sample_rate: int) -> str:
    return f"aevalsrc=exprs=0:s={sample_rate}:c=mono:d={seconds:.3f}[{label}]"


def _limiter(limit_db: float) -> str:
    limit = max(0.0625, min(1.0, 10 ** (limit_db / 20)))
    options = f"limit={limit:.5f}:attack=5:release=50"
    # Newer builds default to auto-levelling the output, which would undo the gain.
    if has_filter_option("alimiter", "level"):
        options += ":level=false"
    return f"alimiter={options}"


def _graph(inputs: dict[str, int], gains_db: dict[str, float], settings: MasteringSettings,
           correction_db: float, limit_db: float) -> str:  # fmt: skip
    rate = settings.sample_rate
    fmt = f"aresample={rate},aformat=sample_fmts=flt:sample_rates={rate}:channel_layouts=mono"
    parts: list[str] = []
    for name, index in inputs.items():
        shaping = f",{_SPEECH_COMPRESSOR}" if name == "speech" else ""
        parts.append(f"[{index}:a]{fmt},volume={gains_db[name]:.3f}dB{shaping}[{name}]")
    if settings.repeat == 2:
        parts.append("[speech]asplit=2[speech1][speech2]")
    sequence = ["lead"]
    parts.append(_silence("lead", settings.lead_silence_s or 0.001, rate))
    if "open" in inputs:
        sequence += ["open", "gap1"]
        parts.append(_silence("gap1", _CHIME_GAP_S, rate))
    if settings.repeat == 2:
        sequence += ["speech1", "pause", "speech2"]
        parts.append(_silence("pause", settings.repeat_pause_s or 0.001, rate))
    else:
        sequence.append("speech")
    if "close" in inputs:
        sequence += ["gap2", "close"]
        parts.append(_silence("gap2", _CHIME_GAP_S, rate))
    sequence.append("tail")
    parts.append(_silence("tail", _TAIL_S, rate))
    chain = "".join(f"[{label}]" for label in sequence)
    parts.append(
        f"{chain}concat=n={len(sequence)}:v=0:a=1,volume={correction_db:.3f}dB,"
        f"aresample={rate * _OVERSAMPLE},{_limiter(limit_db)},aresample={rate}[out]"
    )
    return ";".join(parts)


def _level(path: Path, fallback: float) -> float:
    level = measure(path).integrated_lufs
    return level if math.isfinite(level) and level > -70 else fallback


def master(
    speech_wav: Path, out_mp3: Path, settings: MasteringSettings | None = None
) -> Measurement:
    """Write the finished MP3 at `out_mp3` and return its independent measurement.

    The whole programme is normalised, then re-measured from the encoded file and
    corrected (up to three encodes) until loudness and true peak meet the settings.
    """
    settings = settings or MasteringSettings()
    speech_wav, out_mp3 = Path(speech_wav), Path(out_mp3)
    if not speech_wav.is_file():
        raise AudioError(f"speech file {speech_wav} does not exist")
    out_mp3.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out_mp3.parent, prefix=".master-"))
    try:
        inputs: dict[str, int] = {}
        files: list[Path] = []
        gains: dict[str, float] = {}
        chime_target = settings.target_lufs + settings.chime_relative_lu
        for name, wanted, closing in (("open", settings.opening_chime, False),
                                      ("close", settings.closing_chime, True)):  # fmt: skip
            if wanted:
                chime = make_chime(work / f"{name}.wav", settings.sample_rate, closing=closing)
                gains[name] = chime_target - _level(chime, chime_target)
                inputs[name], files = len(files), [*files, chime]
        inputs["speech"], files = len(files), [*files, speech_wav]
        gains["speech"] = settings.target_lufs - _level(speech_wav, _FALLBACK_SPEECH_LUFS)

        correction, limit_db = _DYNAMICS_LOSS_DB, settings.true_peak_dbtp - _FIRST_HEADROOM_DB
        candidate = work / "out.mp3"
        tried: list[tuple[float, float]] = []
        for _ in range(_ATTEMPTS):
            _encode(files, _graph(inputs, gains, settings, correction, limit_db), candidate,
                    settings)  # fmt: skip
            result = measure(candidate)
            loud_error = settings.target_lufs - result.integrated_lufs
            peak_excess = result.true_peak_dbtp - settings.true_peak_dbtp
            if abs(loud_error) <= _TOLERANCE_LU and peak_excess <= 0:
                break
            if math.isfinite(result.integrated_lufs):
                tried.append((correction, result.integrated_lufs))
                correction += loud_error / _slope(tried)
            if peak_excess > 0:
                limit_db -= peak_excess + 0.2
        os.replace(candidate, out_mp3)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _slope(tried: list[tuple[float, float]]) -> float:
    """LU gained per dB of gain, from the last two attempts (limiting makes it below 1)."""
    if len(tried) < 2 or tried[-1][0] == tried[-2][0]:
        return 1.0
    (gain_a, loud_a), (gain_b, loud_b) = tried[-2], tried[-1]
    return min(1.0, max(0.3, (loud_b - loud_a) / (gain_b - gain_a)))


def _encode(files: list[Path], graph: str, out_mp3: Path, settings: MasteringSettings) -> None:
    args = ["-y"]
    for path in files:
        args += ["-i", str(path)]
    args += [
        "-filter_complex", graph, "-map", "[out]", "-map_metadata", "-1",
        "-c:a", "libmp3lame", "-b:a", f"{settings.bitrate_kbps}k",
        "-ar", str(settings.sample_rate), "-ac", "1",
        # No version strings or tags: the same input gives the same bytes, hence the same hash.
        "-fflags", "+bitexact", "-flags:a", "+bitexact", "-id3v2_version", "0",
        "-write_id3v1", "0", "-f", "mp3", str(out_mp3),
    ]  # fmt: skip
    run_ffmpeg(args)
