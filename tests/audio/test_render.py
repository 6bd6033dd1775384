"""The renderer: text to stored MP3 once, cache hits, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio import AudioError, MediaStore, Renderer, RenderSettings, measure


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    return Renderer(MediaStore(tmp_path / "media"), RenderSettings())


def test_render_then_cache_hit(renderer: Renderer) -> None:
    text = "UBND xã thông báo: lúc 7h30 ngày 2/9 họp tại hội trường."
    first = renderer.render_text(text)
    assert not first.cached
    assert first.normalized_text.startswith("ủy ban nhân dân xã thông báo: lúc bảy giờ")
    assert (first.engine, first.voice) == ("espeak", "vi")
    path = renderer.store.path_for(first.sha256)
    assert path is not None and path.stat().st_size == first.size
    assert abs(measure(path).integrated_lufs + 16.0) <= 1.0
    assert first.true_peak_dbtp <= -1.5
    assert first.duration_s > 3.0

    second = renderer.render_text(text)
    assert second.cached and second.sha256 == first.sha256
    assert second.render_ms < first.render_ms
    # Intermediates live under the store root and are removed.
    assert list(renderer.store.tmp_dir.iterdir()) == []


def test_same_spoken_text_shares_the_render(renderer: Renderer) -> None:
    first = renderer.render_text("Họp lúc 14:00.")
    assert renderer.render_text("Họp lúc 14h00.").cached
    assert renderer.render_text("Họp lúc 14h00.").sha256 == first.sha256


def test_settings_change_the_cache_key(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    slow = Renderer(store, RenderSettings(rate_wpm=120))
    fast = Renderer(store, RenderSettings(rate_wpm=180))
    assert slow.cache_key("xin chào", "espeak") != fast.cache_key("xin chào", "espeak")


def test_extra_abbreviations_reach_the_speech(renderer: Renderer) -> None:
    result = renderer.render_text("Họp KDC số 3.", extra_abbreviations={"KDC": "khu dân cư"})
    assert result.normalized_text == "Họp khu dân cư số ba."


@pytest.mark.parametrize("text", ["", "   ", "\n - \n", "!!!"])
def test_empty_text_is_refused(renderer: Renderer, text: str) -> None:
    with pytest.raises(AudioError, match="empty"):
        renderer.render_text(text)


def test_too_long_text_is_refused(tmp_path: Path) -> None:
    renderer = Renderer(MediaStore(tmp_path), RenderSettings(max_chars=100))
    with pytest.raises(AudioError, match="limit is 100"):
        renderer.render_text("xin chào " * 20)


def test_unknown_engine_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="known engines"):
        renderer.render_text("xin chào", engine="nope")


def test_long_text_is_spoken_sentence_by_sentence_with_progress(renderer: Renderer) -> None:
    text = "Thông báo lịch họp. Chiều nay 14h họp tại hội trường. Đề nghị bà con đến đúng giờ!"
    seen: list[tuple[int, int]] = []
    result = renderer.render_text(text, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)] and result.sentences == 3
    seen.clear()
    assert renderer.render_text(text, progress=lambda d, t: seen.append((d, t))).cached
    assert seen == [(3, 3)]


def test_render_sentences_yields_the_first_sentence_first(
    renderer: Renderer, tmp_path: Path
) -> None:
    sentences = renderer.render_sentences("Xin chào bà con. Họp lúc 7h30.", tmp_path)
    first = next(sentences)
    assert (first.index, first.total, first.engine) == (0, 2, "espeak")
    assert first.text == "Xin chào bà con." and first.wav.stat().st_size > 1000
    rest = list(sentences)
    assert [part.text for part in rest] == ["Họp lúc bảy giờ ba mươi phút."]
