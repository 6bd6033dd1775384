"""Offline Vietnamese speech with espeak-ng: the in-process library, else the espeak-ng binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from audio.engines.base import SpeechEngine, write_wav_atomic
from audio.engines.espeak_library import load_library
from audio.errors import AudioError, EngineUnavailable

__all__ = ["EspeakEngine"]

_BINARY_TIMEOUT_S = 300.0


class EspeakEngine(SpeechEngine):
    """espeak-ng with the given voice (`vi` by default) at `rate_wpm` words per minute."""

    name = "espeak"

    def __init__(self, voice: str = "vi", rate_wpm: int = 150, pitch: int | None = None) -> None:
        if not 80 <= rate_wpm <= 450:
            raise ValueError(f"rate_wpm must be between 80 and 450, not {rate_wpm}")
        if pitch is not None and not 0 <= pitch <= 99:
            raise ValueError(f"pitch must be between 0 and 99, not {pitch}")
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.pitch = pitch

    def describe(self) -> dict[str, str | int | float]:
        described = super().describe()
        described["rate_wpm"] = self.rate_wpm
        if self.pitch is not None:
            described["pitch"] = self.pitch
        return described

    def synthesize(self, text: str, out_wav: Path) -> None:
        if not text.strip():
            raise AudioError("there is no text to speak")
        try:
            pcm, sample_rate = self.synthesize_pcm(text)
        except EngineUnavailable:
            if shutil.which("espeak-ng") is None:
                raise
            self._synthesize_with_binary(text, Path(out_wav))
            return
        write_wav_atomic(Path(out_wav), pcm, sample_rate)

    def synthesize_pcm(self, text: str) -> tuple[bytes, int]:
        """Raw 16-bit mono samples and their rate from the in-process library."""
        library = load_library()
        pcm = library.synthesize(text, self.voice, self.rate_wpm, self.pitch)
        if not pcm:
            raise AudioError("espeak-ng produced no audio for the text")
        return pcm, library.sample_rate

    def _synthesize_with_binary(self, text: str, out_wav: Path) -> None:
        out_wav.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".wav")
        os.close(fd)
        cmd = ["espeak-ng", "-v", self.voice, "-s", str(self.rate_wpm), "-w", tmp_name, "--stdin"]
        if self.pitch is not None:
            cmd[1:1] = ["-p", str(self.pitch)]
        try:
            done = subprocess.run(
                cmd,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=_BINARY_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0 or Path(tmp_name).stat().st_size <= 44:
                message = done.stderr.decode("utf-8", errors="replace").strip()
                raise AudioError(f"espeak-ng failed (exit status {done.returncode}): {message}")
            os.replace(tmp_name, out_wav)
        except subprocess.TimeoutExpired as exc:
            raise AudioError("espeak-ng took too long and was stopped") from exc
        finally:
            Path(tmp_name).unlink(missing_ok=True)
