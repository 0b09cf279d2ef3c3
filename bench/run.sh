#!/usr/bin/env bash
# Hearth core benchmark: load N synthetic Patients, then wrk read/create/update against a Release
# hearth on loopback, and the same read against nginx serving a static copy of one Patient (the
# ceiling). See bench/README.md for what each figure means.
#
# usage: bench/run.sh [--patients N] [--duration S] [--connections C] [--threads T] [--db URL]
#                     (URL: sqlite:PATH | postgresql://... | pg-temp = a throwaway local PostgreSQL)
#                     [--out FILE] [--repeat R] [--warmup S] [--load-connections C]
#                     [--log-off-tests read|all|none] [--set key=value]... [--check] [--keep]
#
# Environment: HEARTH_BINARY (use this hearth instead of building one; it should be a Release
# build), HEARTH_BENCH_BUILD_DIR (where to build; default <repo>/build/bench), HEARTH_BENCH_LOADER
# (use this hearth-bench-load instead of building it), HEARTH_BENCH_CMAKE_ARGS (extra arguments for
# configuring the hearth build, split on spaces).
#
# Exit status: 0 ok; 1 setup failure; 3 some request failed (non-2xx or socket errors: the figures
# are not trustworthy); 4 with --check, a floor was missed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

PATIENTS=10000
DURATION=15
CONNECTIONS=16
THREADS=2
DB_URL=""
OUT=""
REPEAT=1
WARMUP=3
LOAD_CONNECTIONS=8
LOG_OFF_TESTS=read
CHECK=0
KEEP=0
SERVER_SETS=()
BUILD_DIR="${HEARTH_BENCH_BUILD_DIR:-$REPO_ROOT/build/bench}"

# Floors and targets (SQLite, this 2-core machine); README.md explains them.
FLOOR_READ_RPS=15000
FLOOR_CREATE_RPS=2000
FLOOR_READ_P99_MS=5
TARGET_READ_VS_NGINX=0.5

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-1}"; }
# die, note, need_int, ensure_tools, build_hearth, alive, stop_pid, free_port, start_temp_pg,
# stop_temp_pg, start_hearth, stop_hearth, metrics_statuses: shared with search_bench.sh.
. "$SCRIPT_DIR/lib/common.sh"

while (( $# )); do
  case "$1" in
    --patients) PATIENTS="${2:?}"; shift 2 ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --connections) CONNECTIONS="${2:?}"; shift 2 ;;
    --threads) THREADS="${2:?}"; shift 2 ;;
    --db) DB_URL="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --repeat) REPEAT="${2:?}"; shift 2 ;;
    --warmup) WARMUP="${2:?}"; shift 2 ;;
    --load-connections) LOAD_CONNECTIONS="${2:?}"; shift 2 ;;
    --log-off-tests) LOG_OFF_TESTS="${2:?}"; shift 2 ;;
    --set) SERVER_SETS+=(--set "${2:?}"); shift 2 ;;
    --check) CHECK=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "bench: unknown option $1" >&2; usage 1 ;;
  esac
