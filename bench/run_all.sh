#!/usr/bin/env bash
# Every benchmark, one after the other; each prints its tables (docs/benchmarks.md holds the
# figures with the machine described). Takes about two hours on 2 cores.
# Usage: bash bench/run_all.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-results-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
PY=.venv/bin/python
status=0
run() {
  local name="$1"; shift
  echo "== $name: $*" | tee -a "$out/summary.txt"
  if ! "$PY" "$@" > "$out/$name.md" 2> "$out/$name.log"; then
    echo "   FAILED (see $out/$name.log)" | tee -a "$out/summary.txt"
    status=1
  fi
}
run normalize   bench/bench_normalize.py
run render      bench/bench_render.py
run loudness    bench/bench_loudness.py
run broadcast   bench/bench_broadcast.py 20 200
run schedules   bench/bench_schedules.py 100 10000
run ingest      bench/bench_ingest.py
run ingest-pg   bench/bench_ingest.py --postgres
run offline     bench/bench_offline_alarm.py
run trust       bench/bench_trust.py
run node-alert  bench/bench_node_alert.py 500
run alert       bench/bench_alert.py --with-5000
run live        bench/bench_live.py
run relay       bench/bench_relay.py
run scale       bench/bench_scale.py 10000
run node-list   bench/bench_node_list.py 10000
run planning    bench/bench_planning.py
run live-start  bench/bench_live_start.py 1000
run mobile-data bench/bench_mobile_data.py
# Two hours on its own: bench/bench_soak.py (not run here)
echo "results in $out/" | tee -a "$out/summary.txt"
exit $status
