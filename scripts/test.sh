#!/usr/bin/env bash
# Run the whole test suite with real brokers, databases, ffmpeg, espeak-ng and chromium, in two
# passes, in parallel processes (pytest-xdist):
#   SQLite      every test, on SQLite;
#   PostgreSQL  the tests whose behaviour can differ by database (marked `sql`: stores,
#               ingestion, locks, leadership, migrations, an end-to-end smoke set) and those
#               that need PostgreSQL, on PostgreSQL (production mode).
# Both passes always run; the script fails if either does, or if the code checks (ruff, mypy)
# fail. RADIO_TEST_DATABASE=sqlite|postgres runs one pass only; RADIO_TEST_WORKERS sets the
# number of processes (default: 4). Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
# CI machines run PostgreSQL on 127.0.0.1:5432.
if [ -z "${RADIO_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export RADIO_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
fi
pytest=(.venv/bin/python -m pytest -n "${RADIO_TEST_WORKERS:-4}" --dist worksteal -rs)
if [ -n "${RADIO_TEST_DATABASE:-}" ]; then
  exec "${pytest[@]}" "$@"
fi
status=0
if [ -f scripts/check.sh ]; then
  echo "== code checks (ruff, mypy)"
  bash scripts/check.sh || { echo "== code checks FAILED"; status=1; }
fi
echo "== tests on SQLite"
RADIO_TEST_DATABASE=sqlite "${pytest[@]}" "$@" || { echo "== SQLite pass FAILED"; status=1; }
if [ -n "${RADIO_TEST_POSTGRES_URL:-}" ]; then
  echo "== tests on PostgreSQL"
  RADIO_TEST_DATABASE=postgres "${pytest[@]}" "$@" || { echo "== PostgreSQL pass FAILED"; status=1; }
elif [ "${CI:-}" = "true" ]; then
  echo "== no PostgreSQL server answered: under CI that is a failure (the PostgreSQL pass did not run)"
  status=1
else
  echo "== no PostgreSQL server answered: the PostgreSQL pass did not run"
fi
exit "$status"
