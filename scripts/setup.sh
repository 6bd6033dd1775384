#!/usr/bin/env bash
# Prepare a fresh machine: a virtualenv in .venv with the project and its dependencies.
# Usage: scripts/setup.sh [--test]   (--test adds the test tools and the system packages tests use)
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=""
if [ "${1:-}" = "--test" ]; then
  extras="[test]"
  # Tests start their own Mosquitto; install it where it is missing (Debian, as root).
  if ! command -v mosquitto >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    else
      echo "warning: mosquitto is not installed; the Mosquitto tests will be skipped" >&2
    fi
  fi
  # The console's browser tests drive Debian's chromium; Playwright never downloads a browser.
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "warning: chromium is not installed; the console's browser tests will be skipped" >&2
    fi
  fi
fi
log="$(mktemp)"
# Quiet unless something fails: then show what pip said.
if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip \
       && .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
