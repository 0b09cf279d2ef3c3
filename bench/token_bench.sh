#!/usr/bin/env bash
# Token endpoint throughput (issue 5): POST /auth/token with client_credentials + private_key_jwt
# (RS384 assertion verified, jti replay cache, RS256 access token signed), each request with its
# own assertion. Optionally also authenticated vs unauthenticated read throughput.
#
#   bench/token_bench.sh                          # 10 s, 16 connections, in-process cache
#   bench/token_bench.sh --redis redis://127.0.0.1:6379/0
#   bench/token_bench.sh --duration 20 --connections 32 --reads
#   HEARTH_BINARY=/path/to/hearth bench/token_bench.sh
# Needs wrk and node (20+). Loopback only; everything started is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HEARTH=${HEARTH_BINARY:-$ROOT/build/server/hearth}
DURATION=10
CONNECTIONS=16
THREADS=2
REDIS=""
READS=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --redis) REDIS=$2; shift 2 ;;
    --reads) READS=1; shift ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
done
[[ -x $HEARTH ]] || { echo "no hearth binary at $HEARTH (build it or set HEARTH_BINARY)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/hearth-token-bench.XXXXXX)
PID=""
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ARGS=(--port 0 --mllp-port -1 --port-file "$WORK/port" --data-dir "$WORK/data"
      --set auth.enabled=true --set "auth.tokens=$(printf %s "$ADMIN_TOKEN" | sha256sum | cut -d' ' -f1):write"
      --set log.access=false)
[[ -n $REDIS ]] && ARGS+=(--set "cache.redis.url=$REDIS")
"$HEARTH" "${ARGS[@]}" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do [[ -s $WORK/port ]] && break; sleep 0.05; done
PORT=$(sed -n 's/^http=//p' "$WORK/port")
ORIGIN="http://127.0.0.1:$PORT"

# Enough distinct assertions for the run: 4,000/s is far above what 2 cores sign and verify.
N=$((DURATION * 4000))
echo "[auth-bench] signing $N client assertions"
node bench/token_bench_prep.mjs "$ORIGIN" "$ADMIN_TOKEN" "$N" "bench-svc" >"$WORK/assertions.txt"

export HEARTH_BENCH_LUA_DIR=$ROOT/bench/lua HEARTH_BENCH_ASSERTIONS=$WORK/assertions.txt HEARTH_BENCH_THREADS=$THREADS
export HEARTH_BENCH_RESULT=$WORK/token.json
echo "[auth-bench] POST /auth/token (client_credentials, private_key_jwt RS384), ${DURATION}s, $CONNECTIONS connections, cache: ${REDIS:-in-process}"
timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/lua/token.lua "$ORIGIN" | sed 's/^/  /'
echo "[auth-bench] token endpoint: $(cat "$WORK/token.json")"

if [[ $READS == 1 ]]; then
  # One patient, read with a valid access token vs through a server with auth off.
  ID=$(curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/fhir+json' \
       -d '{"resourceType":"Patient","name":[{"family":"Bench"}]}' "$ORIGIN/fhir/Patient" | sed 's/.*"id":"\([^"]*\)".*/\1/')
  TOKEN=$(curl -s -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
       --data "grant_type=client_credentials&scope=system%2F*.rs&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$(tail -1 "$WORK/assertions.txt")" \
       "$ORIGIN/auth/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  echo "$ID" >"$WORK/ids.txt"
  export HEARTH_BENCH_IDS=$WORK/ids.txt
  cat >"$WORK/auth_read.lua" <<LUA
local common = dofile(os.getenv("HEARTH_BENCH_LUA_DIR") .. "/common.lua")
setup = common.setup
done = common.done
local req
function init(args) req = wrk.format("GET", "/fhir/Patient/$ID", { ["Accept"] = "application/fhir+json", ["Authorization"] = "Bearer $TOKEN" }) end
function request() return req end
LUA
  # Backend tokens live 5 minutes: keep the read runs shorter than that.
  export HEARTH_BENCH_RESULT=$WORK/read_auth.json
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/auth_read.lua" "$ORIGIN" >/dev/null
  echo "[auth-bench] read with JWT (auth on): $(cat "$WORK/read_auth.json")"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  "$HEARTH" --port 0 --mllp-port -1 --port-file "$WORK/port2" --data-dir "$WORK/data" --set log.access=false >"$WORK/server2.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 200); do [[ -s $WORK/port2 ]] && break; sleep 0.05; done
  PORT2=$(sed -n 's/^http=//p' "$WORK/port2")
  export HEARTH_BENCH_RESULT=$WORK/read_open.json
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/lua/read.lua "http://127.0.0.1:$PORT2/fhir" >/dev/null
  echo "[auth-bench] read without auth (auth off): $(cat "$WORK/read_open.json")"
  # The same request bytes (the JWT header sent, and ignored): isolates the token check from the
  # cost of parsing a ~1 KB longer request.
  export HEARTH_BENCH_RESULT=$WORK/read_open_hdr.json
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/auth_read.lua" "http://127.0.0.1:$PORT2" >/dev/null
  echo "[auth-bench] read without auth, same Authorization header sent (auth off): $(cat "$WORK/read_open_hdr.json")"
fi
