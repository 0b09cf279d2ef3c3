#!/usr/bin/env bash
# Installs what is missing (apt), builds, starts the real servers the tests need (PostgreSQL and
# redis-server, on loopback, in throwaway directories), runs the whole suite through ctest, and
# stops what it started.
#   ./test.sh                 # RelWithDebInfo build in build/test
#   ./test.sh --sanitize      # AddressSanitizer + UBSan build in build/asan
#   ./test.sh -R http_        # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
BUILD_DIR=build/test
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_WERROR=ON)
if [[ ${1:-} == --sanitize ]]; then
  shift
  BUILD_DIR=build/asan
  CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Debug -DHEARTH_SANITIZE=ON)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

tools/ensure-deps.sh test

echo "[test] building in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"

if [[ -f tests/schema/package.json && ! -d tests/schema/node_modules ]]; then
  echo "[test] installing the schema checker (npm ci)"
  (cd tests/schema && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -f tests/auth/package.json && ! -d tests/auth/node_modules ]]; then
  echo "[test] installing the jose cross-check (npm ci)"
  (cd tests/auth && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -f tests/smart/package.json && ! -d tests/smart/node_modules ]]; then
  echo "[test] installing the SMART client tests (npm ci: openid-client, jose)"
  (cd tests/smart && npm ci --no-audit --no-fund --loglevel=error)
fi

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    if ! ss -ltnH "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
  done
  echo "no free port found" >&2; return 1
}

WORK=$(mktemp -d /tmp/hearth-test.XXXXXX)
chmod 755 "$WORK"  # the throwaway PostgreSQL runs as the postgres user
PG_DIR="$WORK/pg"
REDIS_PID=""
cleanup() {
  set +e
  [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  [[ -d $PG_DIR ]] && "$ROOT/tools/pg-test-server.sh" stop "$PG_DIR" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

PG_PORT=$(free_port)
echo "[test] starting PostgreSQL on 127.0.0.1:$PG_PORT"
HEARTH_TEST_PG_URL=$(tools/pg-test-server.sh start "$PG_DIR" "$PG_PORT" | tail -1)
export HEARTH_TEST_PG_URL HEARTH_REQUIRE_PG=1

REDIS_PORT=$(free_port)
echo "[test] starting redis-server on 127.0.0.1:$REDIS_PORT"
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save "" --appendonly no \
  --daemonize no --logfile "$WORK/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 50); do
  if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then break; fi
  sleep 0.1
done
export HEARTH_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export HEARTH_REQUIRE_REDIS=1  # tests/auth: a missing Redis is a failure, not a skip

echo "[test] running ctest"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 600 "$@"
