#!/usr/bin/env bash
# Hearth search and import benchmark: generate a synthetic hospital (bench/gen_hospital.py, ~100
# resources per patient), import it through transaction Bundles (bench/load.py), then wrk each search
# of issue 3 against a Release hearth on loopback. See bench/README.md ("Search and import").
#
# usage: bench/search_bench.sh [--db sqlite|pg-temp|sqlite:PATH|postgresql://...] [--patients N]
#                              [--skip-load] [--data-dir DIR] [--duration S] [--warmup S]
#                              [--connections C] [--threads T] [--load-connections K]
#                              [--load-mode transaction|per-resource] [--bundle-size B] [--heavy K]
#                              [--seed S] [--shared-refs id|conditional] [--tests LIST] [--out FILE]
#                              [--set key=value]... [--check] [--keep]
#
# Defaults: --db sqlite, --patients 10000 (about 1M resources), 15 s per test after a 3 s warm-up,
# wrk 2 threads x 16 connections, loader 4 connections, bundles of ~500 entries, 1 heavy patient
# (~500 resources, for $everything), seed 1, the six tests of issue 3 (LIST: comma-separated names
# from: family identifier obs-code-date chain revinclude everything chain-family
# revinclude-encounter read; "all" for every one).
#
# Data: generated bundles are cached in $BUILD_DIR/search/gen-<parameters> (deterministic, so
# shared by every store), and the loaded database lives in --data-dir (default
# $BUILD_DIR/search/<db>-<patients>p): hearth's data dir, the pg-temp cluster, ids.json (server ids
# of sample and heavy patients), load.json. Without --skip-load that directory is emptied first; with
# it, the database and ids.json of an earlier complete load are reused as they are.
#
# Environment: HEARTH_BINARY (use this hearth; make it Release), HEARTH_BENCH_BUILD_DIR (default
# <repo>/build/bench), HEARTH_BENCH_CMAKE_ARGS (extra configure arguments), HEARTH_BENCH_LOAD_TIMEOUT
# (seconds, default 7200).
#
# Exit status: 0 ok; 1 setup failure; 3 the load or some request failed (non-2xx, socket errors, or
# a query that does not answer 200 before the run: the figures are not valid); 4 with --check, a
# floor was missed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

DB_ARG=sqlite
PATIENTS=10000
SKIP_LOAD=0
DATA_DIR=""
DURATION=15
WARMUP=3
CONNECTIONS=16
THREADS=2
LOAD_CONNECTIONS=4
LOAD_MODE=transaction
BUNDLE_SIZE=500
HEAVY=1
SEED=1
SHARED_REFS=id
TESTS=default
OUT=""
CHECK=0
KEEP=0
# The generator books appointments without checking each practitioner's calendar (random times),
# so the double-booking guard (scheduling.prevent-double-booking, default on) would refuse some of
# its transactions: the search benchmark loads with it off. (--set ...=true puts it back.)
SERVER_SETS=(--set scheduling.prevent-double-booking=false)
BUILD_DIR="${HEARTH_BENCH_BUILD_DIR:-$REPO_ROOT/build/bench}"
LOAD_TIMEOUT="${HEARTH_BENCH_LOAD_TIMEOUT:-7200}"

# Floors of issue 3 (SQLite, 1M resources, this 2-core machine).
FLOOR_IDENTIFIER_P99_MS=10
FLOOR_EVERYTHING_P99_MS=100
FLOOR_IMPORT_RPS=5000
FLOOR_RESOURCES=1000000

# name|values file|path template below the FHIR base ({n}: field n of a values line, percent-encoded)
ALL_TESTS=(
  "family|family.tsv|Patient?family={1}"
  "identifier|identifier.tsv|Patient?identifier={1}"
  "obs-code-date|obs.tsv|Observation?subject=Patient/{1}&code={2}&date=ge{3}"
  "chain|chain.tsv|DiagnosticReport?subject:Patient.identifier={1}"
  "revinclude|patient.tsv|Patient?_id={1}&_revinclude=Observation:subject"
  "everything|heavy.tsv|Patient/{1}/\$everything?_count=1000"
  "chain-family|family.tsv|Observation?subject:Patient.family={1}"
  "revinclude-encounter|patient.tsv|Patient?_id={1}&_revinclude=Encounter:patient"
  "read|patient.tsv|Patient/{1}"
)
DEFAULT_TESTS="family,identifier,obs-code-date,chain,revinclude,everything"

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-1}"; }
. "$SCRIPT_DIR/lib/common.sh"

