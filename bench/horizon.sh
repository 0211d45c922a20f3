#!/usr/bin/env bash
# The horizon scenario on this machine: each design at a steady rate while an idle
# transaction holds an xid, then released; Valkey is the control on the same schedule.
# A benchmark, not a test: it reports what it saw (BENCHMARKS.md, "A transaction held open").
#
#   bash bench/horizon.sh
#
# Knobs (environment): RATE (500 jobs/s), HOLDER (xid), FULL (skip_locked: the 10-minute
# hold; 60 s baseline, 300 s recovery), SHORT (every design on a shorter schedule, so they
# rank against each other: BASE_S 30, HOLD_S 120, REC_S 60), CONTROL (skip_locked on the
# short schedule with nothing held), OUT (results/horizon).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-500}
HOLDER=${HOLDER:-xid}
FULL=${FULL:-skip_locked}
SHORT=${SHORT:-skip_locked,delete_returning,partitioned,valkey_streams}
CONTROL=${CONTROL:-skip_locked}
BASE_S=${BASE_S:-30}
HOLD_S=${HOLD_S:-120}
REC_S=${REC_S:-60}
OUT=${OUT:-results/horizon}

cargo build --release --quiet
Q=$PWD/target/release/qbench
rm -rf "$OUT"
if [ -n "$FULL" ]; then
  echo "== $FULL: $RATE jobs/s, 60 s baseline, 600 s $HOLDER hold, 300 s recovery"
  "$Q" --local -q --rate "$RATE" horizon --queue "$FULL" --holder "$HOLDER" \
    --baseline 60 --hold 600 --recovery 300 --out "$OUT/full"
fi
if [ -n "$SHORT" ]; then
  echo "== $SHORT: $RATE jobs/s, ${BASE_S} s baseline, ${HOLD_S} s $HOLDER hold, ${REC_S} s recovery"
  "$Q" --local -q --rate "$RATE" horizon --queue "$SHORT" --holder "$HOLDER" \
    --baseline "$BASE_S" --hold "$HOLD_S" --recovery "$REC_S" --out "$OUT/short"
fi
if [ -n "$CONTROL" ]; then
  echo "== $CONTROL: the same short schedule, nothing held"
  "$Q" --local -q --rate "$RATE" horizon --queue "$CONTROL" --holder none \
    --baseline "$BASE_S" --hold "$HOLD_S" --recovery "$REC_S" --out "$OUT/control"
fi
# The full and short schedules give tests of the same name: analyzed apart.
report() { # NAME FOLDER...
  local name=$1 args=()
  shift
  for d in "$@"; do [ -d "$d" ] && args+=(--results "$d"); done
  [ ${#args[@]} -gt 0 ] || return 0
  "$Q" analyze "${args[@]}" --output "$OUT/analysis_$name" | sed -n '/^HORIZON/,/^RED FLAGS/p;/^8\./,/^$/p'
  "$Q" graph --input "$OUT/analysis_$name/summary.csv" --output "$OUT/graphs_$name" | tail -2
}
report full "$OUT/full/vm1_pg"
report short "$OUT/short/vm1_pg" "$OUT/short/vm2_valkey" "$OUT/control/vm1_pg"
