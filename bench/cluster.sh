#!/usr/bin/env bash
# valkey_streams on one Valkey, a 1-primary cluster and a 3-primary cluster, interleaved
# ROUNDS times on throwaway servers (qbench local start [--valkey-cluster N]):
#   - XADD rate: `qbench produce --rate max` (4 producer connections, Lua-batched XADDs)
#     beside redis-benchmark's plain XADD of the same 512-byte payload, 4 connections,
#     pipeline 16 (--cluster on a cluster), as the server's ceiling in the same run;
#   - drain rate: `qbench work --burndown` (pre-filled, closed loop, 0 ms per job).
# It is a benchmark, not a test: it prints what it measured.
#
#   bash bench/cluster.sh      # TIER=strict ROUNDS=2 N=200000 DRAIN_N=50000 WORKERS=24
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
N=${N:-200000}
DRAIN_N=${DRAIN_N:-50000}
WORKERS=${WORKERS:-24}
TIER=${TIER:-strict}

cargo build --release --quiet
Q=$PWD/target/release/qbench
BENCH_CLI=$(command -v valkey-benchmark || command -v redis-benchmark)
PAYLOAD=$(head -c 512 /dev/zero | tr '\0' a)
trap '"$Q" local stop >/dev/null 2>&1 || true' EXIT

field() { python3 -c "import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1']))"; }

printf '%-6s %-5s %-8s %12s %12s %8s %12s\n' round mode tier ref_xadd_s qbench_xadd_s ratio drain_s
for round in $(seq "$ROUNDS"); do
  for mode in plain c1 c3; do
    case $mode in
      plain) flags=(); cluster=() ;;
      # redis-benchmark refuses a cluster of one node; it serves every slot, so plain works
      c1) flags=(--valkey-cluster 1); cluster=() ;;
      c3) flags=(--valkey-cluster 3); cluster=(--cluster) ;;
    esac
    eval "$("$Q" local start "${flags[@]}" --durability "$TIER")"
    node=${QBENCH_VALKEY_URL#*://}; node=${node%%,*}
    ref=$("$BENCH_CLI" "${cluster[@]}" -h "${node%:*}" -p "${node##*:}" -n "$N" -c 4 -P 16 -q --csv \
      XADD 'bench_ref:{tag}' '*' s 1 p "$PAYLOAD" 2>/dev/null | tr '\r' '\n' | tail -1 | cut -d'"' -f4)
    xadd=$("$Q" -q --durability "$TIER" produce --queue valkey_streams --rate max --count "$N" --json | field achieved_rate_jobs_s)
    drain=$("$Q" -q --durability "$TIER" work --queue valkey_streams --burndown "$DRAIN_N" \
      --workers "$WORKERS" --processing-ms 0 --json | field jobs_s)
    "$Q" local stop >/dev/null
    ratio=$(python3 -c "print(f'{$xadd / max(float(\"${ref:-0}\"), 1):.2f}')")
    printf '%-6s %-5s %-8s %12.0f %12s %8s %12s\n' "$round" "$mode" "$TIER" "${ref:-0}" "$xadd" "$ratio" "$drain"
  done
done