while (( $# )); do
  case "$1" in
    --db) DB_ARG="${2:?}"; shift 2 ;;
    --patients) PATIENTS="${2:?}"; shift 2 ;;
    --skip-load) SKIP_LOAD=1; shift ;;
    --data-dir) DATA_DIR="${2:?}"; shift 2 ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --warmup) WARMUP="${2:?}"; shift 2 ;;
    --connections) CONNECTIONS="${2:?}"; shift 2 ;;
    --threads) THREADS="${2:?}"; shift 2 ;;
    --load-connections) LOAD_CONNECTIONS="${2:?}"; shift 2 ;;
    --load-mode) LOAD_MODE="${2:?}"; shift 2 ;;
    --bundle-size) BUNDLE_SIZE="${2:?}"; shift 2 ;;
    --heavy) HEAVY="${2:?}"; shift 2 ;;
    --seed) SEED="${2:?}"; shift 2 ;;
    --shared-refs) SHARED_REFS="${2:?}"; shift 2 ;;
    --tests) TESTS="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --set) SERVER_SETS+=(--set "${2:?}"); shift 2 ;;
    --check) CHECK=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "bench: unknown option $1" >&2; usage 1 ;;
  esac
done
need_int --patients "$PATIENTS" 1 10000000
need_int --duration "$DURATION" 1 600
need_int --warmup "$WARMUP" 0 60
need_int --connections "$CONNECTIONS" 1 1024
need_int --threads "$THREADS" 1 64
need_int --load-connections "$LOAD_CONNECTIONS" 1 64
need_int --bundle-size "$BUNDLE_SIZE" 1 100000
need_int --heavy "$HEAVY" 1 100
need_int --seed "$SEED" 0 999999999
(( THREADS <= CONNECTIONS )) || die "--threads must not exceed --connections"
case "$LOAD_MODE" in transaction|per-resource) ;; *) die "--load-mode must be transaction or per-resource" ;; esac
case "$SHARED_REFS" in id|conditional) ;; *) die "--shared-refs must be id or conditional" ;; esac
case "$DB_ARG" in
  sqlite) DB_URL=""; DB_KEY=sqlite ;;
  pg-temp) DB_URL=pg-temp; DB_KEY=pg-temp ;;
  sqlite:*) DB_URL="$DB_ARG"; DB_KEY=sqlite-path ;;
  postgresql://*|postgres://*) DB_URL="$DB_ARG"; DB_KEY=postgresql ;;
  *) die "--db must be sqlite, pg-temp, sqlite:PATH or postgresql://..." ;;
esac
[[ "$TESTS" == default ]] && TESTS="$DEFAULT_TESTS"
SELECTED=()
if [[ "$TESTS" == all ]]; then
  SELECTED=("${ALL_TESTS[@]}")
else
  IFS=, read -r -a wanted <<<"$TESTS"
  for w in "${wanted[@]}"; do
    found=""
    for t in "${ALL_TESTS[@]}"; do [[ "${t%%|*}" == "$w" ]] && found="$t"; done
    [[ -n "$found" ]] || die "unknown test '$w' (see --help)"
    SELECTED+=("$found")
  done
fi
if [[ -n "$OUT" ]]; then
  mkdir -p "$(dirname "$OUT")"
  OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
fi

ensure_tools wrk:wrk jq:jq curl:curl cmake:cmake timeout:coreutils ss:iproute2 python3:python3
WARNINGS=()
mkdir -p "$BUILD_DIR/search"
BUILD_DIR="$(cd "$BUILD_DIR" && pwd)"
build_hearth

