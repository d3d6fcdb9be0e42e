#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 before tally or its tests run.
# Starts them when installed; installs them with apt when missing and we are root; otherwise says what to do.
set -euo pipefail

PGHOST_=127.0.0.1
PGPORT_=5432
REDIS_PORT=6379
say() { printf 'ensure-services: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h "$PGHOST_" -p "$PGPORT_"; }
redis_up() {
  if command -v redis-cli >/dev/null; then [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; return; fi
  # No client: speak RESP over bash's /dev/tcp.
  exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT 2>/dev/null || return 1
  printf 'PING\r\n' >&3; read -r -t 2 reply <&3 || true; exec 3>&-
  [[ "$reply" == +PONG* ]]
}

apt_install() {
  as_root true 2>/dev/null || { say "cannot install $* (not root, no sudo). Install them yourself: apt-get install $*"; exit 1; }
  say "installing $* with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_pg() {
  local cluster version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$version" ]; then
    apt_install postgresql postgresql-contrib
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    FRESH_PG=1
  fi
  cluster=main
  say "starting PostgreSQL $version/$cluster"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start 2>/dev/null \
    || as_root pg_ctlcluster "$version" "$cluster" start || true
}

# A PostgreSQL we installed ourselves gets what tally's defaults expect: trust on loopback for local
# development, and a superuser role named after the current user (DATABASE_URL has no password).
setup_fresh_pg() {
  local version hba user
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  user=$(id -un)
  if ! grep -q 'tally: local development' "$hba"; then
    as_root sed -i '1i # tally: local development (added by scripts/ensure-services.sh)\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || as_root pg_ctlcluster "$version" main reload
  fi
  as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$user'\" | grep -q 1 || createuser -s '$user'"
}

start_redis() {
  if ! command -v redis-server >/dev/null; then apt_install redis-server redis-tools; fi
  say "starting Redis"
  mkdir -p /tmp/tally-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --maxmemory-policy noeviction --dir /tmp/tally-redis --logfile /tmp/tally-redis/redis.log
}

wait_for() { # name check-fn
  for _ in $(seq 1 60); do "$2" && return 0; sleep 0.5; done
  say "$1 did not come up on 127.0.0.1"; exit 1
}

FRESH_PG=0
if ! pg_up; then
  start_pg
  wait_for PostgreSQL pg_up
  [ "$FRESH_PG" = 1 ] && setup_fresh_pg
fi
if ! redis_up; then
  start_redis
  wait_for Redis redis_up
fi
# The Redis Cluster test starts throwaway nodes of its own: it needs the binaries even where a Redis already runs.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  say "redis-server/redis-cli not on PATH (test/redis-cluster.test.ts starts nodes of its own)"
  (apt_install redis-server redis-tools) || say "could not install them: the Redis Cluster test will fail"
fi
command -v pgbench >/dev/null || say "note: pgbench not found (npm run bench uses it for one baseline; apt-get install postgresql-contrib)"
say "PostgreSQL and Redis are up"
