#!/usr/bin/env bash
# Capacity of the four designs on this machine: each design's MST@SLO (open loop, ramp
# then bisection), its burn-down (closed loop), worker scaling with the USL fit, and the
# spread of repeated skip_locked sweeps. A benchmark, not a test: it reports what it saw.
#
#   bash bench/capacity.sh
#
# Knobs (environment): STEP (20 s judged per step), SETTLE (5 s), SLO (100 ms),
# WORKERS (20), BURNDOWN (50000 jobs), SCALING (1,2,4,8,16,32,64), SCALING_JOBS (20000),
# REPEATS (3 skip_locked sweeps), OUT (results/capacity).
set -euo pipefail
cd "$(dirname "$0")/.."

STEP=${STEP:-20}
SETTLE=${SETTLE:-5}
SLO=${SLO:-100}
WORKERS=${WORKERS:-20}
BURNDOWN=${BURNDOWN:-50000}
SCALING=${SCALING:-1,2,4,8,16,32,64}
SCALING_JOBS=${SCALING_JOBS:-20000}
REPEATS=${REPEATS:-3}
OUT=${OUT:-results/capacity}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
sweep() { # OUT QUEUE
  "$Q" --local -q --workers "$WORKERS" sweep --queue "$2" --step-duration "$STEP" \
    --settle "$SETTLE" --slo-p99-ms "$SLO" --burndown "$BURNDOWN" --out "$1" | grep -v ' step '
}
echo "== MST@${SLO} ms and burn-down, $WORKERS workers × 0 ms, ${STEP} s steps after ${SETTLE} s"
sweep "$OUT/all" all
echo "== worker scaling: burn-down of $SCALING_JOBS jobs per count ($SCALING)"
"$Q" --local -q --workers "$SCALING" sweep --queue all --burndown "$SCALING_JOBS" \
  --out "$OUT/all" | grep -v 'worker(s):'
echo "== repeatability: $REPEATS more skip_locked sweeps"
for i in $(seq 1 "$REPEATS"); do sweep "$OUT/repeat$i" skip_locked; done
"$Q" analyze --results "$OUT/all" --output "$OUT/analysis" | sed -n '/^CAPACITY/,/^FINDINGS/p'
python3 - "$OUT" "$REPEATS" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
m = [json.load(open(f"{out}/repeat{i}/sweep/skip_locked_sweep.json"))["result"]["mst_jobs_s"] for i in range(1, n + 1)]
m = [x for x in m if x]
if len(m) > 1:
    cv = statistics.stdev(m) / statistics.mean(m) * 100
    print(f"skip_locked MST over {len(m)} sweeps: {', '.join(f'{x:.0f}' for x in m)} jobs/s; CV {cv:.1f} %")
PY