done
need_int --patients "$PATIENTS" 1 1000000
need_int --duration "$DURATION" 1 300
need_int --connections "$CONNECTIONS" 1 1024
need_int --threads "$THREADS" 1 64
need_int --repeat "$REPEAT" 1 9
need_int --warmup "$WARMUP" 0 60
need_int --load-connections "$LOAD_CONNECTIONS" 1 256
(( THREADS <= CONNECTIONS )) || die "--threads must not exceed --connections"
case "$LOG_OFF_TESTS" in read|all|none) ;; *) die "--log-off-tests must be read, all or none" ;; esac
if [[ -n "$DB_URL" ]]; then
  [[ "$DB_URL" =~ ^(sqlite:|postgresql://|postgres://|pg-temp$) ]] \
    || die "--db must be sqlite:..., postgresql://... or pg-temp"
fi
if [[ -n "$OUT" ]]; then
  mkdir -p "$(dirname "$OUT")"
  OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
fi

# --- tools -------------------------------------------------------------------------------------
ensure_tools wrk:wrk nginx:nginx-light jq:jq curl:curl cmake:cmake timeout:coreutils ss:iproute2
# Debian's nginx package starts a system nginx on port 80; it is not ours and we leave it alone.
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || die "nginx not found"
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"

build_loader() {
  if [[ -n "${HEARTH_BENCH_LOADER:-}" ]]; then
    [[ -x "$HEARTH_BENCH_LOADER" ]] || die "HEARTH_BENCH_LOADER is not executable"
    LOADER="$HEARTH_BENCH_LOADER"; return
  fi
  cmake -S "$SCRIPT_DIR" -B "$BUILD_DIR/tools" -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR/build-tools.log" 2>&1 \
    && cmake --build "$BUILD_DIR/tools" -j2 >>"$BUILD_DIR/build-tools.log" 2>&1 \
    || { tail -30 "$BUILD_DIR/build-tools.log" >&2; die "building hearth-bench-load failed"; }
  LOADER="$BUILD_DIR/tools/hearth-bench-load"
}

WARNINGS=()
mkdir -p "$BUILD_DIR"
build_hearth
build_loader

# --- processes we own; everything is stopped on exit ---------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hearth-bench.XXXXXX")"
chmod 755 "$WORK"   # nginx workers may run as nobody and must reach the static file
HEARTH_PID=""
NGINX_PID=""
WRK_PID=""
PG_TEMP_DATA=""
HEARTH_EXIT_CODES=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$WRK_PID" ]] && stop_pid "$WRK_PID" TERM 5
  [[ -n "$HEARTH_PID" ]] && stop_pid "$HEARTH_PID" TERM 20
  [[ -n "$NGINX_PID" ]] && stop_pid "$NGINX_PID" TERM 10
  [[ -n "$PG_TEMP_DATA" ]] && stop_temp_pg
  if (( KEEP )); then note "kept work dir $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NGINX_PORT=""
start_nginx() {
  local dir="$WORK/nginx" attempt i
  mkdir -p "$dir/www" "$dir/tmp" "$dir/logs"
  cp "$WORK/patient.json" "$dir/www/patient.json"
  chmod -R a+rX "$dir/www"
  for (( attempt = 0; attempt < 5; attempt++ )); do
    NGINX_PORT="$(free_port)"
    cat >"$dir/nginx.conf" <<EOF
# Ceiling for the read test: every GET returns the same static Patient JSON.
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  open_file_cache max=16 inactive=300s;
  open_file_cache_valid 300s;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $dir/www;
    location / {
      default_type "application/fhir+json;charset=utf-8";
      try_files /patient.json =404;
    }
  }
}
EOF
    "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >>"$dir/logs/stdout.log" 2>&1 &
    NGINX_PID=$!
    for (( i = 0; i < 50; i++ )); do
      if curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$NGINX_PORT/fhir/Patient/x"; then return 0; fi
      alive "$NGINX_PID" || break
      sleep 0.1
    done
    stop_pid "$NGINX_PID" TERM 5; NGINX_PID=""
  done
  tail -5 "$dir/logs/error.log" >&2 || true
  die "nginx did not start"
}

# --- measurements --------------------------------------------------------------------------------
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# run_wrk test target log run url script bodies seconds -> appends one line to $RESULTS (not for
# the warm-up). bodies: NDJSON file for create/update ("" for read).
run_wrk() {
  local test="$1" target="$2" log="$3" run="$4" url="$5" script="$6" bodies="$7" seconds="$8"
  local tag="$test-$target-log${log//\//}-$run"
  local result="$WORK/wrk-$tag.json" out="$WORK/wrk-$tag.txt" before="{}" after="{}" rc=0
  rm -f "$result"
  [[ "$target" == hearth && "$run" != warmup ]] && before="$(metrics_statuses)"
  HEARTH_BENCH_LUA_DIR="$SCRIPT_DIR/lua" HEARTH_BENCH_RESULT="$result" HEARTH_BENCH_SEED="$RANDOM" \
  HEARTH_BENCH_BODIES="$bodies" \
    timeout -k 5 $(( seconds + 60 )) \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${seconds}s" --timeout 5s --latency \
        -s "$SCRIPT_DIR/lua/$script" "$url" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  if (( rc != 0 )) || [[ ! -s "$result" ]]; then
    cat "$out" >&2
    die "wrk $test against $target failed (status $rc)"
  fi
  [[ "$run" == warmup ]] && return 0
  [[ "$target" == hearth ]] && after="$(metrics_statuses)"
  local non2xx_line
  non2xx_line="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]\+\).*/\1/p' "$out")"
  jq -c --arg test "$test" --arg target "$target" --arg log "$log" --argjson run "$run" \
        --argjson before "$before" --argjson after "$after" --argjson non2xxLine "${non2xx_line:-0}" '
    . + {test: $test, target: $target, access_log: $log, run: $run,
         statuses: (if ($after | length) == 0 then null
                    else ($after | to_entries
                          | map({key, value: (.value - ($before[.key] // 0))})
                          | map(select(.value > 0)) | from_entries) end),
         wrk_non2xx_line: $non2xxLine}
    | .non_2xx = ([.errors.status, .wrk_non2xx_line,
                   (if .statuses == null then 0
                    else (.statuses | to_entries | map(select(.key | startswith("2") | not) | .value) | add // 0) end)]
                  | max)
    | .socket_errors = (.errors.connect + .errors.read + .errors.write + .errors.timeout)' \
    "$result" >>"$RESULTS"
  local line; line="$(tail -1 "$RESULTS")"
  note "$(jq -r '"\(.test) \(.target) (access log \(.access_log)) run \(.run): \(.rps|floor) req/s, p50 \(.latency_us.p50/1000) ms, p99 \(.latency_us.p99/1000) ms, non-2xx \(.non_2xx), socket errors \(.socket_errors)"' <<<"$line")"
  if [[ "$(jq '.non_2xx + .socket_errors' <<<"$line")" != 0 ]]; then
    note "!!! $test against $target had failures: $(jq -c '{non_2xx, socket_errors, errors, statuses}' <<<"$line")"
    note "!!! wrk output: $out"; grep -E 'Non-2xx|Socket errors' "$out" >&2 || true
  fi
}

measure() {  # test target log run url script bodies
  if (( WARMUP > 0 )); then run_wrk "$1" "$2" "$3" warmup "$5" "$6" "$7" "$WARMUP"; fi
  run_wrk "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$DURATION"
}

# --- the run -------------------------------------------------------------------------------------
DB_TEMP_NOTE=""
[[ "$DB_URL" == pg-temp ]] && start_temp_pg
DB_LABEL="sqlite"
[[ "$DB_URL" =~ ^postgres ]] && DB_LABEL="postgresql"
DB_SHOWN="${DB_URL:-sqlite:<temp data dir>/hearth.db (default)}"
DB_SHOWN="$(sed -E 's#//[^@/]*@#//***@#' <<<"$DB_SHOWN")$DB_TEMP_NOTE"   # never print credentials

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOADAVG_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  WARNINGS+=("machine was busy when the run started (load average $LOADAVG_START on $(nproc) cores): figures are low and noisy")
fi
note "work dir $WORK; hearth $HEARTH; load average $LOADAVG_START"
start_hearth main
HEALTH="$(curl -sf --max-time 5 "http://127.0.0.1:$HEARTH_PORT/health" || true)"
note "hearth on 127.0.0.1:$HEARTH_PORT, /health: $HEALTH"
HEALTH_STORE="$(jq -r '.store // empty' <<<"$HEALTH" 2>/dev/null || true)"
if [[ -n "$HEALTH_STORE" && "$HEALTH_STORE" != "$DB_LABEL"* ]]; then
  WARNINGS+=("/health reports store '$HEALTH_STORE' but the benchmark asked for $DB_LABEL")
fi
HEARTH_URL="http://127.0.0.1:$HEARTH_PORT/fhir"

note "loading $PATIENTS patients over $LOAD_CONNECTIONS connections"
load_rc=0
timeout -k 5 1800 "$LOADER" load --url "$HEARTH_URL" --count "$PATIENTS" --connections "$LOAD_CONNECTIONS" \
  --ids-out "$WORK/ids.txt" --deadline 1700 >"$WORK/load.json" 2>"$WORK/load.err" || load_rc=$?
cat "$WORK/load.err" >&2
[[ -s "$WORK/load.json" ]] || die "loader failed (status $load_rc)"
LOAD_JSON="$(cat "$WORK/load.json")"
note "load: $LOAD_JSON"
CREATED="$(jq .created <<<"$LOAD_JSON")"
(( CREATED > 0 )) || die "no patient was created; cannot benchmark"
if (( load_rc != 0 )); then
  WARNINGS+=("LOAD INCOMPLETE: only $CREATED of $PATIENTS creates succeeded ($(jq -c .statuses <<<"$LOAD_JSON"))")
fi

# The static file for nginx is exactly what hearth answers for one loaded patient.
FIRST_ID="$(head -1 "$WORK/ids.txt")"
curl -sf --max-time 5 -H 'Accept: application/fhir+json' -o "$WORK/patient.json" "$HEARTH_URL/Patient/$FIRST_ID" \
  || die "GET Patient/$FIRST_ID failed right after loading it"
PATIENT_BYTES="$(wc -c <"$WORK/patient.json")"
note "a stored patient is $PATIENT_BYTES bytes as served"

"$LOADER" generate --count 2000 --seed 1001 --out "$WORK/create-bodies.ndjson"
"$LOADER" generate --count 1000 --seed 2002 --out "$WORK/update-bodies.ndjson"
export HEARTH_BENCH_IDS="$WORK/ids.txt"

start_nginx
note "nginx ceiling on 127.0.0.1:$NGINX_PORT"

for (( run = 1; run <= REPEAT; run++ )); do
  measure read hearth on "$run" "$HEARTH_URL" read.lua ""
  measure create hearth on "$run" "$HEARTH_URL" create.lua "$WORK/create-bodies.ndjson"
  measure update hearth on "$run" "$HEARTH_URL" update.lua "$WORK/update-bodies.ndjson"
  measure read nginx n/a "$run" "http://127.0.0.1:$NGINX_PORT/fhir" read.lua ""
done
stop_hearth

if [[ "$LOG_OFF_TESTS" != none ]]; then
  start_hearth logoff --set log.access=false
  HEARTH_URL="http://127.0.0.1:$HEARTH_PORT/fhir"
  for (( run = 1; run <= REPEAT; run++ )); do
    measure read hearth off "$run" "$HEARTH_URL" read.lua ""
    if [[ "$LOG_OFF_TESTS" == all ]]; then
      measure create hearth off "$run" "$HEARTH_URL" create.lua "$WORK/create-bodies.ndjson"
      measure update hearth off "$run" "$HEARTH_URL" update.lua "$WORK/update-bodies.ndjson"
    fi
  done
  stop_hearth
fi
stop_pid "$NGINX_PID" TERM 10; NGINX_PID=""

# --- report --------------------------------------------------------------------------------------
LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
GIT_REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$REPO_ROOT" diff --quiet HEAD -- 2>/dev/null || GIT_REV="$GIT_REV+dirty"
WARNINGS_JSON="$(printf '%s\n' "${WARNINGS[@]+"${WARNINGS[@]}"}" | jq -R . | jq -s 'map(select(length > 0))')"

REPORT="$(jq -s \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg cpu "$CPU_MODEL" --argjson nproc "$(nproc)" \
  --arg loadStart "$LOADAVG_START" --arg loadEnd "$LOADAVG_END" \
  --arg git "$GIT_REV" --arg hearth "$HEARTH" --arg build "$HEARTH_BUILD" \
  --arg db "$DB_LABEL" --arg dbUrl "$DB_SHOWN" --argjson patients "$PATIENTS" \
  --argjson duration "$DURATION" --argjson connections "$CONNECTIONS" --argjson threads "$THREADS" \
  --argjson repeat "$REPEAT" --argjson warmup "$WARMUP" --argjson load "$LOAD_JSON" \
  --argjson patientBytes "$PATIENT_BYTES" --argjson warnings "$WARNINGS_JSON" \
  --arg sets "${SERVER_SETS[*]+"${SERVER_SETS[*]}"}" \
  --argjson floorRead "$FLOOR_READ_RPS" --argjson floorCreate "$FLOOR_CREATE_RPS" \
  --argjson floorP99 "$FLOOR_READ_P99_MS" --argjson targetRatio "$TARGET_READ_VS_NGINX" '
  def median: sort | if length == 0 then null
                     elif length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r1: . * 10 | round / 10;
  def r2: . * 100 | round / 100;
  . as $runs
  | ($runs | group_by([.test, .target, .access_log])
     | map({test: .[0].test, target: .[0].target, access_log: .[0].access_log,
            runs: length,
            rps: (map(.rps) | median | r1),
            p50_ms: (map(.latency_us.p50 / 1000) | median | r2),
            p99_ms: (map(.latency_us.p99 / 1000) | median | r2),
            requests: (map(.requests) | add),
            non_2xx: (map(.non_2xx) | add),
            socket_errors: (map(.socket_errors) | add),
            statuses: (map(.statuses // {}) | reduce .[] as $s ({}; reduce ($s | to_entries[]) as $e (.; .[$e.key] += $e.value))),
            per_run: map({rps: (.rps | r1), p50_ms: (.latency_us.p50 / 1000 | r2), p99_ms: (.latency_us.p99 / 1000 | r2),
                          non_2xx, socket_errors})})) as $tests
  | def pick($t; $g; $l): ($tests | map(select(.test == $t and .target == $g and .access_log == $l)) | first);
  (pick("read"; "hearth"; "on")) as $read
  | (pick("read"; "hearth"; "off")) as $readOff
  | (pick("create"; "hearth"; "on")) as $create
  | (pick("read"; "nginx"; "n/a")) as $nginx
  | ($read.rps / $nginx.rps) as $ratio
  | {benchmark: "hearth core (bench/run.sh)", date: $date,
     machine: {cpu: $cpu, nproc: $nproc, loadavg_start: $loadStart, loadavg_end: $loadEnd,
               note: "wrk, nginx and hearth share these cores"},
     hearth: {binary: $hearth, build: $build, git: $git, extra_settings: $sets},
     config: {db: $db, db_url: $dbUrl, patients: $patients, duration_s: $duration, warmup_s: $warmup,
              wrk_connections: $connections, wrk_threads: $threads, repeat: $repeat,
              aggregate: (if $repeat > 1 then "median of \($repeat) runs (each metric separately)" else "single run" end),
              access_log: "tests marked access_log=on ran with the server default (log.access not set); off = --set log.access=false"},
     load: ($load + {note: "one load, Prefer: return=minimal, access log at server default"}),
     patient_bytes: $patientBytes,
     tests: $tests,
     read_vs_nginx: ($ratio | r2),
     access_log_cost: (if $readOff then (1 - $read.rps / $readOff.rps | r2) else null end),
     floors: [
       {name: "read >= \($floorRead) req/s", value: $read.rps, pass: ($read.rps >= $floorRead)},
       {name: "create >= \($floorCreate) req/s", value: $create.rps, pass: ($create.rps >= $floorCreate)},
       {name: "read p99 < \($floorP99) ms", value: $read.p99_ms, pass: ($read.p99_ms < $floorP99)},
       {name: "read >= \($targetRatio * 100 | round)% of nginx (target)", value: ($ratio | r2), pass: ($ratio >= $targetRatio)}],
     floors_apply: ($db == "sqlite"),
     failed_requests: ($tests | map(.non_2xx + .socket_errors) | add),
     warnings: $warnings}
  ' "$RESULTS")"

[[ -n "$OUT" ]] && printf '%s\n' "$REPORT" >"$OUT"

jq -r '
  def fmt($w): tostring | if length < $w then (" " * ($w - length)) + . else . end;
  def row_name: "\(.test) (\(.target)\(if .target == "hearth" then ", access log \(.access_log)" else ", static file" end))";
  "",
  "Hearth core benchmark  \(.date)  git \(.hearth.git)",
  "machine: \(.machine.nproc) cores, \(.machine.cpu) (shared by wrk, nginx and hearth); load average \(.machine.loadavg_start) at start, \(.machine.loadavg_end) at end",
  "store: \(.config.db) (\(.config.db_url)); \(.config.patients) patients, \(.patient_bytes) bytes each as served",
  "wrk: \(.config.wrk_threads) threads, \(.config.wrk_connections) connections, \(.config.duration_s) s per test after \(.config.warmup_s) s warm-up; \(.config.aggregate)",
  "load: \(.load.created)/\(.load.requested) created in \(.load.seconds) s = \(.load.creates_per_sec) creates/s (\(.load.connections) connections, return=minimal)",
  "",
  "test                                         req/s    p50 ms    p99 ms   non-2xx  sock-err",
  (.tests | sort_by(.target != "hearth", .access_log != "on", .test != "read", .test != "create")[]
   | "\(row_name | . + (" " * 40) | .[0:40])\(.rps | floor | fmt(10))\(.p50_ms | fmt(10))\(.p99_ms | fmt(10))\(.non_2xx | fmt(10))\(.socket_errors | fmt(10))"),
  "",
  "hearth read / nginx read: \(.read_vs_nginx)",
  (if .access_log_cost != null then "access log cost on read: \(.access_log_cost * 100 | round)% of the log-off throughput" else empty end),
  "floors (\(if .floors_apply then "SQLite: apply" else "not SQLite: informative only" end)):",
  (.floors[] | "  \(if .pass then "PASS" else "FAIL" end)  \(.name)  (measured \(.value))"),
  (.warnings[] | "WARNING: \(.)")
' <<<"$REPORT"
[[ -n "$OUT" ]] && echo "JSON written to $OUT"

status=0
FAILED="$(jq .failed_requests <<<"$REPORT")"
if [[ "$FAILED" != 0 ]]; then
  {
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! $FAILED REQUESTS FAILED (non-2xx responses or socket errors) — these figures are NOT valid"
    jq -r '.tests[] | select(.non_2xx + .socket_errors > 0)
           | "!!!   \(.test) \(.target) log \(.access_log): non-2xx \(.non_2xx), socket errors \(.socket_errors), statuses \(.statuses | tojson)"' <<<"$REPORT"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  } | tee /dev/stderr
  status=3
fi
if (( status == 0 && CHECK )) && [[ "$DB_LABEL" == sqlite ]] \
   && [[ "$(jq '[.floors[0:3][] | .pass] | all' <<<"$REPORT")" != true ]]; then
  echo "bench: --check: a floor was missed" >&2
  status=4
fi
exit "$status"
