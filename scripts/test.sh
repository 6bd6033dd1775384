#!/usr/bin/env bash
# Run the whole test suite with real brokers, databases, ffmpeg and espeak-ng.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# PostgreSQL tests run when a server answers; CI machines run one on 127.0.0.1:5432.
if [ -z "${RADIO_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export RADIO_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
fi
exec .venv/bin/python -m pytest "$@"
