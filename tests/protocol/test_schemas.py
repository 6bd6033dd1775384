"""docs/schemas holds the JSON Schemas generated from the models; they must not drift."""

from __future__ import annotations

from pathlib import Path

from protocol.schema import schemas

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_published_schemas_match_the_models() -> None:
    for name, text in schemas().items():
        path = DOCS / f"{name}.schema.json"
        assert path.exists(), f"{path} missing: run python -m protocol.schema"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python -m protocol.schema"
        )
