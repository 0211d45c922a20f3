#!/usr/bin/env bash
# The test command: prepares the machine if needed, then the same checks CI runs.
# shellcheck source=setup/common.sh
source "$(dirname "$0")/common.sh"
cd "$(dirname "$0")/.." || exit 1
bash setup/prepare_machine.sh
log "shellcheck setup/*.sh .ci/run"
shellcheck -x setup/*.sh .ci/run
log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
log "cargo test"
cargo test --quiet
