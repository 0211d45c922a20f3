#!/usr/bin/env bash
# graphile-worker's model against the real graphile-worker and against skip_locked, in the
# strict tier: the server-side cost per job of the model (with and without qbench's
# completion record) and of the real library (bench/libraries/graphile_worker), the
# burn-down of the model (and its variants), the real library and skip_locked at 20
# workers, alternating on one server, and the latency of a cold run at a modest rate with LISTEN/NOTIFY (graphile-worker's
# default wakeup). A benchmark, not a test: it reports what it saw (BENCHMARKS.md,
# "graphile-worker").
#
#   bash bench/graphile_worker.sh
#
# Needs Node (20+) and npm's registry for the real library. Knobs (environment): JOBS
# (cost: 5000), BURNDOWN (30000 jobs), REPEATS (3), RATE (cold runs: 150 jobs/s),
# DURATION (30 s), OUT (results/graphile_worker).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-5000}
BURNDOWN=${BURNDOWN:-30000}
REPEATS=${REPEATS:-3}
RATE=${RATE:-150}
DURATION=${DURATION:-30}
OUT=${OUT:-results/graphile_worker}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
mkdir -p "$OUT"
npm ci --prefix bench/libraries/graphile_worker --no-audit --no-fund --silent
DRIVER=(--driver "node bench/libraries/graphile_worker/driver.mjs"
  --driver-name "graphile-worker 0.17.3" --driver-tables '^_private_(jobs|job_queues|tasks)$')

echo "== server-side cost per job: $JOBS jobs one per call, one worker; the model, then the real library"
for r in $(seq 1 "$REPEATS"); do
  "$Q" --local -q cost --queue skip_locked,graphile_worker --jobs "$JOBS" \
    --out "$OUT/cost_$r" "${DRIVER[@]}"
  "$Q" --local -q --graphile-completion-record off cost --queue graphile_worker \
    --jobs "$JOBS" --out "$OUT/cost_norecord_$r"
done

# name|extra flags|queue ("driver": the real library)
RUNS=(
  "skip_locked||skip_locked"
  "graphile_worker||graphile_worker"
  "graphile_worker+norecord|--graphile-completion-record off|graphile_worker"
  "graphile_worker+batch=250ms|--graphile-complete-batch-delay 250|graphile_worker"
  "graphile-worker 0.17.3 (real)||driver"
)
echo "== burn-down: $BURNDOWN jobs, 20 workers (the real library: concurrency 20), 0 ms of work, notify, $REPEATS rounds, alternating"
# Servers that outlive one command, so that the real library drains the same server.
eval "$("$Q" local start)"
trap '"$Q" local stop >/dev/null 2>&1 || true' EXIT
QBENCH_SCHEMA=$(psql -qtA -c 'SELECT current_schema()') node bench/libraries/graphile_worker/driver.mjs setup
for r in $(seq 1 "$REPEATS"); do
  for run in "${RUNS[@]}"; do
    IFS='|' read -r name extra queue <<<"$run"
    if [ "$queue" = driver ]; then
      QBENCH_SCHEMA=$(psql -qtA -c 'SELECT current_schema()') \
        node bench/libraries/graphile_worker/driver.mjs burndown "$BURNDOWN" 20 \
        2>/dev/null >"$OUT/burndown_${name}_$r.json"
    else
      # shellcheck disable=SC2086
      "$Q" -q --workers 20 --processing-ms 0 --wakeup notify $extra work --queue "$queue" \
        --burndown "$BURNDOWN" --json >"$OUT/burndown_${name}_$r.json"
    fi
  done
done
python3 bench/burndown_table.py "$OUT" "$REPEATS" "${RUNS[@]}"
"$Q" local stop >/dev/null

echo "== cold, $RATE jobs/s for $DURATION s, 20 workers × 10 ms, --wakeup notify, $REPEATS repeats"
"$Q" --local -q run-suite --backend pg --queues skip_locked,graphile_worker --scenarios cold \
  --rate "$RATE" --duration "$DURATION" --wakeup notify --repeat "$REPEATS" \
  --out "$OUT/cold" >/dev/null
python3 - "$OUT/cold/analysis/summary.csv" <<'PY'
import csv, sys
cols = ["test", "throughput_jobs_s", "queue_wait_p50_ms", "p50_ms", "p99_ms", "audit"]
print(" ".join(f"{c:>18}" for c in cols))
for r in csv.DictReader(open(sys.argv[1])):
    print(" ".join(f"{r.get(c, ''):>18}" for c in cols))
PY
