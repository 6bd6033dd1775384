"""Online Vietnamese speech from Google Translate's voice (gTTS), converted to WAV by ffmpeg."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from audio.engines.base import SpeechEngine
from audio.errors import AudioError, EngineUnavailable
from audio.ffmpeg import run_ffmpeg

__all__ = ["GttsEngine"]

# gTTS's voice has one speed (or "slow"); this rate is reported so that records stay honest.
_NATIVE_RATE_WPM = 150
_CONVERT_TIMEOUT_S = 120.0


class GttsEngine(SpeechEngine):
    """The gTTS voice for language `voice` ("vi"); needs the internet, so it may fail at any time.

    `timeout_s` bounds each request and the whole text: a village should hear the offline
    voice after a few seconds rather than wait for a slow network.
    """

    name = "gtts"

    def __init__(
        self,
        voice: str = "vi",
        rate_wpm: int = _NATIVE_RATE_WPM,
        timeout_s: float = 8.0,
        tld: str = "com",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.voice = voice
        # Below 120 words per minute the slow voice is nearer to what was asked.
        self.slow = rate_wpm < 120
        self.timeout_s = timeout_s
        self.tld = tld

    def describe(self) -> dict[str, str | int | float]:
        described = super().describe()
        described["slow"] = int(self.slow)
        return described

    def synthesize(self, text: str, out_wav: Path) -> None:
        if not text.strip():
            raise AudioError("there is no text to speak")
        out_wav = Path(out_wav)
        out_wav.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_mp3 = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".mp3")
        os.close(fd)
        fd, tmp_wav = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".wav")
        os.close(fd)
        try:
            self._download(text, Path(tmp_mp3))
            run_ffmpeg(
                ["-y", "-i", tmp_mp3, "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", tmp_wav],
                timeout_s=_CONVERT_TIMEOUT_S,
            )
            os.replace(tmp_wav, out_wav)
        finally:
            Path(tmp_mp3).unlink(missing_ok=True)
            Path(tmp_wav).unlink(missing_ok=True)

    def _download(self, text: str, mp3: Path) -> None:
        try:
            from gtts import gTTS, gTTSError
        except ImportError as exc:
            raise EngineUnavailable("the gtts package is not installed (pip install gTTS)") from exc
        deadline = time.monotonic() + self.timeout_s
        try:
            speech = gTTS(
                text, lang=self.voice, slow=self.slow, tld=self.tld, timeout=self.timeout_s
            )
            with mp3.open("wb") as handle:
                # gTTS sends long texts in pieces; the deadline covers them all.
                for piece in speech.stream():
                    handle.write(piece)
                    if time.monotonic() > deadline:
                        raise EngineUnavailable(
                            f"gTTS took longer than {self.timeout_s:g} s; the text was not spoken"
                        )
        except EngineUnavailable:
            raise
        except (gTTSError, OSError) as exc:
            raise EngineUnavailable(f"gTTS could not be reached: {exc}") from exc
        except ValueError as exc:
            # gTTS refuses unknown languages with ValueError before any request.
            raise EngineUnavailable(f"gTTS cannot speak {self.voice!r}: {exc}") from exc
        if mp3.stat().st_size == 0:
            raise EngineUnavailable("gTTS returned no audio")
