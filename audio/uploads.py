"""Officers' recorded announcements: checked by content, decoded within bounds, mastered, stored."""

from __future__ import annotations

import math
import shutil
import tempfile
import wave
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from audio.errors import AudioError
from audio.ffmpeg import run_ffmpeg
from audio.mastering import MasteringSettings, master
from audio.measure import measure
from audio.probe import ContainerInfo, probe_container, wav_header_overstates
from audio.store import MediaStore

__all__ = ["UploadLimits", "UploadRefused", "UploadResult", "ingest_upload"]

RefusalReason = Literal[
    "empty", "too_big", "not_audio", "unsupported_format", "video", "truncated",
    "too_long", "too_short", "silent", "undecodable",
]  # fmt: skip

# ffmpeg's container name -> (name shown to officers, audio codecs accepted in it).
_ACCEPTED: dict[str, tuple[str, frozenset[str]]] = {
    "mp3": ("mp3", frozenset({"mp3"})),
    "wav": ("wav", frozenset()),  # any PCM, checked by prefix
    "mov,mp4,m4a,3gp,3g2,mj2": ("m4a", frozenset({"aac", "alac", "mp3"})),
    "aac": ("aac", frozenset({"aac"})),
    "ogg": ("ogg", frozenset({"vorbis", "opus"})),
}
_ACCEPTED_NAMES = "MP3, WAV, M4A/AAC or OGG (Vorbis/Opus)"
# A decoded file shorter than its header's length by more than this is cut off.
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_RATIO = 0.02
_SILENT_LUFS = -60.0


class UploadLimits(BaseModel):
    """What an uploaded recording may be; sizes are checked before anything is decoded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_duration_s: float = Field(1800.0, gt=0)
    min_duration_s: float = Field(0.5, ge=0)
    decode_timeout_s: float = Field(180.0, gt=0)


class UploadRefused(AudioError):
    """The upload is not accepted; `reason` is a stable code, the message plain words."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.message = message


class UploadResult(BaseModel):
    """A stored, mastered upload and what it was before."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    size: int
    duration_s: float
    integrated_lufs: float
    true_peak_dbtp: float
    source_format: str
    source_codec: str
    source_bytes: int
    source_duration_s: float


def _check_container(info: ContainerInfo) -> tuple[str, str]:
    """(format, codec) of an acceptable upload, else UploadRefused."""
    if info.container is None or not (info.audio_codecs or info.video_codecs):
        raise UploadRefused(
            "not_audio",
            f"the file is not a recording ffmpeg can read ({info.detail}); send {_ACCEPTED_NAMES}",
        )
    if not info.audio_codecs:
        raise UploadRefused("not_audio", f"the file holds no sound; send {_ACCEPTED_NAMES}")
    # Videos are refused rather than stripped: an officer should know the picture is lost.
    if info.video_codecs:
        raise UploadRefused("video", f"video files are not accepted; send {_ACCEPTED_NAMES}")
    accepted = _ACCEPTED.get(info.container)
    codec = info.audio_codecs[0]
    if accepted is None or not (
        codec in accepted[1] or (accepted[0] == "wav" and codec.startswith("pcm_"))
    ):
        raise UploadRefused(
            "unsupported_format",
            f"{info.container} with {codec} sound is not accepted; send {_ACCEPTED_NAMES}",
        )
    return accepted[0], codec


def _decode(src: Path, out_wav: Path, rate: int, limits: UploadLimits) -> float:
    """Decode at most max_duration_s + 1 s of the first audio stream; returns the seconds got."""
    # The bound is on output, not on what the header states, so no header can make this
    # run long or fill the disk.
    args = [
        "-y", "-i", str(src), "-map", "0:a:0", "-t", f"{limits.max_duration_s + 1:.3f}",
        "-ac", "1", "-ar", str(rate), "-c:a", "pcm_s16le", "-f", "wav", str(out_wav),
    ]  # fmt: skip
    try:
        run_ffmpeg(args, timeout_s=limits.decode_timeout_s)
        with wave.open(str(out_wav), "rb") as handle:
            return handle.getnframes() / handle.getframerate()
    except (AudioError, OSError, wave.Error, EOFError) as exc:
        raise UploadRefused("undecodable", f"the recording could not be decoded: {exc}") from exc


def ingest_upload(
    src: Path,
    store: MediaStore,
    mastering: MasteringSettings | None = None,
    limits: UploadLimits | None = None,
    *,
    opening_chime: bool = True,
) -> UploadResult:
    """Check, decode, master (like speech; the opening chime by default) and store `src`.

    Raises UploadRefused with a reason code; nothing is left in the store's tmp on refusal.
    `src` itself is never changed or removed.
    """
    src = Path(src)
    mastering = (mastering or MasteringSettings()).model_copy(
        update={"opening_chime": opening_chime}
    )
    limits = limits or UploadLimits()
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise UploadRefused("not_audio", f"the upload cannot be read: {exc}") from exc
    if size == 0:
        raise UploadRefused("empty", "the file is empty")
    if size > limits.max_bytes:
        raise UploadRefused(
            "too_big",
            f"the file has {size / 2**20:.1f} MiB; the limit is {limits.max_bytes / 2**20:.0f} MiB",
        )
    info = probe_container(src)
    source_format, codec = _check_container(info)
    if source_format == "wav" and (missing := wav_header_overstates(src)):
        raise UploadRefused(
            "truncated",
            f"the WAV header promises {missing} bytes of sound that the file does not hold",
        )
    work = Path(tempfile.mkdtemp(dir=store.tmp_dir, prefix="upload-"))
    try:
        decoded = work / "decoded.wav"
        seconds = _decode(src, decoded, mastering.sample_rate, limits)
        _check_length(seconds, info.declared_duration_s, limits)
        if not math.isfinite(level := measure(decoded).integrated_lufs) or level < _SILENT_LUFS:
            raise UploadRefused("silent", "the recording is silent")
        mastered = work / "upload.mp3"
        measurement = master(decoded, mastered, mastering)
        sha256 = store.put_file(mastered, move=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return UploadResult(
        sha256=sha256,
        size=store.size(sha256) or 0,
        duration_s=round(measurement.duration_s, 3),
        integrated_lufs=measurement.integrated_lufs,
        true_peak_dbtp=measurement.true_peak_dbtp,
        source_format=source_format,
        source_codec=codec,
        source_bytes=size,
        source_duration_s=round(seconds, 3),
    )


def _check_length(seconds: float, declared: float | None, limits: UploadLimits) -> None:
    if seconds > limits.max_duration_s:
        raise UploadRefused(
            "too_long",
            f"the recording is longer than the limit of {limits.max_duration_s / 60:g} minutes",
        )
    if declared is not None:
        slack = max(_TRUNCATION_SLACK_S, declared * _TRUNCATION_SLACK_RATIO)
        if seconds < declared - slack:
            raise UploadRefused(
                "truncated",
                f"the file stops after {seconds:.1f} s of the {declared:.1f} s it announces",
            )
    if seconds < limits.min_duration_s:
        raise UploadRefused(
            "too_short",
            f"the recording lasts {seconds:.2f} s; at least {limits.min_duration_s:g} s is needed",
        )
