#!/usr/bin/env bash
# Runs every test binary of the crate, several at a time: the tests wait on servers and
# child processes far more than they compute, so on 2 cores they overlap well. Each
# binary gets a TMPDIR of its own, so the --local servers it starts, and its checks that
# none is left behind, never see another binary's. Binaries listed in SOLO run alone,
# after the others: their figures measure the machine (a server thread's share of a
# core), and a neighbour's load would move them. Prints cargo's summary of each binary
# (stdout), the number of tests passed and each binary's time; on a failure, that
# binary's failures (every binary's whole output is kept in target/test-logs/). Usage: setup/test_binaries.sh [JOBS] (default 3), each binary
# with TEST_THREADS tests at a time (default 4).
# shellcheck source=setup/common.sh
source "$(dirname "$0")/common.sh"
cd "$(dirname "$0")/.." || exit 1

jobs=${1:-3}
threads=${TEST_THREADS:-4}
# Longest first, so the slowest binary does not start last.
ORDER="designs suite capacity horizon audit durability states tls cluster timeline workload restart multihost secrets confidence"
SOLO="solo"

work=target/test-logs
rm -rf "$work"
mkdir -p "$work"
log "listing the test binaries"
cargo test --no-run --quiet --message-format=json 2>"$work/build.log" >"$work/build.json" || {
  cat "$work/build.log" >&2
  die "cargo test --no-run failed"
}
# One "name path" line per test binary (unit tests of the library and the binary too).
grep '"test":true},"features"' "$work/build.json" | grep '"executable":"/' |
  sed -E 's/.*"kind":\["([a-z-]+)"\].*"name":"([^"]+)".*"executable":"([^"]+)".*/\1 \2 \3/' |
  awk '{ name = ($1 == "test") ? $2 : $1; print name, $3 }' >"$work/bins"
[ -s "$work/bins" ] || die "no test binaries found"

ordered() {
  local first=" $ORDER " solo=" $SOLO "
  for n in $ORDER; do grep "^$n " "$work/bins" || true; done
  while read -r n p; do
    case "$first$solo" in *" $n "*) ;; *) echo "$n $p" ;; esac
  done <"$work/bins"
}

run_one() {
  local name=$1 bin=$2 tmp start
  tmp=$(mktemp -d)
  # The --local servers run as an unprivileged user, which must reach their directory.
  chmod 755 "$tmp"
  start=$(date +%s)
  # Within a binary too, its tests wait far more than they compute.
  if TMPDIR="$tmp" "$bin" --quiet --test-threads "$threads" >"$work/$name.log" 2>&1; then
    echo "ok $(( $(date +%s) - start )) $name" >>"$work/results"
  else
    echo "FAILED $(( $(date +%s) - start )) $name" >>"$work/results"
  fi
  rm -rf "$tmp"
}

began=$(date +%s)
log "running the test binaries, $jobs at a time"
while read -r name bin; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$name" "$bin" &
done < <(ordered)
wait
for n in $SOLO; do
  line=$(grep "^$n " "$work/bins" || true)
  [ -n "$line" ] || continue
  log "running $n alone"
  # shellcheck disable=SC2086
  run_one $line
done
log "test binaries took $(( $(date +%s) - began )) s:"
sort -k2 -n -r "$work/results" | while read -r status secs name; do
  printf '[setup]   %-7s %4s s  %s\n' "$status" "$secs" "$name" >&2
done
# Cargo's own summary of each binary on stdout, as `cargo test` prints it, so that a reader
# of the output (and CI) sees how many tests ran and passed, not only the binaries' times.
while read -r name bin; do
  printf '     Running %s (%s)\n' "$name" "$bin"
  grep -E '^(running [0-9]+ tests?|test result: )' "$work/$name.log" || echo "no test summary in $work/$name.log"
done <"$work/bins"
total=$(cat "$work"/*.log | sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
log "$total tests passed in $(wc -l <"$work/bins") test binaries"
failed=$(awk '$1 == "FAILED" { print $3 }' "$work/results")
for n in $failed; do
  printf '\n===== %s (whole output: %s/%s.log) =====\n' "$n" "$work" "$n" >&2
  # The failures' own messages, without the backtraces' frames.
  sed -n '/^failures:$/,$p' "$work/$n.log" | grep -vE '^ +([0-9]+: |at )' >&2
done
[ -z "$failed" ] || die "failed: $(echo "$failed" | tr '\n' ' ')"
expected=$(wc -l <"$work/bins")
ran=$(wc -l <"$work/results")
[ "$ran" -eq "$expected" ] || die "$ran of $expected test binaries ran"
