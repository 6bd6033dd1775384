"""Text normalisation accuracy: ours beside other Vietnamese normalisers, in the same run.

Two sets: our own 66 sentences (tests/audio/normalize_cases.tsv, used to write the rules) and
the independent set of issue 21 (tests/audio/announcements_independent.tsv), reported per
source kind. The PyPI normalisers are optional: install them into the venv for the bench only
(pip install sea-g2p vietnormalizer vinorm; vinorm needs Java).
"""

from __future__ import annotations

import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio import normalize
from tests.audio.cases import load_cases, load_independent

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
    try:
        from vinorm import TTSnorm

        TTSnorm("1")  # runs its Java helper: fails here when Java is missing
        found["vinorm"] = lambda text: str(TTSnorm(text))
    except Exception as exc:
        found["vinorm"] = f"not measured: {exc} (needs Java; does not install on Python 3.12+)"
    return found


class Score:
    """Exact sentences and word errors of one normaliser on a group of sentences."""

    def __init__(self) -> None:
        self.sentences = self.exact = self.errors = self.reference_words = 0

    def add(self, got: str, spoken: str) -> None:
        self.sentences += 1
        self.exact += words(got) == words(spoken)
        self.errors += edit_distance(words(got), words(spoken))
        self.reference_words += len(words(spoken))

    def __str__(self) -> str:
        exact = self.exact / self.sentences
        return f"{exact:>7.1%} {1 - self.errors / self.reference_words:>9.1%}"


def measure(
    candidate: Normaliser, cases: list[tuple[str, str, str]]
) -> tuple[dict[str, Score], float]:
    """Scores per kind (and "all"), and milliseconds per sentence."""
    scores: dict[str, Score] = defaultdict(Score)
    started = time.perf_counter()
    readings = [candidate(written) for written, _, _ in cases]
    per_sentence_ms = (time.perf_counter() - started) * 1000 / len(cases)
    for (_, spoken, kind), got in zip(cases, readings, strict=True):
        scores[kind].add(got, spoken)
        scores["all"].add(got, spoken)
    return scores, per_sentence_ms


def main() -> None:
    own = [(written, spoken, "all") for written, spoken in load_cases()]
    independent = load_independent()
    found = candidates()
    measured = {name: c for name, c in found.items() if not isinstance(c, str)}
    for name, why in found.items():
        if isinstance(why, str):
            print(f"{name}: {why}")
    for title, cases in (
        (f"{len(own)} sentences of our own set (tests/audio/normalize_cases.tsv)", own),
        (f"{len(independent)} sentences of the independent set "
         "(tests/audio/announcements_independent.tsv)", independent),
    ):  # fmt: skip
        print(f"\n{title}\n")
        results = {name: measure(candidate, cases) for name, candidate in measured.items()}
        header = f"{'normaliser':<24} {'exact':>7} {'word acc.':>9} {'ms/sent.':>8}"
        print(header)
        print("-" * len(header))
        for name, (scores, ms) in results.items():
            print(f"{name:<24} {scores['all']} {ms:>8.2f}")
        kinds = sorted({kind for _, _, kind in cases} - {"all"})
        if not kinds:
            continue
        print("\nper kind: exact sentences / word accuracy\n")
        print(f"{'kind':<14} {'n':>4} " + " ".join(f"{name[:18]:>19}" for name in results))
        for kind in [*kinds, "all"]:
            n = results[next(iter(results))][0][kind].sentences
            cells = []
            for scores, _ in results.values():
                score = scores[kind]
                cells.append(
                    f"{score.exact / n:>7.1%} / {1 - score.errors / score.reference_words:>6.1%}"
                )
            print(f"{kind:<14} {n:>4} " + " ".join(f"{cell:>19}" for cell in cells))
    print("\nexact = every word right (case and punctuation ignored); word acc. = 1 - WER.")
    if "--show" in sys.argv:
        for written, spoken, kind in independent:
            got = normalize(written)
            if words(got) != words(spoken):
                print(f"\n[{kind}] {written}\n  got:  {got}\n  want: {spoken}")


if __name__ == "__main__":
    main()
