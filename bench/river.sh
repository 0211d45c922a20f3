#!/usr/bin/env bash
# River's model against skip_locked in the strict tier: the server-side cost per job, the
# burn-down at River's default fetch (FetchCooldown 100 ms) with 20, 200 and 1,000 worker
# slots and with a 10-ms cooldown, alternating with skip_locked at 20 workers, and the
# latency of a cold run at a modest rate with LISTEN/NOTIFY (River's default wakeup). A
# benchmark, not a test: it reports what it saw (BENCHMARKS.md, "River").
#
#   bash bench/river.sh
#
# Knobs (environment): JOBS (cost: 3000), BURNDOWN (10000 jobs), REPEATS (3), RATE (cold
# runs: 150 jobs/s), DURATION (30 s), OUT (results/river).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-3000}
BURNDOWN=${BURNDOWN:-10000}
REPEATS=${REPEATS:-3}
RATE=${RATE:-150}
DURATION=${DURATION:-30}
OUT=${OUT:-results/river}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== server-side cost per job: $JOBS jobs one per call, one worker"
"$Q" --local -q cost --queue skip_locked,pgmq,river --jobs "$JOBS" --out "$OUT/cost"

# name|workers|extra flags|queue
RUNS=(
  "skip_locked@20|20||skip_locked"
  "river@20|20||river"
  "river@200|200||river"
  "river@1000|1000||river"
  "river+cooldown=10ms@20|20|--river-fetch-cooldown 10 --river-fetch-poll-interval 100|river"
)
echo "== burn-down: $BURNDOWN jobs, 0 ms of work, $REPEATS rounds, alternating"
for r in $(seq 1 "$REPEATS"); do
  for run in "${RUNS[@]}"; do
    IFS='|' read -r name workers extra queue <<<"$run"
    # shellcheck disable=SC2086
    "$Q" --local -q --workers "$workers" --processing-ms 0 $extra work --queue "$queue" \
      --burndown "$BURNDOWN" --json >"$OUT/burndown_${name}_$r.json"
  done
done
python3 bench/burndown_table.py "$OUT" "$REPEATS" "${RUNS[@]}"

echo "== cold, $RATE jobs/s for $DURATION s, 20 workers × 10 ms, --wakeup notify, $REPEATS repeats"
"$Q" --local -q run-suite --backend pg --queues skip_locked,river --scenarios cold \
  --rate "$RATE" --duration "$DURATION" --wakeup notify --repeat "$REPEATS" \
  --out "$OUT/cold" >/dev/null
python3 - "$OUT/cold/analysis/summary.csv" <<'PY'
import csv, sys
cols = ["test", "throughput_jobs_s", "queue_wait_p50_ms", "p50_ms", "p99_ms", "audit"]
print(" ".join(f"{c:>18}" for c in cols))
for r in csv.DictReader(open(sys.argv[1])):
    print(" ".join(f"{r.get(c, ''):>18}" for c in cols))
PY
