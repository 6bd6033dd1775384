"""Loudness of rendered announcements, each measured again on its own with ffmpeg's ebur128."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def main() -> None:
    chosen = texts()
    header = f"{'#':>2} {'words':>5} {'dur. s':>7} {'LUFS':>7} {'dBTP':>6}  ok"
    print(header)
    print("-" * len(header))
    failures = 0
    with tempfile.TemporaryDirectory() as root:
        renderer = Renderer(MediaStore(Path(root)), RenderSettings())
        for index, text in enumerate(chosen, start=1):
            result = renderer.render_text(text)
            path = renderer.store.path_for(result.sha256)
            assert path is not None
            level = measure(path)
            ok = (abs(level.integrated_lufs - TARGET_LUFS) <= TOLERANCE_LU
                  and level.true_peak_dbtp < PEAK_CEILING_DBTP)  # fmt: skip
            failures += not ok
            print(f"{index:>2} {len(text.split()):>5} {level.duration_s:>7.1f}"
                  f" {level.integrated_lufs:>7.2f} {level.true_peak_dbtp:>6.2f}"
                  f"  {'yes' if ok else 'NO'}")  # fmt: skip
    verdict = "all" if failures == 0 else f"{len(chosen) - failures} of {len(chosen)}"
    print(f"\n{verdict} within ±{TOLERANCE_LU:g} LU of {TARGET_LUFS:g} LUFS and under "
          f"{PEAK_CEILING_DBTP:g} dBTP ({len(chosen)} renders, chime included).")  # fmt: skip


if __name__ == "__main__":
    main()
