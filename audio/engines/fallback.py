"""An engine that speaks with a preferred engine and falls back to another when it fails."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from audio.engines.base import SpeechEngine
from audio.errors import AudioError

__all__ = ["FallbackEngine"]

log = logging.getLogger(__name__)

# What a failing engine may raise: its own errors, a stopped subprocess or a network error.
FAILURES = (AudioError, TimeoutError, subprocess.TimeoutExpired, OSError)


class FallbackEngine(SpeechEngine):
    """`primary` until it fails once, then `fallback` for every later call on this object.

    Staying with the fallback keeps one voice through a multi-sentence announcement. The
    attributes `name`/`voice` and `fallback_from` always say who spoke the last call.
    """

    def __init__(self, primary: SpeechEngine, fallback: SpeechEngine) -> None:
        self.primary = primary
        self.fallback = fallback
        self.failure: str | None = None

    @property
    def active(self) -> SpeechEngine:
        """The engine that speaks the next call."""
        return self.fallback if self.failure is not None else self.primary

    @property
    def name(self) -> str:  # type: ignore[override]  # read-only: says who spoke last
        return self.active.name

    @property
    def voice(self) -> str:  # type: ignore[override]  # read-only: says who spoke last
        return self.active.voice

    @property
    def fallback_from(self) -> str | None:
        """The primary's name once it has failed, else None."""
        return self.primary.name if self.failure is not None else None

    def describe(self) -> dict[str, str | int | float]:
        return self.active.describe()

    def synthesize(self, text: str, out_wav: Path) -> None:
        if self.failure is None:
            try:
                self.primary.synthesize(text, out_wav)
                return
            except FAILURES as exc:
                if not text.strip():
                    raise
                self.failure = str(exc) or type(exc).__name__
                log.warning(
                    "speech engine %s failed (%s); speaking with %s instead",
                    self.primary.name,
                    self.failure,
                    self.fallback.name,
                )
        self.fallback.synthesize(text, out_wav)
