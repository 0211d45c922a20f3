#!/usr/bin/env bash
# pg-boss's model against the real pg-boss and against skip_locked, in the strict tier:
# the server-side cost per job of the model (shared job_common, and its own partition) and
# of the real library (bench/libraries/pg_boss); the drain at pg-boss's defaults (a
# 2-s sleep after each fetch: its protocol's bound) of the model and the real library;
# the burn-down of the model, the real library (both batchSize 10 with
# burstWhenBatchFull) and skip_locked at 20 workers, alternating on one server; and the
# latency of a cold run at a rate below the defaults' bound. A benchmark, not a test: it
# reports what it saw (BENCHMARKS.md, "pg-boss").
#
#   bash bench/pg_boss.sh
#
# Needs Node and npm's registry for the real library (pg-boss 12.27.0 asks for Node 22;
# it ran on this machine's Node 20). Knobs (environment): JOBS (cost: 5000), BURNDOWN
# (30000 jobs), SLOW (jobs drained at the defaults: 200), REPEATS (3), RATE (cold
# runs: 5 jobs/s), DURATION (60 s), OUT (results/pg_boss).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-5000}
BURNDOWN=${BURNDOWN:-30000}
SLOW=${SLOW:-200}
REPEATS=${REPEATS:-3}
RATE=${RATE:-5}
DURATION=${DURATION:-60}
OUT=${OUT:-results/pg_boss}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
mkdir -p "$OUT"
npm ci --prefix bench/libraries/pg_boss --no-audit --no-fund --silent
DRIVER=(--driver "node bench/libraries/pg_boss/driver.mjs" --driver-name "pg-boss 12.27.0"
  --driver-tables '^(job_common|queue|version|schedule|subscription|bam|warning|job_dependency)$')

# The model's cost runs one worker's fetches back to back: its 2-s sleep would make 5,000
# jobs last three hours, and changes no statement. The driver calls fetch and complete
# (the statements work()'s loop runs) without the sleep.
echo "== server-side cost per job: $JOBS jobs one send each, one worker; the model, then the real library"
for r in $(seq 1 "$REPEATS"); do
  "$Q" --local -q --pg-boss-polling-interval 1 cost --queue skip_locked,pg_boss --jobs "$JOBS" \
    --out "$OUT/cost_$r" "${DRIVER[@]}"
  "$Q" --local -q --pg-boss-polling-interval 1 --pg-boss-partition on cost --queue pg_boss \
    --jobs "$JOBS" --out "$OUT/cost_partition_$r"
done

# Servers that outlive one command, so that the real library drains the same server.
eval "$("$Q" local start)"
trap '"$Q" local stop >/dev/null 2>&1 || true' EXIT
SCHEMA=$(psql -qtA -c 'SELECT current_schema()')
QBENCH_SCHEMA=$SCHEMA node bench/libraries/pg_boss/driver.mjs setup 2>/dev/null
# Each drain starts from an empty table, as qbench's burn-down (which resets its own).
boss() {
  psql -qc 'TRUNCATE job_common'
  QBENCH_SCHEMA=$SCHEMA PGBOSS_WORK="$1" node bench/libraries/pg_boss/driver.mjs burndown "$2" 20 2>/dev/null
}

# name|extra flags|queue ("driver": the real library, its work options after the colon)
SLOW_RUNS=(
  "pg_boss||pg_boss"
  "pg-boss 12.27.0 (real)||driver:{}"
)
echo "== at pg-boss's defaults (batch 1, a 2-s sleep after each fetch): $SLOW jobs, 20 workers, $REPEATS rounds"
for r in $(seq 1 "$REPEATS"); do
  "$Q" -q --workers 20 --processing-ms 0 work --queue pg_boss --burndown "$SLOW" --json \
    >"$OUT/burndown_pg_boss_$r.json"
  boss '{}' "$SLOW" >"$OUT/burndown_pg-boss 12.27.0 (real)_$r.json"
done
python3 bench/burndown_table.py "$OUT" "$REPEATS" "${SLOW_RUNS[@]}"

RUNS=(
  "skip_locked||skip_locked"
  "pg_boss+batch=10+burst|--dequeue-batch 10 --pg-boss-burst-when-batch-full on|pg_boss"
  "pg_boss+batch=10+burst+partition|--dequeue-batch 10 --pg-boss-burst-when-batch-full on --pg-boss-partition on|pg_boss"
  "pg-boss 12.27.0 batch=10+burst (real)||driver"
)
echo "== burn-down: $BURNDOWN jobs, 20 workers (the real library: localConcurrency 20), 0 ms of work, $REPEATS rounds, alternating"
for r in $(seq 1 "$REPEATS"); do
  for run in "${RUNS[@]}"; do
    IFS='|' read -r name extra queue <<<"$run"
    if [ "$queue" = driver ]; then
      boss '{"batchSize":10,"burstWhenBatchFull":true}' "$BURNDOWN" >"$OUT/burndown_${name}_$r.json"
    else
      # A layout change needs the queue made again.
      # shellcheck disable=SC2086
      "$Q" -q $extra setup-schema --queue "$queue" --reset >/dev/null
      # shellcheck disable=SC2086
      "$Q" -q --workers 20 --processing-ms 0 $extra work --queue "$queue" \
        --burndown "$BURNDOWN" --json >"$OUT/burndown_${name}_$r.json"
    fi
  done
done
python3 bench/burndown_table.py "$OUT" "$REPEATS" "${RUNS[@]}"
"$Q" local stop >/dev/null

echo "== cold, $RATE jobs/s for $DURATION s, 20 workers × 10 ms, pg-boss's defaults (poll), $REPEATS repeats"
"$Q" --local -q run-suite --backend pg --queues skip_locked,pg_boss --scenarios cold \
  --rate "$RATE" --duration "$DURATION" --repeat "$REPEATS" --out "$OUT/cold" >/dev/null
python3 - "$OUT/cold/analysis/summary.csv" <<'PY'
import csv, sys
cols = ["test", "throughput_jobs_s", "queue_wait_p50_ms", "queue_wait_p99_ms", "p50_ms", "p99_ms", "audit"]
print(" ".join(f"{c:>18}" for c in cols))
for r in csv.DictReader(open(sys.argv[1])):
    print(" ".join(f"{r.get(c, ''):>18}" for c in cols))
PY
