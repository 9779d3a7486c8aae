#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the test suite and the benchmarks.
#   scripts/pg.sh start DIR PORT   installs Debian's postgresql if missing, initdb + start
#   scripts/pg.sh stop DIR         stops it and deletes DIR
# As root (CI), the server runs as the `postgres` user, which PostgreSQL requires.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data directory}; port=${3:-54329}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  if ! bin=$(pg_bin); then
    echo "PostgreSQL not found: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin)
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  # Tests trade durability for speed; benchmarks (ECOVALUE_PG_DURABLE=1) keep the defaults.
  opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200"
  [ "${ECOVALUE_PG_DURABLE:-0}" = 1 ] || \
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$opts" start >/dev/null
  echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  if bin=$(pg_bin) && [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
