#!/usr/bin/env bash
# The PostgreSQL designs side by side in the strict tier, the textbook ones (polling, as
# the seed's) and the library models (each at its library's own wakeup): each one's
# server-side cost per job, its MST@100 ms (one sweep), its burn-down (alternating
# repeats) and its claim p99 under a held xid at one rate. A
# benchmark, not a test: it reports what it saw (BENCHMARKS.md, "The PostgreSQL designs
# and the libraries").
#
#   bash bench/libraries.sh
#
# Knobs (environment): DESIGNS (skip_locked,delete_returning,partitioned,pgmq,river,
# graphile_worker,pg_boss,procrastinate), JOBS (cost: 5000), STEP (sweep: 20 s judged per step, shortened
# from 60), SETTLE (5 s), WORKERS (20), BURNDOWN (50000 jobs), REPEATS (3), RATE
# (horizon: 500 jobs/s), BASE_S (30), HOLD_S (120), REC_S (60), OUT (results/libraries).
set -euo pipefail
cd "$(dirname "$0")/.."

DESIGNS=${DESIGNS:-skip_locked,delete_returning,partitioned,pgmq,river,graphile_worker,pg_boss,procrastinate}
JOBS=${JOBS:-5000}
STEP=${STEP:-20}
SETTLE=${SETTLE:-5}
WORKERS=${WORKERS:-20}
BURNDOWN=${BURNDOWN:-50000}
REPEATS=${REPEATS:-3}
RATE=${RATE:-500}
BASE_S=${BASE_S:-30}
HOLD_S=${HOLD_S:-120}
REC_S=${REC_S:-60}
OUT=${OUT:-results/libraries}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
mkdir -p "$OUT"
IFS=, read -r -a LIST <<<"$DESIGNS"
# Each library design at its library's own wakeup (River, graphile-worker and Procrastinate
# LISTEN; pgmq's notify trigger is not modelled; pg-boss's NOTIFY is off by default); the
# textbook designs at the seed's poll.
wakeup_of() { case "$1" in river | graphile_worker | procrastinate) echo notify ;; *) echo poll ;; esac; }
# pg-boss at its defaults takes 10 jobs/s for 20 workers (a 2-s sleep after each fetch):
# its sweep and drain run its burst option, batchSize 10 (the variant says so).
flags_of() { case "$1" in pg_boss) echo "--dequeue-batch 10 --pg-boss-burst-when-batch-full on" ;; *) echo "" ;; esac; }

echo "== server-side cost per job: $JOBS jobs one per call, one worker"
# pg-boss's sleep after each fetch changes no statement; one worker's 5,000 fetches at 2 s
# would take hours, so it is skipped (1 ms).
"$Q" --local -q --pg-boss-polling-interval 1 cost --queue "$DESIGNS" --jobs "$JOBS" --out "$OUT/cost"

echo "== MST@100 ms: one sweep each, $WORKERS workers × 0 ms, ${STEP} s steps after ${SETTLE} s"
for d in "${LIST[@]}"; do
  # shellcheck disable=SC2046
  "$Q" --local -q --workers "$WORKERS" --processing-ms 0 --wakeup "$(wakeup_of "$d")" $(flags_of "$d") sweep --queue "$d" \
    --step-duration "$STEP" --settle "$SETTLE" --slo-p99-ms 100 --burndown 0 \
    --no-report --out "$OUT/sweep" | grep -v ' step ' || true
done

echo "== burn-down: $BURNDOWN jobs, $WORKERS workers × 0 ms, $REPEATS rounds, designs alternating"
for r in $(seq 1 "$REPEATS"); do
  for d in "${LIST[@]}"; do
    # shellcheck disable=SC2046
    "$Q" --local -q --workers "$WORKERS" --processing-ms 0 --wakeup "$(wakeup_of "$d")" $(flags_of "$d") work --queue "$d" \
      --burndown "$BURNDOWN" --json >"$OUT/burndown_${d}_$r.json"
  done
done
python3 - "$OUT" "$REPEATS" "${LIST[@]}" <<'PY'
import json, statistics, sys
out, n, designs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for d in designs:
    runs = [json.load(open(f"{out}/burndown_{d}_{r}.json")) for r in range(1, n + 1)]
    rates = [x["jobs_s"] for x in runs]
    audits = {x["audit"] for x in runs}
    dup = sum(x["duplicated"] or 0 for x in runs)
    print(f"{d:<18} burn-down jobs/s: {', '.join(f'{v:,.0f}' for v in rates)}; "
          f"median {statistics.median(rates):,.0f}, range {min(rates):,.0f}-{max(rates):,.0f}; audit {'/'.join(sorted(audits))}, duplicated {dup}")
PY

echo "== horizon: $RATE jobs/s, ${BASE_S} s baseline, ${HOLD_S} s xid hold, ${REC_S} s recovery"
for d in "${LIST[@]}"; do
  # shellcheck disable=SC2046
  "$Q" --local -q --rate "$RATE" --wakeup "$(wakeup_of "$d")" $(flags_of "$d") horizon --queue "$d" --holder xid \
    --baseline "$BASE_S" --hold "$HOLD_S" --recovery "$REC_S" --no-report --out "$OUT/horizon"
done
"$Q" analyze --results "$OUT/sweep" --results "$OUT/horizon" --output "$OUT/analysis" \
  | sed -n '/^CAPACITY/,/^RED FLAGS/p'
