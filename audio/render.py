"""From announcement text to a stored, mastered MP3, rendering each distinct text only once."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from audio.engines import get_engine
from audio.errors import AudioError
from audio.mastering import MasteringSettings, master
from audio.normalize import normalize
from audio.store import MediaStore

__all__ = ["RenderResult", "RenderSettings", "Renderer"]

# Part of every cache key: bump it when the chime or the mastering chain changes sound,
# so that old renders are not reused.
RENDER_FORMAT = 1


class RenderSettings(BaseModel):
    """Which engine and voice speak, how fast, and how the result is mastered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str = "espeak"
    voice: str = "vi"
    rate_wpm: int = Field(150, ge=80, le=450)
    mastering: MasteringSettings = MasteringSettings()
    max_chars: int = Field(5000, ge=1)


class RenderResult(BaseModel):
    """A stored announcement: its media file's identity, measurement and provenance."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    size: int
    duration_s: float
    integrated_lufs: float
    true_peak_dbtp: float
    engine: str
    voice: str
    normalized_text: str
    cached: bool
    render_ms: int


class Renderer:
    """Renders announcement text into `store`; synchronous (callers run it in a thread)."""

    def __init__(self, store: MediaStore, settings: RenderSettings | None = None) -> None:
        self.store = store
        self.settings = settings or RenderSettings()

    def cache_key(self, normalized_text: str, engine: str) -> str:
        """Everything that decides the audio, hashed: equal keys mean equal files."""
        material = {
            "format": RENDER_FORMAT,
            "text": normalized_text,
            "engine": engine,
            "voice": self.settings.voice,
            "rate_wpm": self.settings.rate_wpm,
            "mastering": self.settings.mastering.model_dump(mode="json"),
        }
        encoded = json.dumps(material, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()

    def render_text(
        self,
        text: str,
        *,
        engine: str | None = None,
        extra_abbreviations: Mapping[str, str] | None = None,
    ) -> RenderResult:
        """Normalise, speak, master and store `text`; reuse the stored file when it exists."""
        started = time.perf_counter()
        if len(text) > self.settings.max_chars:
            raise AudioError(
                f"the announcement has {len(text)} characters; the limit is "
                f"{self.settings.max_chars}"
            )
        spoken = normalize(text, extra_abbreviations)
        if not any(char.isalnum() for char in spoken):
            raise AudioError("the announcement is empty: there is nothing to say")
        engine_name = engine or self.settings.engine
        key = self.cache_key(spoken, engine_name)

        record = self.store.lookup(key)
        if record is not None and self.store.has(str(record.get("sha256", ""))):
            try:
                return RenderResult.model_validate(
                    {**record, "cached": True, "render_ms": _elapsed_ms(started)}
                )
            except ValueError:
                self.store.forget(key)

        speaker = get_engine(
            engine_name, voice=self.settings.voice, rate_wpm=self.settings.rate_wpm
        )
        work = Path(tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="render-"))
        try:
            speech = work / "speech.wav"
            speaker.synthesize(spoken, speech)
            mastered = work / "announcement.mp3"
            measurement = master(speech, mastered, self.settings.mastering)
            sha256 = self.store.put_file(mastered, move=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)

        record = {
            "sha256": sha256,
            "size": self.store.size(sha256) or 0,
            "duration_s": round(measurement.duration_s, 3),
            "integrated_lufs": measurement.integrated_lufs,
            "true_peak_dbtp": measurement.true_peak_dbtp,
            "engine": speaker.name,
            "voice": speaker.voice,
            "normalized_text": spoken,
        }
        self.store.remember(key, record)
        return RenderResult.model_validate(
            {**record, "cached": False, "render_ms": _elapsed_ms(started)}
        )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
