"""The announcement sentence sets, shared by the tests and the benchmark.

normalize_cases.tsv is our own set (its sentences were used to write the rules);
announcements_independent.tsv is the independent set of issue 21, with the source kind
of each sentence, kept apart from the rules' examples.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CASES_PATH", "INDEPENDENT_PATH", "load_cases", "load_independent"]

CASES_PATH = Path(__file__).with_name("normalize_cases.tsv")
INDEPENDENT_PATH = Path(__file__).with_name("announcements_independent.tsv")


def _rows(path: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("written\tspoken"):
            continue
        rows.append(line.split("\t"))
    return rows


def load_cases(path: Path = CASES_PATH) -> list[tuple[str, str]]:
    """(written, spoken) pairs; lines starting with "#" and the header are skipped."""
    return [(written, spoken) for written, spoken in _rows(path)]


def load_independent(path: Path = INDEPENDENT_PATH) -> list[tuple[str, str, str]]:
    """(written, spoken, kind) triples of the independent announcement set."""
    return [(written, spoken, kind) for written, spoken, kind in _rows(path)]
