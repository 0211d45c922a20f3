#!/usr/bin/env bash
# A/A check of qbench's intervals on this machine: the same design and settings run as
# two labels, N repeats each, then analyze. It must say "no significant difference"; if it
# does not, the intervals are too narrow for this machine's noise. A benchmark, not a test:
# it reports what it saw.
#
#   bash bench/aa.sh
#
# Knobs (environment): QUEUE (skip_locked), REPEAT (5), RATE (1000), DURATION (10 s),
# WARMUP (5 s), WORKERS (20), PROCESSING_MS (10), OUT (results/aa).
set -euo pipefail
cd "$(dirname "$0")/.."

QUEUE=${QUEUE:-skip_locked}
REPEAT=${REPEAT:-5}
RATE=${RATE:-1000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
WORKERS=${WORKERS:-20}
PROCESSING_MS=${PROCESSING_MS:-10}
OUT=${OUT:-results/aa}

cargo build --release --quiet
Q=$PWD/target/release/qbench
case $QUEUE in valkey_streams) BACKEND=valkey DIR=vm2_valkey ;; *) BACKEND=pg DIR=vm1_pg ;; esac
rm -rf "$OUT"
echo "A/A: $QUEUE, warm, $REPEAT repeats × 2 labels, ${RATE} jobs/s for ${DURATION} s, ${WORKERS} workers × ${PROCESSING_MS} ms"
for label in A1 A2; do
  "$Q" --local -q --rate "$RATE" --duration "$DURATION" --warmup-duration "$WARMUP" \
    --warmup-rate "$RATE" --workers "$WORKERS" --processing-ms "$PROCESSING_MS" \
    run-suite --backend "$BACKEND" --queues "$QUEUE" --scenarios warm \
    --repeat "$REPEAT" --label "$label" --out "$OUT" > /dev/null
done
"$Q" analyze --results "$OUT/$DIR" --output "$OUT/analysis" | sed -n '/ACROSS REPEATS/,/^RED FLAGS\|^FINDINGS/p'
