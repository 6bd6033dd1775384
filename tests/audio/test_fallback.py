"""Falling back to offline espeak when the preferred engine fails, and what gets cached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audio import EngineUnavailable, FallbackEngine, MediaStore, Renderer, RenderSettings
from audio.engines import _REGISTRY, SpeechEngine, get_engine, register_engine

TEXT = "Thông báo. Chiều nay 14h họp tại hội trường xã. Đề nghị bà con đến đúng giờ."


class FlakyEngine(SpeechEngine):
    """Speaks with espeak for `works` calls, then fails as an offline online engine would."""

    name = "flaky"
    calls = 0
    works = 0

    def __init__(self, voice: str = "vi", rate_wpm: int = 150) -> None:
        self.voice = voice
        self._espeak = get_engine("espeak", voice=voice, rate_wpm=rate_wpm)

    def synthesize(self, text: str, out_wav: Path) -> None:
        FlakyEngine.calls += 1
        if FlakyEngine.calls > FlakyEngine.works:
            raise EngineUnavailable("no network")
        self._espeak.synthesize(text, out_wav)


@pytest.fixture(autouse=True)
def flaky() -> Iterator[type[FlakyEngine]]:
    register_engine("flaky", FlakyEngine)
    FlakyEngine.calls, FlakyEngine.works = 0, 0
    yield FlakyEngine
    _REGISTRY.pop("flaky", None)


def test_fallback_engine_sticks_to_the_fallback(tmp_path: Path) -> None:
    engine = FallbackEngine(FlakyEngine(), get_engine("espeak"))
    assert (engine.name, engine.fallback_from) == ("flaky", None)
    engine.synthesize("xin chào", tmp_path / "a.wav")
    engine.synthesize("xin chào", tmp_path / "b.wav")
    assert (engine.name, engine.voice, engine.fallback_from) == ("espeak", "vi", "flaky")
    assert FlakyEngine.calls == 1 and (tmp_path / "b.wav").stat().st_size > 1000


def test_render_records_what_actually_spoke(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    renderer = Renderer(MediaStore(tmp_path), RenderSettings(engine="flaky"))
    result = renderer.render_text(TEXT)
    assert (result.engine, result.voice, result.fallback_from) == ("espeak", "vi", "flaky")
    assert not result.cached and result.sentences == 3
    assert "speaking with espeak instead" in caplog.text
    # Cached under espeak's key, so an emergency asking for espeak reuses it ...
    emergency = renderer.render_text(TEXT, engine="espeak")
    assert emergency.cached and emergency.sha256 == result.sha256
    assert emergency.fallback_from is None
    # ... and never under the failing engine's key.
    assert renderer.store.lookup(renderer.cache_key(result.normalized_text, "flaky")) is None


def test_failed_engine_is_retried_after_the_retry_delay(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    waiting = Renderer(store, RenderSettings(engine="flaky", fallback_retry_s=3600))
    first = waiting.render_text(TEXT)
    calls = FlakyEngine.calls
    again = waiting.render_text(TEXT)
    assert FlakyEngine.calls == calls, "the failed engine was retried too soon"
    assert again.cached and again.fallback_from == "flaky" and again.sha256 == first.sha256

    FlakyEngine.works = 10**6
    eager = Renderer(store, RenderSettings(engine="flaky", fallback_retry_s=0))
    online = eager.render_text(TEXT)
    assert (online.engine, online.fallback_from, online.cached) == ("flaky", None, False)


def test_failure_part_way_respeaks_every_sentence(tmp_path: Path) -> None:
    FlakyEngine.works = 1
    seen: list[tuple[int, int]] = []
    renderer = Renderer(MediaStore(tmp_path), RenderSettings(engine="flaky"))
    result = renderer.render_text(TEXT, progress=lambda done, total: seen.append((done, total)))
    assert result.engine == "espeak" and result.fallback_from == "flaky"
    # Sentences 1-3 (the 2nd and 3rd by espeak), then all three again by espeak.
    assert seen == [(1, 3), (2, 3), (3, 3)] * 2


def test_without_fallback_the_failure_is_raised(tmp_path: Path) -> None:
    renderer = Renderer(MediaStore(tmp_path), RenderSettings(fallback_engine=None))
    with pytest.raises(EngineUnavailable, match="no network"):
        renderer.render_text(TEXT, engine="flaky")
    assert list(renderer.store.tmp_dir.iterdir()) == []


def test_gtts_offline_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gtts import gTTSError

    def offline(self: object) -> Iterator[bytes]:
        raise gTTSError("Failed to connect")

    monkeypatch.setattr("gtts.gTTS.stream", offline)
    renderer = Renderer(MediaStore(tmp_path), RenderSettings(engine="gtts"))
    result = renderer.render_text("Xin chào bà con.")
    assert (result.engine, result.fallback_from) == ("espeak", "gtts")
