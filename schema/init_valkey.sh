#!/usr/bin/env bash
# Creates the qbench stream and its consumer group, like `qbench setup-schema --queue valkey_streams`.
# Usage: schema/init_valkey.sh [URL] [STREAM] [GROUP]
#   defaults: $QBENCH_VALKEY_URL or redis://localhost:6379, bench_queue, bench_workers
# Safe to run twice: an existing group is left as it is.
set -euo pipefail
url="${1:-${QBENCH_VALKEY_URL:-redis://localhost:6379}}"
stream="${2:-bench_queue}"
group="${3:-bench_workers}"
for name in "$stream" "$group"; do
  if [[ ! "$name" =~ ^[A-Za-z0-9_.:-]{1,128}$ ]]; then
    echo "init_valkey.sh: invalid stream or group name: $name" >&2
    exit 2
  fi
done
cli=""
for c in valkey-cli redis-cli; do
  if command -v "$c" >/dev/null 2>&1; then cli="$c"; break; fi
done
if [ -z "$cli" ]; then
  echo "init_valkey.sh: neither valkey-cli nor redis-cli is installed; run setup/install_valkey.sh" >&2
  exit 2
fi
# Group starts at 0 so that entries added before it existed are delivered too.
out=$("$cli" -u "$url" XGROUP CREATE "$stream" "$group" 0 MKSTREAM 2>&1) || true
case "$out" in
  OK) echo "created stream $stream with group $group" ;;
  *BUSYGROUP*) echo "stream $stream with group $group already exists" ;;
  *) echo "init_valkey.sh: $out" >&2; exit 1 ;;
esac