# --- data layout ---------------------------------------------------------------------------------
GEN_DIR="$BUILD_DIR/search/gen-p$PATIENTS-s$SEED-b$BUNDLE_SIZE-h$HEAVY"
[[ "$SHARED_REFS" == id ]] || GEN_DIR="$GEN_DIR-conditional"
[[ -n "$DATA_DIR" ]] || DATA_DIR="$BUILD_DIR/search/$DB_KEY-${PATIENTS}p"
if (( SKIP_LOAD )); then
  [[ -d "$DATA_DIR" ]] || die "--skip-load: no data dir $DATA_DIR (same --db and --patients as the load, or --data-dir)"
else
  mkdir -p "$DATA_DIR"
fi
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
MARKER="$DATA_DIR/.hearth-search-bench"
STATE="$DATA_DIR/state.json"
HEARTH_DATA_DIR="$DATA_DIR/hearth"
PG_DIR="$DATA_DIR/pg"
IDS="$DATA_DIR/ids.json"
LOAD_REPORT="$DATA_DIR/load.json"
VALUES="$DATA_DIR/values"

if (( SKIP_LOAD )); then
  [[ -f "$MARKER" && -s "$IDS" && -s "$STATE" ]] \
    || die "--skip-load: $DATA_DIR holds no complete earlier load (run once without --skip-load)"
  [[ "$(jq -r .complete "$STATE")" == true ]] || die "--skip-load: the load in $DATA_DIR did not complete"
  [[ "$(jq -r .db "$STATE")" == "$DB_KEY" ]] \
    || die "--skip-load: $DATA_DIR was loaded with --db $(jq -r .db "$STATE"), not $DB_ARG"
  PATIENTS="$(jq -r .patients "$STATE")"
else
  # Only a directory we made (marker) or an empty one is wiped.
  if [[ ! -f "$MARKER" && -n "$(ls -A "$DATA_DIR")" ]]; then
    die "$DATA_DIR is not empty and not a search benchmark data dir; choose another --data-dir"
  fi
  rm -rf "$HEARTH_DATA_DIR" "$PG_DIR" "$IDS" "$LOAD_REPORT" "$STATE" "$VALUES"
  touch "$MARKER"
  [[ "$DB_KEY" == postgresql ]] && WARNINGS+=("loaded into an existing PostgreSQL database: it should have been empty (identifiers repeat across loads)")
fi

# --- processes we own; everything is stopped on exit ---------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hearth-search-bench.XXXXXX")"
WRK_PID=""
LOAD_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n "$WRK_PID" ]] && stop_pid "$WRK_PID" TERM 5
  [[ -n "$LOAD_PID" ]] && stop_pid "$LOAD_PID" TERM 10
  [[ -n "$HEARTH_PID" ]] && stop_pid "$HEARTH_PID" TERM 60
  stop_temp_pg
  if (( KEEP )); then note "kept work dir $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- generate (cached) ---------------------------------------------------------------------------
if (( ! SKIP_LOAD )); then
  if [[ -s "$GEN_DIR/queries.json" && -f "$GEN_DIR/.complete" ]]; then
    note "reusing generated bundles in $GEN_DIR"
  else
    rm -rf "$GEN_DIR"
    note "generating $PATIENTS patients into $GEN_DIR"
    python3 "$SCRIPT_DIR/gen_hospital.py" --patients "$PATIENTS" --seed "$SEED" --bundle-size "$BUNDLE_SIZE" \
      --heavy "$HEAVY" --shared-refs "$SHARED_REFS" --out "$GEN_DIR" || die "gen_hospital.py failed"
    touch "$GEN_DIR/.complete"
  fi
fi

# --- start ---------------------------------------------------------------------------------------
DB_TEMP_NOTE=""
[[ "$DB_URL" == pg-temp ]] && start_temp_pg
DB_LABEL=sqlite
[[ "$DB_URL" =~ ^postgres ]] && DB_LABEL=postgresql
DB_SHOWN="$(db_shown "${DB_URL:-sqlite:$HEARTH_DATA_DIR/hearth.db (default)}")$DB_TEMP_NOTE"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOADAVG_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  WARNINGS+=("machine was busy when the run started (load average $LOADAVG_START on $(nproc) cores): figures are low and noisy")
fi
note "work dir $WORK; data dir $DATA_DIR; hearth $HEARTH; load average $LOADAVG_START"
start_hearth main
HEARTH_URL="http://127.0.0.1:$HEARTH_PORT/fhir"
note "hearth on 127.0.0.1:$HEARTH_PORT ($DB_SHOWN)"

