#!/usr/bin/env bash
# Installs the distribution's PostgreSQL (>= 14) with pgbench, puts the seed's tuning
# (scaled to this machine's memory) in a conf.d file, and creates bench_user / bench_db
# with password authentication. Works with or without systemd. Safe to run twice.
# Override with BENCH_USER, BENCH_PASSWORD, BENCH_DB. `--check-platform` only says what
# this release would get, or refuses it.
# shellcheck source=setup/common.sh
source "$(dirname "$0")/common.sh"
check_platform
[ "${1:-}" = "--check-platform" ] && exit 0
user="${BENCH_USER:-bench_user}"
password="${BENCH_PASSWORD:-bench_pass}"
db="${BENCH_DB:-bench_db}"
for name in "$user" "$db"; do
  [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || die "invalid role or database name: $name"
done

if [ -z "$(pg_bin_dir)" ]; then
  # A leftover createcluster.conf from prepare_machine.sh must not stop the main cluster.
  as_root rm -f /etc/postgresql-common/createcluster.conf
  log "installing PostgreSQL"
  apt_install postgresql postgresql-contrib
fi
bin=$(pg_bin_dir)
[ -n "$bin" ] || die "PostgreSQL server binaries not found after installing"
ver=$(basename "$(dirname "$bin")")
[ "${ver%%.*}" -ge "$PG_MIN_MAJOR" ] || die "PostgreSQL $ver is older than $PG_MIN_MAJOR (qbench reads pg_stat_wal)"
command -v pgbench >/dev/null 2>&1 || [ -x "$bin/pgbench" ] || apt_install postgresql-contrib

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -q "^$ver main$"; then
  log "creating cluster $ver/main"
  as_root pg_createcluster "$ver" main >/dev/null
fi
confd="/etc/postgresql/$ver/main/conf.d"
as_root mkdir -p "$confd"
pg_tuning_conf | as_root tee "$confd/qbench.conf" >/dev/null
log "tuning written to $confd/qbench.conf"

if [ -d /run/systemd/system ]; then
  as_root systemctl enable --now "postgresql@$ver-main" >/dev/null 2>&1 || true
  as_root systemctl restart "postgresql@$ver-main"
else
  as_root pg_ctlcluster "$ver" main restart 2>/dev/null || as_root pg_ctlcluster "$ver" main start
fi
port=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" {print $3}')

psql_admin() { as_root runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAt "$@"; }
for _ in $(seq 1 30); do psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
pw_literal=${password//\'/\'\'}
psql_admin <<SQL
SET log_statement = 'none';
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE "$user" LOGIN;
  END IF;
END \$\$;
ALTER ROLE "$user" WITH LOGIN PASSWORD '$pw_literal';
SQL
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
  psql_admin -c "CREATE DATABASE \"$db\" OWNER \"$user\""
fi
# pg_stat_statements-free setup; pg_read_all_stats lets qbench sample lock waits.
psql_admin -c "GRANT pg_read_all_stats TO \"$user\"" >/dev/null
log "PostgreSQL $ver on port $port: role $user, database $db (password authentication on 127.0.0.1)"
