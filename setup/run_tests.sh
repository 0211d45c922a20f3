#!/usr/bin/env bash
# The test command: prepares the machine if needed, then the same checks CI runs.
# shellcheck source=setup/common.sh
source "$(dirname "$0")/common.sh"
cd "$(dirname "$0")/.." || exit 1
# The test build (CPU) runs while the machine is prepared (network and disk): on a fresh
# machine the two overlap instead of adding up. Its output is shown only if it fails.
build_log=$(mktemp)
cargo test --no-run --quiet >"$build_log" 2>&1 &
build=$!
trap 'kill "$build" 2>/dev/null || true; rm -f "$build_log"' EXIT
bash setup/prepare_machine.sh
log "waiting for the test build"
if ! wait "$build"; then
  cat "$build_log" >&2
  die "cargo test --no-run failed"
fi
log "shellcheck setup/*.sh .ci/run"
shellcheck -x setup/*.sh .ci/run
log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
log "cargo test: every test binary, several at a time (setup/test_binaries.sh)"
bash setup/test_binaries.sh
log "cargo test --doc"
cargo test --doc --quiet