# --- load ----------------------------------------------------------------------------------------
LOAD_JSON=null
LOADED_NOW=false
if (( ! SKIP_LOAD )); then
  jq -n --arg db "$DB_KEY" --argjson patients "$PATIENTS" --arg gen "$GEN_DIR" \
    '{db: $db, patients: $patients, generated: $gen, complete: false}' >"$STATE"
  note "loading $(jq .resources "$GEN_DIR/queries.json") resources ($LOAD_MODE, $LOAD_CONNECTIONS connections)"
  load_rc=0
  timeout -k 10 "$LOAD_TIMEOUT" python3 "$SCRIPT_DIR/load.py" --url "$HEARTH_URL" --in "$GEN_DIR" \
    --ids-out "$IDS" --report "$LOAD_REPORT" --connections "$LOAD_CONNECTIONS" --mode "$LOAD_MODE" &
  LOAD_PID=$!
  wait "$LOAD_PID" || load_rc=$?
  LOAD_PID=""
  if (( load_rc != 0 )); then
    echo "!!! the load failed (status $load_rc): no search figures; server log: $WORK/hearth-main.log" >&2
    tail -5 "$WORK/hearth-main.log" >&2 || true
    KEEP=1
    exit 3
  fi
  LOADED_NOW=true
  jq '.complete = true' "$STATE" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
fi
[[ -s "$LOAD_REPORT" ]] && LOAD_JSON="$(cat "$LOAD_REPORT")"
DB_BYTES="$(du -sb "$( [[ "$DB_KEY" == pg-temp ]] && echo "$PG_DIR" || echo "$HEARTH_DATA_DIR")" 2>/dev/null | cut -f1 || echo 0)"

