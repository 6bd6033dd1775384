"""Locate the ffmpeg executable and run it, turning failures into AudioError."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence

from audio.errors import AudioError

__all__ = ["ffmpeg_exe", "has_filter_option", "run_ffmpeg"]

# Enough of ffmpeg's stderr to show the cause without flooding logs with the banner.
_STDERR_TAIL_LINES = 8


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg to use: the system one (Debian, CI) first, else the imageio-ffmpeg one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise AudioError(
            "ffmpeg not found: install the system ffmpeg package or the imageio-ffmpeg wheel"
        ) from exc
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise AudioError(f"ffmpeg not found: {exc}") from exc


def run_ffmpeg(
    args: Sequence[str],
    input: bytes | None = None,
    *,
    timeout_s: float = 600.0,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with `args` (no program name); raise AudioError with stderr's tail on failure.

    With `check=False` a non-zero exit is returned rather than raised (ffmpeg exits 1 when
    only asked to describe an input).
    """
    cmd = [ffmpeg_exe(), "-hide_banner"]
    if input is None:
        # Without this ffmpeg may read the caller's terminal and stop on a stray key press.
        cmd.append("-nostdin")
    cmd.extend(args)
    try:
        done = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"ffmpeg took longer than {timeout_s:.0f} s and was stopped") from exc
    except OSError as exc:
        raise AudioError(f"ffmpeg could not start: {exc}") from exc
    if check and done.returncode != 0:
        tail = stderr_tail(done.stderr)
        raise AudioError(f"ffmpeg failed (exit status {done.returncode}): {tail}")
    return done


def stderr_tail(stderr: bytes, lines: int = _STDERR_TAIL_LINES) -> str:
    """The last non-empty lines of ffmpeg's stderr, joined on one line for an error message."""
    text = stderr.decode("utf-8", errors="replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"


@functools.cache
def has_filter_option(filter_name: str, option: str) -> bool:
    """Whether this ffmpeg build's `filter_name` accepts `option` (builds differ across distros)."""
    try:
        done = run_ffmpeg(["-h", f"filter={filter_name}"])
    except AudioError:
        return False
    help_text = done.stdout.decode("utf-8", errors="replace")
    return any(line.strip().startswith(option + " ") for line in help_text.splitlines())
