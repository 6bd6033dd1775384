#!/usr/bin/env bash
# Static checks: lint, formatting, types and the layering between packages. Runs every check, then fails if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
echo "== ruff check"
.venv/bin/ruff check . || status=1
echo "== ruff format --check"
.venv/bin/ruff format --check . || status=1
echo "== mypy"
.venv/bin/python -m mypy || status=1
echo "== import-linter (the layering: pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports --no-cache || status=1
exit "$status"
