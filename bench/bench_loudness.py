"""Loudness of rendered announcements, each measured again on its own with ffmpeg's ebur128,
beside what the renderer measured in-process and how many MP3 encodes each render took."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audio.pcm_master
from audio import MediaStore, Renderer, RenderSettings, measure
from tests.audio.cases import load_cases

TARGET_LUFS = -16.0
TOLERANCE_LU = 1.0
PEAK_CEILING_DBTP = -1.5


def texts() -> list[str]:
    """Short, medium and long announcements: single sentences and joined paragraphs."""
    sentences = [written for written, _ in load_cases()]
    short = ["Xin chào bà con.", "Mất điện.", "Họp lúc 14h."]
    singles = sentences[:12]
    paragraphs = [" ".join(sentences[i : i + 4]) for i in range(12, 36, 4)]
    return [*short, *singles, *paragraphs, " ".join(sentences[36:])]


def count_encodes() -> list[int]:
    """Wraps the mastering's one call to ffmpeg's encoder; the list's length is the count."""
    calls: list[int] = []
    encode = audio.pcm_master._encode

    def counted(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        encode(*args, **kwargs)

    audio.pcm_master._encode = counted
    return calls


def main() -> None:
    chosen = texts()
    encodes = count_encodes()
    header = f"{'#':>2} {'words':>5} {'dur. s':>7} {'LUFS':>7} {'dBTP':>6}  ok"
    header += f" {'own LUFS':>8} {'own dBTP':>8} {'encodes':>7}"
    print(header)
    print("-" * len(header))
    failures = 0
    worst_lu = worst_db = 0.0
    with tempfile.TemporaryDirectory() as root:
        renderer = Renderer(MediaStore(Path(root)), RenderSettings())
        for index, text in enumerate(chosen, start=1):
            before = len(encodes)
            result = renderer.render_text(text)
            path = renderer.store.path_for(result.sha256)
            assert path is not None
            level = measure(path)
            ok = (abs(level.integrated_lufs - TARGET_LUFS) <= TOLERANCE_LU
                  and level.true_peak_dbtp < PEAK_CEILING_DBTP)  # fmt: skip
            failures += not ok
            worst_lu = max(worst_lu, abs(result.integrated_lufs - level.integrated_lufs))
            worst_db = max(worst_db, abs(result.true_peak_dbtp - level.true_peak_dbtp))
            print(f"{index:>2} {len(text.split()):>5} {level.duration_s:>7.1f}"
                  f" {level.integrated_lufs:>7.2f} {level.true_peak_dbtp:>6.2f}"
                  f"  {'yes' if ok else 'NO ':<3} {result.integrated_lufs:>8.2f}"
                  f" {result.true_peak_dbtp:>8.2f} {len(encodes) - before:>7}")  # fmt: skip
    verdict = "all" if failures == 0 else f"{len(chosen) - failures} of {len(chosen)}"
    print(f"\n{verdict} within ±{TOLERANCE_LU:g} LU of {TARGET_LUFS:g} LUFS and under "
          f"{PEAK_CEILING_DBTP:g} dBTP ({len(chosen)} renders, chime included), "
          f"{len(encodes)} encodes; in-process against ffmpeg: at most {worst_lu:.2f} LU "
          f"and {worst_db:.2f} dB apart (ffmpeg prints both to 0.1).")  # fmt: skip


if __name__ == "__main__":
    main()
