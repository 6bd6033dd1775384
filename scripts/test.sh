#!/usr/bin/env bash
# Run the whole test suite with real brokers, databases, ffmpeg and espeak-ng: once on SQLite
# and, when a PostgreSQL server answers, once more with every test on PostgreSQL (production
# mode). RADIO_TEST_DATABASE=sqlite|postgres runs one pass only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# CI machines run PostgreSQL on 127.0.0.1:5432.
if [ -z "${RADIO_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export RADIO_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
fi
if [ -n "${RADIO_TEST_DATABASE:-}" ]; then
  exec .venv/bin/python -m pytest "$@"
fi
echo "== tests on SQLite"
RADIO_TEST_DATABASE=sqlite .venv/bin/python -m pytest "$@"
if [ -n "${RADIO_TEST_POSTGRES_URL:-}" ]; then
  echo "== tests on PostgreSQL"
  RADIO_TEST_DATABASE=postgres .venv/bin/python -m pytest "$@"
else
  echo "== no PostgreSQL server answered: the PostgreSQL pass did not run"
fi
