"""What a file really contains, read from its bytes by ffmpeg (never from its name)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from audio.ffmpeg import run_ffmpeg

__all__ = ["ContainerInfo", "probe_container", "wav_header_overstates"]

_PROBE_TIMEOUT_S = 30.0
_INPUT = re.compile(r"^Input #0, (.+?), from ", re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Audio|Video|Subtitle|Data|Attachment): (\w+)(.*)$",
                     re.MULTILINE)  # fmt: skip
# ffmpeg guesses an MP3's length from its first frame when no header states it.
_ESTIMATED = "Estimating duration from bitrate"
# Streaming writers put these in a WAV's size fields when the length is not known.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """ffmpeg's description of a file: container names, stated length and streams."""

    container: str | None
    declared_duration_s: float | None
    audio_codecs: tuple[str, ...]
    video_codecs: tuple[str, ...]
    detail: str


def probe_container(path: Path) -> ContainerInfo:
    """Describe `path` by its content; `container` is None when ffmpeg cannot open it."""
    # Without an output ffmpeg exits non-zero, yet it describes the input first.
    done = run_ffmpeg(["-i", str(path)], check=False, timeout_s=_PROBE_TIMEOUT_S)
    stderr = done.stderr.decode("utf-8", errors="replace")
    container = _INPUT.search(stderr)
    duration = _DURATION.search(stderr)
    declared = None
    if duration and _ESTIMATED not in stderr:
        hours, minutes, seconds = duration.groups()
        declared = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    audio, video = [], []
    for kind, codec, rest in _STREAM.findall(stderr):
        if kind == "Audio":
            audio.append(codec)
        # Cover art inside an MP3 or M4A is shown as a video stream; it is not a video.
        elif kind == "Video" and "attached pic" not in rest:
            video.append(codec)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return ContainerInfo(
        container.group(1) if container else None,
        declared,
        tuple(audio),
        tuple(video),
        lines[-1] if lines else "",
    )


def wav_header_overstates(path: Path) -> int | None:
    """Bytes of sound a RIFF/WAVE header promises beyond the end of the file, else None.

    ffmpeg quietly plays what is there, so a cut-off upload or a header claiming hours of
    sound over a few bytes is only visible here.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"data":
                if chunk_size in _UNKNOWN_SIZES:
                    return None
                missing = offset + 8 + chunk_size - size
                return missing if missing > 0 else None
            # Chunks are padded to an even length.
            offset += 8 + chunk_size + (chunk_size & 1)
    return None
