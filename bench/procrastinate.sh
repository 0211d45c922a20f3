#!/usr/bin/env bash
# Procrastinate's model against the real Procrastinate and against skip_locked, in the
# strict tier: the server-side cost per job of the model and of the real library
# (bench/libraries/procrastinate), each on servers of its own (they share table names);
# the burn-down of the model, the real library (in a schema of its own) and skip_locked at
# 20 workers, alternating on one server; and the latency of a cold run at a modest rate
# with LISTEN/NOTIFY (Procrastinate's default wakeup). A benchmark, not a test: it
# reports what it saw (BENCHMARKS.md, "Procrastinate").
#
#   bash bench/procrastinate.sh
#
# Needs Python 3 and PyPI for the real library. Knobs (environment): JOBS (cost: 5000),
# BURNDOWN (10000 jobs), REPEATS (3), RATE (cold runs: 150 jobs/s), DURATION (30 s),
# OUT (results/procrastinate).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-5000}
BURNDOWN=${BURNDOWN:-10000}
REPEATS=${REPEATS:-3}
RATE=${RATE:-150}
DURATION=${DURATION:-30}
OUT=${OUT:-results/procrastinate}
LIB=bench/libraries/procrastinate

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
mkdir -p "$OUT"
[ -x "$LIB/.venv/bin/python" ] || python3 -m venv "$LIB/.venv"
"$LIB/.venv/bin/pip" install -q -r "$LIB/requirements.txt"
PY="$LIB/.venv/bin/python $LIB/driver.py"

echo "== server-side cost per job: $JOBS jobs one defer each, one worker; the model, then the real library"
for r in $(seq 1 "$REPEATS"); do
  "$Q" --local -q cost --queue skip_locked,procrastinate --jobs "$JOBS" --out "$OUT/cost_$r"
  # skip_locked again beside the real library: its tables are its own.
  "$Q" --local -q cost --queue skip_locked --jobs "$JOBS" --out "$OUT/cost_real_$r" --driver "$PY" \
    --driver-name "Procrastinate 3.9.0" \
    --driver-tables '^procrastinate_(jobs|events|periodic_defers|workers)$'
done

# Servers that outlive one command, so that the real library drains the same server.
eval "$("$Q" local start)"
trap '"$Q" local stop >/dev/null 2>&1 || true' EXIT
real() { QBENCH_SCHEMA=procrastinate_real $PY "$@"; }
real setup

# name|extra flags|queue ("driver": the real library)
RUNS=(
  "skip_locked||skip_locked"
  "procrastinate||procrastinate"
  "Procrastinate 3.9.0 (real)||driver"
)
echo "== burn-down: $BURNDOWN jobs, 20 workers (the real library: concurrency 20), 0 ms of work, notify, $REPEATS rounds, alternating"
for r in $(seq 1 "$REPEATS"); do
  for run in "${RUNS[@]}"; do
    IFS='|' read -r name extra queue <<<"$run"
    if [ "$queue" = driver ]; then
      real burndown "$BURNDOWN" 20 >"$OUT/burndown_${name}_$r.json"
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
"$Q" --local -q run-suite --backend pg --queues skip_locked,procrastinate --scenarios cold \
  --rate "$RATE" --duration "$DURATION" --wakeup notify --repeat "$REPEATS" \
  --out "$OUT/cold" >/dev/null
python3 - "$OUT/cold/analysis/summary.csv" <<'PY'
import csv, sys
cols = ["test", "throughput_jobs_s", "queue_wait_p50_ms", "queue_wait_p99_ms", "p50_ms", "p99_ms", "audit"]
print(" ".join(f"{c:>18}" for c in cols))
for r in csv.DictReader(open(sys.argv[1])):
    print(" ".join(f"{r.get(c, ''):>18}" for c in cols))
PY
