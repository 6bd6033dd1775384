#!/usr/bin/env bash
# Run the whole test suite with real brokers, databases, ffmpeg, espeak-ng and chromium, in two
# passes, in parallel processes (pytest-xdist):
#   SQLite      every test, on SQLite;
#   PostgreSQL  the tests whose behaviour can differ by database (marked `sql`: stores,
#               ingestion, locks, leadership, migrations, an end-to-end smoke set) and those
#               that need PostgreSQL, on PostgreSQL (production mode).
# Both passes always run, at the same time; the script fails if either does, or if the code
# checks (ruff, mypy) fail. RADIO_TEST_DATABASE=sqlite|postgres runs one pass only;
# RADIO_TEST_WORKERS sets the number of processes (default: 4; the PostgreSQL pass beside the
# SQLite one has RADIO_TEST_PG_WORKERS, default 2). Extra arguments go to pytest.
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
# The two passes run at the same time (the PostgreSQL one on fewer processes): on two cores
# that takes about a tenth less wall time than one after the other. The PostgreSQL pass's
# output is printed once the SQLite pass is done.
pg_log=""
if [ -n "${RADIO_TEST_POSTGRES_URL:-}" ]; then
  pg_log="$(mktemp -t radio-test-postgres.XXXXXX)"
  RADIO_TEST_DATABASE=postgres .venv/bin/python -m pytest -n "${RADIO_TEST_PG_WORKERS:-2}" \
    --dist worksteal -rs "$@" >"$pg_log" 2>&1 &
  pg_pid=$!
  trap 'kill "$pg_pid" 2>/dev/null; exit 130' INT TERM
fi
if [ -f scripts/check.sh ]; then
  echo "== code checks (ruff, mypy)"
  bash scripts/check.sh || { echo "== code checks FAILED"; status=1; }
fi
echo "== tests on SQLite"
RADIO_TEST_DATABASE=sqlite "${pytest[@]}" "$@" || { echo "== SQLite pass FAILED"; status=1; }
if [ -n "$pg_log" ]; then
  wait "$pg_pid"; pg_status=$?
  echo "== tests on PostgreSQL"
  cat "$pg_log"; rm -f "$pg_log"
  [ "$pg_status" -eq 0 ] || { echo "== PostgreSQL pass FAILED"; status=1; }
elif [ "${CI:-}" = "true" ]; then
  echo "== no PostgreSQL server answered: under CI that is a failure (the PostgreSQL pass did not run)"
  status=1
else
  echo "== no PostgreSQL server answered: the PostgreSQL pass did not run"
fi
exit "$status"
