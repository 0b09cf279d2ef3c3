# shellcheck shell=bash disable=SC2034  # sets variables its callers read (HEARTH_BUILD, DB_TEMP_NOTE ...)
# Shared helpers of the benchmark drivers (bench/run.sh, bench/search_bench.sh); sourced, not run.
#
# The caller sets, before using them:
#   REPO_ROOT, BUILD_DIR        where the sources are and where to build (build_hearth)
#   WORK                        a temp directory of this run (logs, port file, a pg-temp cluster)
#   WARNINGS=()                 caveats for the report (appended to)
#   DB_URL                      "" (SQLite in the data dir), sqlite:..., postgresql://..., or pg-temp
#   SERVER_SETS=()              extra hearth arguments (--set k=v ...)
#   HEARTH_DATA_DIR (optional)  hearth's --data-dir (default $WORK/data)
#   PG_DIR (optional)           where start_temp_pg keeps its cluster (default $WORK/pg); an existing
#                               cluster there is started again instead of created
# and stops what it started on exit (HEARTH_PID, PG_TEMP_DATA: see stop_hearth, stop_temp_pg).

die() { echo "bench: error: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

need_int() {  # name value min max
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a whole number (got '$2')"
  (( $2 >= $3 && $2 <= $4 )) || die "$1 must be in $3..$4 (got $2)"
}

# ensure_tools command:package ... — installs the packages of missing commands with apt (as root).
ensure_tools() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if (( ${#missing[@]} )); then
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]})"
    note "installing ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# Sets HEARTH (the binary) and HEARTH_BUILD (how it was built): $HEARTH_BINARY when set, else a
# Release build (tests off) in $BUILD_DIR/hearth, with extra configure arguments from
# $HEARTH_BENCH_CMAKE_ARGS.
build_hearth() {
  if [[ -n "${HEARTH_BINARY:-}" ]]; then
    [[ -x "$HEARTH_BINARY" ]] || die "HEARTH_BINARY=$HEARTH_BINARY is not executable"
    HEARTH="$HEARTH_BINARY"
    # A binary from a CMake tree: read that tree's build type (a Debug server benchmarks nothing).
    local dir cache="" type="unknown" i
    dir="$(cd "$(dirname "$HEARTH_BINARY")" && pwd)"
    for (( i = 0; i < 4; i++ )); do
      [[ -f "$dir/CMakeCache.txt" ]] && { cache="$dir/CMakeCache.txt"; break; }
      dir="$(dirname "$dir")"
    done
    [[ -n "$cache" ]] && type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")"
    HEARTH_BUILD="given by HEARTH_BINARY; CMAKE_BUILD_TYPE ${type:-<empty>}"
    if [[ "$type" != Release && "$type" != unknown ]]; then
      WARNINGS+=("HEARTH_BINARY is a ${type:-<empty>} build, not Release: figures are not comparable to the floors")
    fi
    return
  fi
  note "building Release hearth in $BUILD_DIR/hearth"
  local extra=()
  read -r -a extra <<<"${HEARTH_BENCH_CMAKE_ARGS:-}"
  cmake -S "$REPO_ROOT" -B "$BUILD_DIR/hearth" -DCMAKE_BUILD_TYPE=Release -DHEARTH_BUILD_TESTS=OFF "${extra[@]}" \
    >"$BUILD_DIR/configure-hearth.log" 2>&1 || { tail -30 "$BUILD_DIR/configure-hearth.log" >&2; die "cmake configure failed"; }
  cmake --build "$BUILD_DIR/hearth" -j2 --target hearth >"$BUILD_DIR/build-hearth.log" 2>&1 \
    || { tail -40 "$BUILD_DIR/build-hearth.log" >&2; die "building hearth failed (log: $BUILD_DIR/build-hearth.log)"; }
  HEARTH="$BUILD_DIR/hearth/server/hearth"
  [[ -x "$HEARTH" ]] || HEARTH="$(find "$BUILD_DIR/hearth" -type f -name hearth -perm -u+x | head -1)"
  [[ -x "$HEARTH" ]] || die "built hearth binary not found under $BUILD_DIR/hearth"
  HEARTH_BUILD="Release (built by $(basename "$0"))"
}

# A child that has exited stays a zombie until waited for, and kill -0 still succeeds on it.
alive() { local st; st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1; [[ -n "$st" && "$st" != Z* ]]; }

STOP_RC=0
stop_pid() {  # pid signal grace-seconds; sets STOP_RC to the process's exit status
  local pid="$1" sig="$2" grace="$3" i rc=0
  kill "-$sig" "$pid" 2>/dev/null || true
  for (( i = 0; i < grace * 10; i++ )); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    note "pid $pid did not stop within ${grace}s after SIG$sig; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  STOP_RC=$rc
}

free_port() {  # a loopback TCP port nobody listens on right now
  local p i
  for (( i = 0; i < 50; i++ )); do
    p=$(( 20000 + RANDOM % 40000 ))
    if [[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]]; then echo "$p"; return; fi
  done
  die "no free port found"
}

# --db pg-temp: a throwaway PostgreSQL cluster in $PG_DIR (default $WORK/pg), loopback only,
# default settings (fsync on), run as the postgres user when we are root (PostgreSQL refuses to run
# as root). A cluster already in $PG_DIR (from an earlier run that kept it) is started as it is.
# Sets DB_URL and DB_TEMP_NOTE; stop_temp_pg stops it (deleting it is the caller's business).
PG_BIN=""
PG_RUNAS=()
PG_TEMP_DATA=""
start_temp_pg() {
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [[ -x "$PG_BIN/initdb" ]] || die "--db pg-temp needs PostgreSQL (apt-get install postgresql)"
  local dir="${PG_DIR:-$WORK/pg}" port fresh=1
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; PG_RUNAS=(runuser -u postgres --); fi
  if [[ -f "$dir/data/PG_VERSION" ]]; then
    fresh=0
  else
    "${PG_RUNAS[@]}" "$PG_BIN/initdb" -D "$dir/data" -A trust -U hearth -E UTF8 >"$WORK/pg-initdb.log" 2>&1 \
      || { tail -5 "$WORK/pg-initdb.log" >&2; die "initdb failed"; }
  fi
  port="$(free_port)"
  PG_TEMP_DATA="$dir/data"
  "${PG_RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 120 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null \
    || { tail -5 "$dir/postgres.log" >&2; PG_TEMP_DATA=""; die "temporary PostgreSQL did not start"; }
  if (( fresh )); then
    "${PG_RUNAS[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U hearth hearth_bench \
      || die "createdb failed"
  fi
  DB_URL="postgresql://hearth@127.0.0.1:$port/hearth_bench"
  DB_TEMP_NOTE=" (throwaway local cluster, PostgreSQL $(basename "$(dirname "$PG_BIN")"), default settings)"
}
stop_temp_pg() {
  [[ -n "$PG_TEMP_DATA" ]] || return 0
  "${PG_RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TEMP_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  PG_TEMP_DATA=""
}

# start_hearth label [extra hearth args...]: starts $HEARTH on a free loopback port with the data
# dir, --db and SERVER_SETS, waits for /health; sets HEARTH_PID and HEARTH_PORT. Log:
# $WORK/hearth-<label>.log.
HEARTH_PID=""
HEARTH_PORT=""
HEARTH_EXIT_CODES=()
start_hearth() {
  local label="$1"; shift
  local data="${HEARTH_DATA_DIR:-$WORK/data}"
  local args=(--port 0 --mllp-port 0 --port-file "$WORK/hearth.port" --data-dir "$data" --set http.host=127.0.0.1)
  [[ -n "$DB_URL" ]] && args+=(--db "$DB_URL")
  args+=("${SERVER_SETS[@]+"${SERVER_SETS[@]}"}" "$@")
  rm -f "$WORK/hearth.port"
  mkdir -p "$data"
  "$HEARTH" "${args[@]}" >>"$WORK/hearth-$label.log" 2>&1 &
  HEARTH_PID=$!
  local i
  for (( i = 0; i < 300; i++ )); do
    [[ -s "$WORK/hearth.port" ]] && break
    alive "$HEARTH_PID" || { tail -20 "$WORK/hearth-$label.log" >&2; HEARTH_PID=""; die "hearth exited during startup"; }
    sleep 0.1
  done
  HEARTH_PORT="$(sed -n 's/^http=\([0-9]\+\)$/\1/p' "$WORK/hearth.port" 2>/dev/null || true)"
  [[ -n "$HEARTH_PORT" ]] || die "hearth wrote no http=<port> to its port file within 30 s"
  for (( i = 0; i < 300; i++ )); do
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$HEARTH_PORT/health" && return 0
    alive "$HEARTH_PID" || die "hearth exited before /health answered"
    sleep 0.1
  done
  die "hearth /health did not answer 200 within 30 s"
}

stop_hearth() {
  [[ -n "$HEARTH_PID" ]] || return 0
  local rc
  stop_pid "$HEARTH_PID" TERM 20
  rc=$STOP_RC
  HEARTH_PID=""
  HEARTH_EXIT_CODES+=("$rc")
  [[ "$rc" == 0 ]] || WARNINGS+=("hearth exited with status $rc after SIGTERM (contract: graceful shutdown, exit 0)")
}

metrics_statuses() {  # {"200":n,...} summed over hearth_http_requests_total, or {} if unavailable
  local text
  text="$(curl -sf --max-time 5 "http://127.0.0.1:$HEARTH_PORT/metrics" 2>/dev/null)" || { echo '{}'; return; }
  awk '
    /^hearth_http_requests_total[{]/ {
      if (match($0, /status="[0-9]+"/)) { s = substr($0, RSTART + 8, RLENGTH - 9); c[s] += $NF }
    }
    END { printf "{"; sep = ""; for (k in c) { printf "%s\"%s\":%.0f", sep, k, c[k]; sep = "," } printf "}" }' <<<"$text"
}

# Prints a DB URL without its credentials.
db_shown() { sed -E 's#//[^@/]*@#//***@#' <<<"$1"; }
