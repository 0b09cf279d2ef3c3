#!/bin/sh
# Throwaway PostgreSQL for tests (store conformance suite, integration tests).
#
#   tools/pg-test-server.sh start DIR PORT   -> prints postgresql://postgres@127.0.0.1:PORT/hearth_test
#   tools/pg-test-server.sh stop DIR         -> fast shutdown, then removes DIR
#
# The cluster lives entirely in DIR (data, log, unix socket) and listens on 127.0.0.1:PORT only,
# with trust authentication (loopback only) and fsync on. It never touches the system cluster.
# As root the server runs as the `postgres` OS user (DIR is chowned to it); as any other user it
# runs as that user. PG_BIN overrides the binary directory (default: newest /usr/lib/postgresql/*/bin,
# preferring 15).
# `stop` only removes a DIR that `start` created (it carries a marker file).
set -eu

MARKER=.hearth-pg-test-server

usage() {
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
}

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  if [ -x /usr/lib/postgresql/15/bin/postgres ]; then echo /usr/lib/postgresql/15/bin; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/postgres" ]; then echo "$d"; return; fi
  done
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
  echo "pg-test-server: no PostgreSQL binaries found (install postgresql or set PG_BIN)" >&2
  exit 1
}

# Runs a command as the server's OS user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  dir=$1 port=$2
  case $port in ''|*[!0-9]*) echo "pg-test-server: PORT must be a number" >&2; exit 2 ;; esac
  bin=$(find_bin)
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "pg-test-server: $dir exists and is not empty" >&2
    exit 1
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  touch "$dir/$MARKER"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "pg-test-server: user postgres cannot reach $dir (a parent directory is not searchable)" >&2
      exit 1
    fi
  fi
  chmod 700 "$dir"

  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
# pg-test-server.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
max_connections = 200
EOF
  # Loopback-only trust (initdb -A trust also trusts the unix socket, which lives in DIR).
  cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
  if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
    cat "$dir/server.log" >&2
    exit 1
  fi
  i=0
  until as_pg "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; do
    i=$((i + 1))
    if [ $i -ge 60 ]; then echo "pg-test-server: server did not accept connections" >&2; exit 1; fi
    sleep 0.5
  done
  as_pg "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE hearth_test ENCODING 'UTF8' TEMPLATE template0" >/dev/null
  echo "postgresql://postgres@127.0.0.1:$port/hearth_test"
}

stop() {
  dir=$1
  if [ ! -d "$dir" ]; then return 0; fi
  if [ ! -e "$dir/$MARKER" ]; then
    echo "pg-test-server: $dir was not created by this script; not touching it" >&2
    exit 1
  fi
  bin=$(find_bin)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$dir"
}

[ $# -ge 1 ] || usage
case $1 in
  start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
