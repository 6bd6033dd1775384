#!/usr/bin/env bash
# Start everything on embedded defaults: broker, SQLite, controller, web server, 20 simulated nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/radio demo "$@"
