"""Registry of speech engines by name: offline espeak-ng, online gTTS and Piper voices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audio.engines.base import SpeechEngine, write_wav_atomic
from audio.engines.espeak import EspeakEngine
from audio.engines.fallback import FallbackEngine
from audio.engines.gtts import GttsEngine
from audio.engines.piper import PiperEngine

__all__ = [
    "EspeakEngine",
    "FallbackEngine",
    "GttsEngine",
    "PiperEngine",
    "SpeechEngine",
    "engine_names",
    "get_engine",
    "register_engine",
    "write_wav_atomic",
]

EngineFactory = Callable[..., SpeechEngine]

_REGISTRY: dict[str, EngineFactory] = {
    "espeak": EspeakEngine,
    "gtts": GttsEngine,
    "piper": PiperEngine,
}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make `factory(**opts)` available as `get_engine(name, **opts)`."""
    if not name or not name.isidentifier():
        raise ValueError(f"engine names must be identifiers, not {name!r}")
    _REGISTRY[name] = factory


def engine_names() -> list[str]:
    """Names that get_engine accepts, sorted."""
    return sorted(_REGISTRY)


def get_engine(name: str, **opts: Any) -> SpeechEngine:
    """A new engine `name` built with `opts` (at least `voice` and `rate_wpm` are accepted)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(engine_names())
        raise ValueError(f"unknown speech engine {name!r}; known engines: {known}") from None
    return factory(**opts)
