#!/usr/bin/env bash
# Poll against LISTEN/NOTIFY, side by side: each PostgreSQL design at 100, 1,000 and
# 5,000 jobs/s offered, woken both ways, with Valkey's blocking read at the same rates as
# the reference. One run-suite per rate (warm scenario: a warmup, then the measured
# window), all on the same --local servers' settings, then one table. It is a benchmark,
# not a test: it reports what it saw, and names each row's state (sustained, stalled, over_capacity).
#
#   bash bench/wakeup.sh
#
# Knobs (environment): RATES ("100 1000 5000"), DURATION seconds per test (20),
# WARMUP seconds (5), WORKERS (20), PROCESSING_MS per job (0: the queue, not the work,
# is measured), DURABILITY (strict), OUT (results/wakeup).
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-100 1000 5000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
WORKERS=${WORKERS:-20}
PROCESSING_MS=${PROCESSING_MS:-0}
DURABILITY=${DURABILITY:-strict}
OUT=${OUT:-results/wakeup}

cargo build --release --quiet
Q=$PWD/target/release/qbench
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "each test: warmup ${WARMUP} s, ${DURATION} s measured, ${WORKERS} workers × ${PROCESSING_MS} ms, durability ${DURABILITY}"

for rate in $RATES; do
  echo "== ${rate} jobs/s" >&2
  "$Q" --local -q --durability "$DURABILITY" --rate "$rate" --duration "$DURATION" \
    --warmup-duration "$WARMUP" --warmup-rate "$rate" --workers "$WORKERS" \
    --processing-ms "$PROCESSING_MS" --wakeup poll,notify \
    run-suite --backend all --scenarios warm --out "$OUT/rate_$rate" --force > /dev/null
done

python3 - "$OUT" $RATES <<'EOF'
import csv, sys
out, rates = sys.argv[1], sys.argv[2:]
def f(v, d=1):
    return "-" if v in ("", None) else f"{float(v):.{d}f}"
print()
print("| rate | design | wakeup | queue_wait p50 | p99 | pickup p99 | enqueue p99 | server cores | µs server CPU/job | empty claims/s | NOTIFYs/s | state |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for rate in rates:
    rows = list(csv.DictReader(open(f"{out}/rate_{rate}/analysis/summary.csv")))
    rows.sort(key=lambda r: (r["backend"] != "postgresql", r["queue"], r["wakeup"]))
    for r in rows:
        thr = float(r["throughput_jobs_s"] or 0)
        cores = r["server_cores"]
        per_job = f(float(cores) * 1e6 / thr, 0) if cores and thr else "-"
        dur = float(r["duration_s"] or 0)
        sent = r["notifications_sent"]
        nps = f(float(sent) / dur, 0) if sent and dur else "-"
        print(f"| {rate} | {r['queue']} | {r['wakeup'] or '-'} | {f(r['queue_wait_p50_ms'], 2)} | "
              f"{f(r['queue_wait_p99_ms'], 2)} | {f(r['pickup_p99_ms'], 2)} | {f(r['enqueue_p99_ms'], 2)} | "
              f"{f(r['server_cores'], 2)} | {per_job} | {f(r['empty_claims_per_s'], 0)} | {nps} | {r['state'] or '-'} |")
EOF