# --- query values (tab-separated lines for wrk/query.lua) ----------------------------------------
mkdir -p "$VALUES"
jq -r '.sample_patients[] | .family' "$IDS" >"$VALUES/family.tsv"
jq -r '.sample_patients[] | .identifier' "$IDS" >"$VALUES/identifier.tsv"
jq -r '.sample_patients[] | .id as $id | .observations[]? | [$id, .code, .date] | @tsv' "$IDS" >"$VALUES/obs.tsv"
jq -r '.sample_patients[] | select(.has_report) | .identifier' "$IDS" >"$VALUES/chain.tsv"
jq -r '.sample_patients[] | .id' "$IDS" >"$VALUES/patient.tsv"
jq -r '.heavy_patients[] | .id' "$IDS" >"$VALUES/heavy.tsv"
for f in "$VALUES"/*.tsv; do [[ -s "$f" ]] || die "no query values for $(basename "$f") in $IDS"; done

# --- queries -------------------------------------------------------------------------------------
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# The path of a template filled from the first line of a values file (the same encoding as the Lua
# script: jq's @uri keeps exactly the RFC 3986 unreserved characters).
first_path() {  # template values-file
  local path="$1" fields k v
  IFS=$'\t' read -r -a fields <"$2"
  for (( k = 1; k <= ${#fields[@]}; k++ )); do
    v="$(jq -rn --arg v "${fields[k-1]}" '$v | @uri')"
    path="${path//\{$k\}/$v}"
  done
  printf '%s' "$path"
}

# Before measuring: the first query of the test must answer 200 with a Bundle; records how many
# entries match (an empty result would measure nothing) and whether the result was paged.
precheck() {  # name template values -> prints a JSON object
  local path status body="$WORK/precheck-$1.json"
  path="$(first_path "$2" "$3")"
  status="$(curl -s --max-time 60 -o "$body" -w '%{http_code}' -H 'Accept: application/fhir+json' "$HEARTH_URL/$path" || true)"
  [[ "$status" =~ ^[0-9]+$ ]] || status=0
  status=$(( 10#$status ))   # curl says 000 when there was no response
  jq -n --arg path "$path" --argjson status "$status" --slurpfile b <(jq -c . "$body" 2>/dev/null || echo null) '
    ($b[0]) as $r
    | {path: $path, status: $status,
       resourceType: ($r.resourceType? // null),
       diagnostics: (if $r.resourceType? == "OperationOutcome" then ($r.issue[0].diagnostics // $r.issue[0].code) else null end),
       total: ($r.total? // null),
       entries: (if $r.resourceType? == "Bundle" then ($r.entry // [] | length) elif $status == 200 then 1 else 0 end),
       matches: (if $r.resourceType? == "Bundle" then ($r.entry // [] | map(select(.search.mode? != "include")) | length)
                 elif $status == 200 then 1 else 0 end),
       included: (if $r.resourceType? == "Bundle" then ($r.entry // [] | map(select(.search.mode? == "include")) | length) else 0 end),
       paged: (if $r.resourceType? == "Bundle" then (($r.link // []) | map(select(.relation == "next")) | length > 0) else false end),
       bytes: 0}' | jq -c --argjson bytes "$(wc -c <"$body" 2>/dev/null || echo 0)" '.bytes = $bytes'
}

run_wrk() {  # name template values seconds warmup? -> appends a result line unless warm-up
  local name="$1" template="$2" values="$3" seconds="$4" warm="$5"
  local result="$WORK/wrk-$name-$warm.json" out="$WORK/wrk-$name-$warm.txt" rc=0 before="{}" after="{}"
  rm -f "$result"
  [[ "$warm" == measure ]] && before="$(metrics_statuses)"
  HEARTH_BENCH_LUA_DIR="$SCRIPT_DIR/lua" HEARTH_BENCH_RESULT="$result" HEARTH_BENCH_SEED="$RANDOM" \
  HEARTH_BENCH_VALUES="$values" HEARTH_BENCH_TEMPLATE="$template" \
    timeout -k 5 $(( seconds + 60 )) \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${seconds}s" --timeout 10s --latency \
        -s "$SCRIPT_DIR/wrk/query.lua" "$HEARTH_URL" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  if (( rc != 0 )) || [[ ! -s "$result" ]]; then
    cat "$out" >&2
    die "wrk $name failed (status $rc)"
  fi
  [[ "$warm" == measure ]] || return 0
  after="$(metrics_statuses)"
  local non2xx_line
  non2xx_line="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]\+\).*/\1/p' "$out")"
  jq -c --arg test "$name" --arg template "$template" --argjson before "$before" --argjson after "$after" \
        --argjson non2xxLine "${non2xx_line:-0}" --argjson precheck "$PRECHECK" '
    . + {test: $test, query: $template, precheck: $precheck,
         statuses: (if ($after | length) == 0 then null
                    else ($after | to_entries | map({key, value: (.value - ($before[.key] // 0))})
                          | map(select(.value > 0)) | from_entries) end)}
    | .non_2xx = ([.errors.status, $non2xxLine,
                   (if .statuses == null then 0
                    else (.statuses | to_entries | map(select(.key | startswith("2") | not) | .value) | add // 0) end)]
                  | max)
    | .socket_errors = (.errors.connect + .errors.read + .errors.write + .errors.timeout)' "$result" >>"$RESULTS"
  note "$(tail -1 "$RESULTS" | jq -r '"\(.test): \(.rps | floor) req/s, p50 \(.latency_us.p50 / 1000) ms, p99 \(.latency_us.p99 / 1000) ms, non-2xx \(.non_2xx), socket errors \(.socket_errors)"')"
}

for t in "${SELECTED[@]}"; do
  IFS='|' read -r name values template <<<"$t"
  PRECHECK="$(precheck "$name" "$template" "$VALUES/$values")"
  note "$name: GET /fhir/$(jq -r .path <<<"$PRECHECK") -> $(jq -r '"\(.status) \(.resourceType // "")\(if .resourceType == "Bundle" then ", \(.matches) match(es) + \(.included) included\(if .paged then ", paged" else "" end)" else "" end)\(if .diagnostics then ": \(.diagnostics)" else "" end)"' <<<"$PRECHECK")"
  if [[ "$(jq .status <<<"$PRECHECK")" != 200 ]]; then
    jq -nc --arg test "$name" --arg template "$t" --argjson precheck "$PRECHECK" \
      '{test: $test, query: ($template | split("|")[2]), precheck: $precheck, skipped: true}' >>"$RESULTS"
    continue
  fi
  if [[ "$(jq .matches <<<"$PRECHECK")" == 0 ]]; then
    WARNINGS+=("$name: the first query matched nothing: the figure measures an empty search")
  fi
  (( WARMUP > 0 )) && run_wrk "$name" "$template" "$VALUES/$values" "$WARMUP" warmup
  run_wrk "$name" "$template" "$VALUES/$values" "$DURATION" measure
done
stop_hearth

# --- report --------------------------------------------------------------------------------------
LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
GIT_REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$REPO_ROOT" diff --quiet HEAD -- 2>/dev/null || GIT_REV="$GIT_REV+dirty"
WARNINGS_JSON="$(printf '%s\n' "${WARNINGS[@]+"${WARNINGS[@]}"}" | jq -R . | jq -s 'map(select(length > 0))')"
RESOURCES="$(jq '.resources // 0' "$GEN_DIR/queries.json" 2>/dev/null || echo 0)"
[[ "$LOAD_JSON" != null ]] && RESOURCES="$(jq .resources <<<"$LOAD_JSON")"

REPORT="$(jq -s \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg cpu "$CPU_MODEL" --argjson nproc "$(nproc)" \
  --arg loadStart "$LOADAVG_START" --arg loadEnd "$LOADAVG_END" --arg git "$GIT_REV" \
  --arg hearth "$HEARTH" --arg build "$HEARTH_BUILD" --arg db "$DB_LABEL" --arg dbUrl "$DB_SHOWN" \
  --argjson patients "$PATIENTS" --argjson resources "$RESOURCES" --argjson dbBytes "${DB_BYTES:-0}" \
  --arg dataDir "$DATA_DIR" --argjson load "$LOAD_JSON" --argjson loadedNow "$LOADED_NOW" \
  --argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson connections "$CONNECTIONS" \
  --argjson threads "$THREADS" --argjson warnings "$WARNINGS_JSON" \
  --arg sets "${SERVER_SETS[*]+"${SERVER_SETS[*]}"}" \
  --argjson fId "$FLOOR_IDENTIFIER_P99_MS" --argjson fEv "$FLOOR_EVERYTHING_P99_MS" \
  --argjson fImp "$FLOOR_IMPORT_RPS" --argjson fRes "$FLOOR_RESOURCES" '
  def r2: . * 100 | round / 100;
  map(if .skipped then . else
        {test, query, precheck, rps: (.rps * 10 | round / 10), p50_ms: (.latency_us.p50 / 1000 | r2),
         p90_ms: (.latency_us.p90 / 1000 | r2), p99_ms: (.latency_us.p99 / 1000 | r2),
         max_ms: (.latency_us.max / 1000 | r2), requests, non_2xx, socket_errors, statuses} end) as $tests
  | def t($n): $tests | map(select(.test == $n and (.skipped | not))) | first;
  {benchmark: "hearth search and import (bench/search_bench.sh)", date: $date,
   machine: {cpu: $cpu, nproc: $nproc, loadavg_start: $loadStart, loadavg_end: $loadEnd,
             note: "wrk, the loader and hearth share these cores"},
   hearth: {binary: $hearth, build: $build, git: $git, extra_settings: $sets},
   config: {db: $db, db_url: $dbUrl, data_dir: $dataDir, patients: $patients, resources: $resources,
            database_bytes: $dbBytes, duration_s: $duration, warmup_s: $warmup,
            wrk_connections: $connections, wrk_threads: $threads},
   load: (if $load == null then null else $load + {in_this_run: $loadedNow} end),
   tests: $tests,
   floors: [
     {name: "Patient?identifier p99 < \($fId) ms", value: (t("identifier").p99_ms // null),
      pass: ((t("identifier").p99_ms // 1e9) < $fId)},
     {name: "$everything p99 < \($fEv) ms", value: (t("everything").p99_ms // null),
      pass: ((t("everything").p99_ms // 1e9) < $fEv)},
     {name: "import >= \($fImp) resources/s (transaction Bundles)",
      value: (if $load.mode? == "transaction" then $load.resources_per_sec else null end),
      pass: ($load.mode? == "transaction" and ($load.resources_per_sec? // 0) >= $fImp)}],
   floors_apply: ($db == "sqlite" and $resources >= $fRes),
   failed_requests: ($tests | map(if .skipped then 1 else .non_2xx + .socket_errors end) | add // 0),
   warnings: $warnings}' "$RESULTS")"

[[ -n "$OUT" ]] && printf '%s\n' "$REPORT" >"$OUT"

jq -r '
  def fmt($w): tostring | if length < $w then (" " * ($w - length)) + . else . end;
  def pad($w): tostring | . + (" " * $w) | .[0:$w];
  "",
  "Hearth search benchmark  \(.date)  git \(.hearth.git)",
  "machine: \(.machine.nproc) cores, \(.machine.cpu) (shared by wrk and hearth); load average \(.machine.loadavg_start) at start, \(.machine.loadavg_end) at end",
  "store: \(.config.db) (\(.config.db_url)); \(.config.patients) patients, \(.config.resources) resources, database \(.config.database_bytes / 1048576 | floor) MiB",
  (if .load then "import: \(.load.resources) resources in \(.load.seconds) s = \(.load.resources_per_sec) resources/s overall, median \(.load.median_window_resources_per_sec)/s per \(.load.window_s) s window (first \(.load.first_window_resources_per_sec), last \(.load.last_window_resources_per_sec)); bundle p50 \(.load.bundle_latency_ms.p50) ms, p99 \(.load.bundle_latency_ms.p99) ms; \(.load.mode), \(.load.connections) connections; loader CPU \(.load.loader_cpu_share * 100 | round)% of a core\(if .load.in_this_run then "" else " (an earlier run)" end)"
   else "import: not measured" end),
  "wrk: \(.config.wrk_threads) threads, \(.config.wrk_connections) connections, \(.config.duration_s) s per test after \(.config.warmup_s) s warm-up",
  "",
  "test                     req/s    p50 ms    p99 ms  non-2xx  matches  query",
  (.tests[] | if .skipped then
      "\(.test | pad(20))  SKIPPED: HTTP \(.precheck.status)\(if .precheck.diagnostics then " \(.precheck.diagnostics)" else "" end)  \(.query)"
    else
      "\(.test | pad(20))\(.rps | floor | fmt(9))\(.p50_ms | fmt(10))\(.p99_ms | fmt(10))\(.non_2xx + .socket_errors | fmt(9))\(.precheck.matches | fmt(5))\(if .precheck.included > 0 then "+\(.precheck.included)" else "" end | pad(4))  \(.query)"
    end),
  "",
  "floors (\(if .floors_apply then "SQLite at >= 1M resources: apply" else "informative only: they are for SQLite at >= 1M resources" end)):",
  (.floors[] | "  \(if .value == null then "n/a " elif .pass then "PASS" else "FAIL" end)  \(.name)  (measured \(.value))"),
  (.warnings[] | "WARNING: \(.)")
' <<<"$REPORT"
[[ -n "$OUT" ]] && echo "JSON written to $OUT"

status=0
FAILED="$(jq .failed_requests <<<"$REPORT")"
if [[ "$FAILED" != 0 ]]; then
  {
    echo
    echo "!!! $FAILED FAILED REQUESTS OR SKIPPED TESTS (non-2xx, socket errors, or a query that did not answer 200):"
    jq -r '.tests[] | select(.skipped or (.non_2xx + .socket_errors > 0))
           | "!!!   \(.test): \(if .skipped then "skipped, HTTP \(.precheck.status)" else "non-2xx \(.non_2xx), socket errors \(.socket_errors), statuses \(.statuses | tojson)" end)"' <<<"$REPORT"
  }
  status=3
fi
if (( status == 0 && CHECK )) && [[ "$(jq '.floors_apply and ([.floors[] | .pass] | all | not)' <<<"$REPORT")" == true ]]; then
  echo "bench: --check: a floor was missed" >&2
  status=4
fi
exit "$status"
