#!/usr/bin/env bash
# A/A: this machine's run-to-run noise, the practical threshold of the verdict. The same
# design and settings run as two labels (AA1, AA2), one run each per round, their order
# swapped every round, so each pair shares the machine's drift of its moment and nothing
# else. For every figure the verdict compares it prints the 95 % upper bound of
# |ln(AA2 / AA1)| over the rounds (the 95th percentile from 20 pairs on, else the
# largest): src/stats/noise.rs's AA_THRESHOLDS are set from it, and BENCHMARKS.md keeps
# the table. A benchmark, not a test: it reports what it saw.
#
#   bash bench/aa.sh
#
# Knobs (environment): QUEUES (skip_locked valkey_streams), ROUNDS (10), RATE (1000),
# DURATION (10 s), WARMUP (5 s), WORKERS (20), PROCESSING_MS (10), OUT (results/aa).
set -euo pipefail
cd "$(dirname "$0")/.."

QUEUES=${QUEUES:-skip_locked valkey_streams}
ROUNDS=${ROUNDS:-10}
RATE=${RATE:-1000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
WORKERS=${WORKERS:-20}
PROCESSING_MS=${PROCESSING_MS:-10}
OUT=${OUT:-results/aa}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
echo "A/A: $QUEUES; warm, strict tier, ${RATE} jobs/s for ${DURATION} s after ${WARMUP} s of warmup, ${WORKERS} workers × ${PROCESSING_MS} ms; $ROUNDS rounds of AA1 and AA2, the order swapped each round"
start=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="AA1 AA2"; else order="AA2 AA1"; fi
  for queue in $QUEUES; do
    case $queue in valkey_streams) backend=valkey ;; *) backend=pg ;; esac
    for label in $order; do
      "$Q" --local -q --rate "$RATE" --duration "$DURATION" --warmup-duration "$WARMUP" \
        --warmup-rate "$RATE" --workers "$WORKERS" --processing-ms "$PROCESSING_MS" \
        run-suite --backend "$backend" --queues "$queue" --scenarios warm \
        --label "$label" --no-report --out "$OUT/r$round" >/dev/null
    done
  done
  "$Q" analyze --results "$OUT/r$round" --output "$OUT/r$round/analysis" >/dev/null
  echo "round $round of $ROUNDS done ($(($(date +%s) - start)) s)"
done

python3 - "$OUT" "$ROUNDS" <<'EOF'
import csv, math, sys
out, rounds = sys.argv[1], int(sys.argv[2])
figures = [("p99", "p99_ms"), ("p50", "p50_ms"), ("p99.9", "p999_ms"),
           ("throughput", "throughput_jobs_s"), ("server CPU per job", "server_cpu_us_per_job")]
logs = {}  # (queue, figure) -> [ln(AA2/AA1)]
states = []
for k in range(1, rounds + 1):
    rows = list(csv.DictReader(open(f"{out}/r{k}/analysis/summary.csv")))
    for r in rows:
        states.append(r["state"] or "-")
    by = {(r["queue"], r["label"]): r for r in rows}
    for (q, label), a in by.items():
        if label != "AA1" or (q, "AA2") not in by:
            continue
        b = by[(q, "AA2")]
        for name, col in figures:
            try:
                x, y = float(a[col]), float(b[col])
            except ValueError:
                continue
            if x > 0 and y > 0:
                logs.setdefault((q, name), []).append(math.log(y / x))
                logs.setdefault(("all", name), []).append(math.log(y / x))

def bound(v):
    v = sorted(abs(x) for x in v)
    k = len(v) - 1 if len(v) < 20 else math.ceil(len(v) * 0.95) - 1
    return v[k]

print("| design | figure | pairs | median |ln ratio| | 95 % bound of |ln ratio| | as a ratio |")
print("|---|---|---:|---:|---:|---:|")
for (q, name), v in sorted(logs.items(), key=lambda x: (x[0][0] == "all", x[0][0], [f[0] for f in figures].index(x[0][1]))):
    med = sorted(abs(x) for x in v)[len(v) // 2]
    b = bound(v)
    print(f"| {q} | {name} | {len(v)} | {med:.3f} | {b:.3f} | ×{math.exp(b):.2f} |")
print()
print("states of the runs:", {s: states.count(s) for s in sorted(set(states))})
EOF
