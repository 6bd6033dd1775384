"""Independent measurement of audio files: EBU R128 loudness, true peak, duration and format."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from audio.errors import AudioError
from audio.ffmpeg import run_ffmpeg

__all__ = ["Measurement", "StreamInfo", "measure", "probe"]

_SUMMARY = re.compile(r"Summary:(.*)", re.DOTALL)
_INTEGRATED = re.compile(r"I:\s+(-?[\d.]+|-?inf|nan)\s+LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s+Peak:\s+(-?[\d.]+|-?inf|nan)\s+dBFS")
_OUT_TIME = re.compile(rb"out_time_us=(\d+)")
_AUDIO_STREAM = re.compile(
    r"Stream #\S+.*?Audio: (\w+).*?, (\d+) Hz, ([\w.() ]+?), \w+(?:, (\d+) kb/s)?"
)


@dataclass(frozen=True, slots=True)
class Measurement:
    """Loudness of a whole file (LUFS, -inf when silent), its true peak (dBTP) and length."""

    duration_s: float
    integrated_lufs: float
    true_peak_dbtp: float


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The first audio stream of a file as ffmpeg reports it."""

    codec: str
    sample_rate: int
    channels: str
    bitrate_kbps: int | None


def _number(text: str) -> float:
    return -math.inf if text in ("-inf", "inf", "nan") else float(text)


def measure(path: Path) -> Measurement:
    """Decode `path` and measure it with ffmpeg's ebur128 filter (peak=true)."""
    if not Path(path).is_file():
        raise AudioError(f"cannot measure {path}: no such file")
    done = run_ffmpeg(
        [
            "-nostats", "-progress", "pipe:1", "-i", str(path),
            "-filter_complex", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
        ]
    )  # fmt: skip
    stderr = done.stderr.decode("utf-8", errors="replace")
    summary = _SUMMARY.search(stderr)
    integrated = _INTEGRATED.search(summary.group(1)) if summary else None
    peak = _TRUE_PEAK.search(summary.group(1)) if summary else None
    times = _OUT_TIME.findall(done.stdout)
    if integrated is None or peak is None or not times:
        raise AudioError(f"ffmpeg did not report loudness for {path}")
    return Measurement(
        duration_s=int(times[-1]) / 1e6,
        integrated_lufs=_number(integrated.group(1)),
        true_peak_dbtp=_number(peak.group(1)),
    )


def probe(path: Path) -> StreamInfo:
    """Codec, sample rate, channel layout and bitrate of the first audio stream of `path`."""
    # ffmpeg exits non-zero when given no output, yet prints the stream description first.
    done = run_ffmpeg(["-i", str(path)], check=False)
    stderr = done.stderr.decode("utf-8", errors="replace")
    match = _AUDIO_STREAM.search(stderr)
    if match is None:
        raise AudioError(f"no audio stream found in {path}")
    codec, rate, channels, bitrate = match.groups()
    return StreamInfo(codec, int(rate), channels.strip(), int(bitrate) if bitrate else None)
