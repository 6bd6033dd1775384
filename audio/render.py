"""From announcement text to a stored, mastered MP3, rendering each distinct text only once."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audio.engines import FallbackEngine, SpeechEngine, get_engine
from audio.errors import AudioError
from audio.mastering import MasteringSettings
from audio.normalize import normalize
from audio.pcm_master import master_samples
from audio.speech import Progress, SpokenSentence, joined_samples, speak_sentences
from audio.speech import spoken_sentences as _sentences
from audio.store import MediaStore

__all__ = ["RenderResult", "RenderSettings", "Renderer"]

log = logging.getLogger(__name__)

# Part of every cache key: bump it when the chime, the mastering chain or the way speech is
# assembled changes sound, so that old renders are not reused. 2: sentence by sentence.
# 3: mastered in memory (compressor and limiter on the PCM, one encode). 4: encoded in two
# parts cut in a pause.
RENDER_FORMAT = 4

EngineOptions = dict[str, str | int | float | bool]


class RenderSettings(BaseModel):
    """Which engine and voice speak, how fast, what replaces a failing engine, how to master.

    `engine_options` holds per-engine extras by engine name, e.g.
    `{"piper": {"model_path": "/srv/voices/vi.onnx"}, "gtts": {"timeout_s": 5}}`.
    After the primary engine fails, `fallback_engine` speaks instead and the primary is not
    tried again for `fallback_retry_s` seconds (so an offline controller does not wait).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str = "espeak"
    voice: str = "vi"
    rate_wpm: int = Field(150, ge=80, le=450)
    mastering: MasteringSettings = MasteringSettings()
    max_chars: int = Field(5000, ge=1)
    fallback_engine: str | None = "espeak"
    fallback_retry_s: float = Field(300.0, ge=0.0)
    engine_options: dict[str, EngineOptions] = Field(default_factory=dict)


class RenderResult(BaseModel):
    """A stored announcement: its media file's identity, measurement and provenance.

    `engine` and `voice` name what actually spoke; `fallback_from` names the engine that
    was asked for when it failed and the fallback spoke instead.
    """

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
    fallback_from: str | None = None
    sentences: int = 1


class Renderer:
    """Renders announcement text into `store`; synchronous (callers run it in a thread).

    A render by the fallback engine is cached under the fallback's own key, never under the
    key of the engine that failed: the next request retries the preferred engine (after
    `fallback_retry_s`) and emergencies asking for "espeak" reuse the same file.
    """

    def __init__(self, store: MediaStore, settings: RenderSettings | None = None) -> None:
        self.store = store
        self.settings = settings or RenderSettings()
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def cache_key(self, normalized_text: str, engine: str) -> str:
        """Everything that decides the audio, hashed: equal keys mean equal files."""
        material: dict[str, Any] = {
            "format": RENDER_FORMAT,
            "text": normalized_text,
            "engine": engine,
            "voice": self.settings.voice,
            "rate_wpm": self.settings.rate_wpm,
            "mastering": self.settings.mastering.model_dump(mode="json"),
        }
        if self.settings.engine_options.get(engine):
            material["options"] = self.settings.engine_options[engine]
        encoded = json.dumps(material, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()

    def spoken_text(self, text: str, extra_abbreviations: Mapping[str, str] | None = None) -> str:
        """`text` normalised for speech, refused when too long or empty."""
        if len(text) > self.settings.max_chars:
            raise AudioError(
                f"the announcement has {len(text)} characters; the limit is "
                f"{self.settings.max_chars}"
            )
        spoken = normalize(text, extra_abbreviations)
        if not any(char.isalnum() for char in spoken):
            raise AudioError("the announcement is empty: there is nothing to say")
        return spoken

    def engine(self, name: str) -> SpeechEngine:
        """A new engine `name` with this deployment's voice, rate and options for it."""
        options = self.settings.engine_options.get(name, {})
        return get_engine(
            name, voice=self.settings.voice, rate_wpm=self.settings.rate_wpm, **options
        )

    def _speaker(self, requested: str) -> SpeechEngine:
        fallback = self.settings.fallback_engine
        if not fallback or fallback == requested:
            return self.engine(requested)
        speaker = FallbackEngine(self.engine(requested), self.engine(fallback))
        with self._lock:
            down = self._down_until.get(requested, 0.0) > time.monotonic()
        if down:
            speaker.failure = "failed recently"
        return speaker

    def render_sentences(
        self,
        text: str,
        work_dir: Path,
        *,
        engine: str | None = None,
        extra_abbreviations: Mapping[str, str] | None = None,
    ) -> Iterator[SpokenSentence]:
        """Unmastered speech of each sentence in `work_dir`, yielded as soon as it is spoken."""
        spoken = self.spoken_text(text, extra_abbreviations)
        yield from speak_sentences(spoken, self._speaker(engine or self.settings.engine), work_dir)

    def _cached(self, key: str, started: float, **extra: Any) -> RenderResult | None:
        record = self.store.lookup(key)
        if record is None or not self.store.has(str(record.get("sha256", ""))):
            return None
        try:
            result = RenderResult.model_validate(
                {**record, **extra, "cached": True, "render_ms": _elapsed_ms(started)}
            )
        except ValueError:
            self.store.forget(key)
            return None
        self.store.touch(result.sha256)
        return result

    def render_text(
        self,
        text: str,
        *,
        engine: str | None = None,
        extra_abbreviations: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> RenderResult:
        """Normalise, speak sentence by sentence, master and store `text`; reuse stored renders.

        `progress(done, total)` follows the sentences; on a cache hit it is called once with
        (total, total). If the engine fails part-way, the fallback speaks every sentence again
        (one voice throughout) and the count starts over.
        """
        started = time.perf_counter()
        spoken = self.spoken_text(text, extra_abbreviations)
        requested = engine or self.settings.engine
        total = len(_sentences(spoken))
        hit = self._cached(self.cache_key(spoken, requested), started)
        if hit is not None:
            if progress is not None:
                progress(total, total)
            return hit

        speaker = self._speaker(requested)
        work = Path(tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="render-"))
        try:
            spoken_parts = list(speak_sentences(spoken, speaker, work, progress))
            if len({part.engine for part in spoken_parts}) > 1:
                spoken_parts = list(speak_sentences(spoken, speaker, work, progress))
            fallback_from = getattr(speaker, "fallback_from", None)
            key = self.cache_key(spoken, speaker.name)
            if fallback_from is not None:
                self._mark_down(fallback_from)
                hit = self._cached(key, started, fallback_from=fallback_from, sentences=total)
                if hit is not None:
                    return hit
            speech, rate = joined_samples([part.wav for part in spoken_parts])
            mastered = work / "announcement.mp3"
            measurement = master_samples(speech, rate, mastered, self.settings.mastering)
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
            "sentences": total,
        }
        self.store.remember(key, record)
        return RenderResult.model_validate(
            {**record, "fallback_from": fallback_from, "cached": False,
             "render_ms": _elapsed_ms(started)}
        )  # fmt: skip

    def _mark_down(self, engine: str) -> None:
        now = time.monotonic()
        with self._lock:
            # Renders made while the engine was skipped must not push its retry further away.
            if self._down_until.get(engine, 0.0) <= now:
                self._down_until[engine] = now + self.settings.fallback_retry_s


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
