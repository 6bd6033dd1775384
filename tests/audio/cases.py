"""The announcement sentences of normalize_cases.tsv, shared by the tests and the benchmark."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CASES_PATH", "load_cases"]

CASES_PATH = Path(__file__).with_name("normalize_cases.tsv")


def load_cases(path: Path = CASES_PATH) -> list[tuple[str, str]]:
    """(written, spoken) pairs; lines starting with "#" and the header are skipped."""
    cases: list[tuple[str, str]] = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line == "written\tspoken":
            continue
        written, spoken = line.split("\t")
        cases.append((written, spoken))
    return cases
