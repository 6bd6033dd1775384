"""The contract every speech engine fulfils, and the atomic WAV writer they share."""

from __future__ import annotations

import os
import tempfile
import wave
from abc import ABC, abstractmethod
from pathlib import Path

__all__ = ["SpeechEngine", "write_wav_atomic"]


class SpeechEngine(ABC):
    """Turns already-normalised Vietnamese text into a mono WAV file.

    Engines are constructed with keyword options; every engine accepts `voice` and
    `rate_wpm` (an engine that cannot change its speed ignores the rate) so that a
    renderer can swap engines without knowing their particulars.
    """

    name: str
    voice: str

    @abstractmethod
    def synthesize(self, text: str, out_wav: Path) -> None:
        """Write `text` spoken as a mono WAV at `out_wav`.

        The file appears complete or not at all (temporary file, then rename).
        Raises EngineUnavailable when the engine cannot run here, AudioError otherwise.
        """

    def describe(self) -> dict[str, str | int | float]:
        """What determines this engine's output, for cache keys and records."""
        return {"engine": self.name, "voice": self.voice}


def write_wav_atomic(out_wav: Path, pcm: bytes, sample_rate: int) -> None:
    """Write 16-bit mono `pcm` as a WAV file that readers never see half-written."""
    out_wav = Path(out_wav)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".wav")
    try:
        with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            wav.writeframes(pcm)
        os.replace(tmp_name, out_wav)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
