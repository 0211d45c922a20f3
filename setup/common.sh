# shellcheck shell=bash
# Shared helpers for the setup scripts (sourced, not run).
set -euo pipefail

# The oldest PostgreSQL qbench supports: the samplers read pg_stat_wal (new in 14).
PG_MIN_MAJOR=14

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $*"; fi
}

apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* with your package manager"
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

apt_has() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; }

# The newest /usr/lib/postgresql/<version>/bin holding a server, or nothing.
pg_bin_dir() {
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/postgres" ]; then echo "$d"; fi
}

# "ID VERSION_ID" of this machine (QBENCH_OS_RELEASE points at another file, for tests).
platform() {
  local f="${QBENCH_OS_RELEASE:-/etc/os-release}"
  [ -r "$f" ] || { echo "unknown"; return; }
  ( # shellcheck disable=SC1090
    . "$f"; echo "${ID:-unknown} ${VERSION_ID:-}" )
}

# The PostgreSQL major version a distribution release ships; empty when unknown.
distro_pg_major() {
  case "$1" in
    "debian 12") echo 15 ;;
    "debian 13") echo 17 ;;
    "ubuntu 22.04") echo 14 ;;
    "ubuntu 24.04") echo 16 ;;
    "debian 11") echo 13 ;;
    "ubuntu 20.04") echo 12 ;;
    *) echo "" ;;
  esac
}

# Refuses a release whose PostgreSQL is too old, before anything is installed; says what
# will be installed. An unknown release goes on: the installed version is checked after.
check_platform() {
  local p major
  p=$(platform)
  major=$(distro_pg_major "$p")
  if [ -z "$major" ]; then
    log "platform: $p (not one qbench was tested on); the distribution's PostgreSQL must be >= $PG_MIN_MAJOR"
  elif [ "$major" -lt "$PG_MIN_MAJOR" ]; then
    die "platform: $p ships PostgreSQL $major, older than $PG_MIN_MAJOR (qbench reads pg_stat_wal); use Debian 12+ or Ubuntu 22.04+"
  else
    log "platform: $p: PostgreSQL $major from the distribution"
  fi
}

# python3 -m pip install, also where the system Python is "externally managed".
pip_install() {
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-pip
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip install -q "$@" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "$@"
}

# The seed's tuning (for 8 GiB) scaled to this machine: prints postgresql.conf lines.
pg_tuning_conf() {
  local mem_mb
  mem_mb=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
  local sb=$((2048 * mem_mb / 8192)) ecs=$((6144 * mem_mb / 8192))
  local mwm=$((512 * mem_mb / 8192)) wm=$((32 * mem_mb / 8192))
  [ "$sb" -lt 128 ] && sb=128; [ "$ecs" -lt 256 ] && ecs=256
  [ "$mwm" -lt 64 ] && mwm=64; [ "$mwm" -gt 2048 ] && mwm=2048
  [ "$wm" -lt 4 ] && wm=4; [ "$wm" -gt 64 ] && wm=64
  cat <<CONF
# qbench: the seed's tuning (written for 8 GiB) scaled to ${mem_mb} MB of memory.
shared_buffers = '${sb}MB'
effective_cache_size = '${ecs}MB'
maintenance_work_mem = '${mwm}MB'
work_mem = '${wm}MB'
max_connections = 200
CONF
}
