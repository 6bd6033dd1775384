"""Text normalisation accuracy on the announcement set: ours beside other Vietnamese normalisers."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio import normalize
from tests.audio.cases import load_cases

Normaliser = Callable[[str], str]
_PUNCTUATION = re.compile(r"[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-case words with punctuation dropped: what a listener can tell apart."""
    return _PUNCTUATION.sub(" ", text.lower()).split()


def edit_distance(left: list[str], right: list[str]) -> int:
    """Word-level Levenshtein distance."""
    previous = list(range(len(right) + 1))
    for i, word in enumerate(left, start=1):
        current = [i]
        for j, other in enumerate(right, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (word != other)))  # fmt: skip
        previous = current
    return previous[-1]


def candidates() -> dict[str, Normaliser | str]:
    """Each normaliser, or why it is not measured."""
    found: dict[str, Normaliser | str] = {"ours (audio.normalize)": normalize}
    try:
        from sea_g2p import Normalizer

        found["sea-g2p Normalizer"] = Normalizer(lang="vi").normalize
    except Exception as exc:  # any failure to load only removes it from the table
        found["sea-g2p Normalizer"] = f"not measured: {exc}"
    try:
        from vietnormalizer import VietnameseNormalizer

        found["vietnormalizer"] = VietnameseNormalizer().normalize
    except Exception as exc:
        found["vietnormalizer"] = f"not measured: {exc}"
    found["vinorm"] = "not measured: needs Java and does not install on Python 3.12+"
    return found


def main() -> None:
    cases = load_cases()
    print(f"{len(cases)} announcement sentences (tests/audio/normalize_cases.tsv)\n")
    header = f"{'normaliser':<24} {'exact':>7} {'word acc.':>9} {'ms/sent.':>8}"
    print(header)
    print("-" * len(header))
    for name, candidate in candidates().items():
        if isinstance(candidate, str):
            print(f"{name:<24} {candidate}")
            continue
        exact, errors, reference_words = 0, 0, 0
        started = time.perf_counter()
        for written, spoken in cases:
            got = candidate(written)
            exact += words(got) == words(spoken)
            errors += edit_distance(words(got), words(spoken))
            reference_words += len(words(spoken))
        per_sentence_ms = (time.perf_counter() - started) * 1000 / len(cases)
        print(f"{name:<24} {exact / len(cases):>7.1%} {1 - errors / reference_words:>9.1%}"
              f" {per_sentence_ms:>8.2f}")  # fmt: skip
    print("\nexact = every word right (case and punctuation ignored); word acc. = 1 - WER.")


if __name__ == "__main__":
    main()
