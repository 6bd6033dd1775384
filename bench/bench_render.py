"""Render speed of announcements against bare espeak-ng synthesis of the same text."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio import MediaStore, Renderer, RenderSettings, normalize
from audio.engines.espeak import EspeakEngine

# About 60 words of a typical commune notice; ten of them make the long one.
PARAGRAPH = (
    "UBND xã thông báo: từ 7h30 đến 11h ngày 15-17/3, trạm y tế xã tổ chức tiêm phòng cho "
    "trẻ em dưới 5 tuổi tại nhà văn hóa thôn. Đề nghị các gia đình đưa con em đến đúng giờ, "
    "mang theo sổ tiêm chủng và thẻ BHYT. Mọi thắc mắc xin liên hệ ĐT 0912.345.678 hoặc "
    "cán bộ y tế thôn để được hướng dẫn."
)
TEXTS = {"~60 words": PARAGRAPH, "~600 words": " ".join([PARAGRAPH] * 10)}


def bare_espeak(text: str, engine: EspeakEngine) -> tuple[float, float]:
    """Seconds spent and seconds of audio for the raw library call alone."""
    started = time.perf_counter()
    pcm, rate = engine.synthesize_pcm(text)
    return time.perf_counter() - started, len(pcm) / 2 / rate


def first_sentence_s(renderer: Renderer, text: str, work: Path) -> float:
    """Seconds until the first sentence's speech exists (what a progress display shows first)."""
    started = time.perf_counter()
    next(renderer.render_sentences(text, work))
    return time.perf_counter() - started


def main() -> None:
    engine = EspeakEngine()
    engine.synthesize_pcm("khởi động")  # first call loads the library; not part of the timing
    header = f"{'text':<11} {'words':>5} {'audio s':>8} {'render s':>9} {'RTF':>7}"
    header += f" {'espeak s':>9} {'RTF':>7} {'speech s':>9} {'1st sent. s':>11}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as root:
        renderer = Renderer(MediaStore(Path(root)), RenderSettings())
        for label, text in TEXTS.items():
            result = renderer.render_text(text)
            render_s = result.render_ms / 1000
            raw_s, speech_s = bare_espeak(text, engine)
            first_s = first_sentence_s(renderer, text, Path(root) / "tmp")
            print(
                f"{label:<11} {len(text.split()):>5} {result.duration_s:>8.1f} {render_s:>9.3f}"
                f" {render_s / result.duration_s:>7.4f} {raw_s:>9.3f} {raw_s / speech_s:>7.4f}"
                f" {speech_s:>9.1f} {first_s:>11.3f}"
            )
    print("\nRTF = processing time / audio duration; render includes normalisation, chime,")
    print("loudness passes and MP3 encoding; bare espeak is the ctypes synthesis alone")
    print("of the whole text in one call; 1st sent. is when the first sentence's speech is ready.")
    print(
        f"(on the raw text, normalised: {len(normalize(PARAGRAPH).split())} words per paragraph)."
    )


if __name__ == "__main__":
    main()
