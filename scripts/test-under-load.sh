#!/usr/bin/env bash
# The whole suite (scripts/test.sh, same arguments) while two busy processes keep both cores
# loaded: proof that no test depends on the machine being idle. RADIO_LOAD_PROCESSES sets how
# many busy processes run (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
busy=()
for _ in $(seq "${RADIO_LOAD_PROCESSES:-2}"); do
  python3 -c 'while True: pass' &
  busy+=("$!")
done
trap 'kill "${busy[@]}" 2>/dev/null' EXIT
echo "== ${#busy[@]} busy processes running: ${busy[*]}"
bash scripts/test.sh "$@"
