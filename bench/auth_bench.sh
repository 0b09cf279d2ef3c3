#!/usr/bin/env bash
# Authenticated vs unauthenticated Patient read throughput (issue 5 part 8): what the JWT check,
# access control and the audit trail cost on the read path.
#
#   bench/auth_bench.sh [--patients N] [--duration S] [--repeat R] [--connections C]
#   HEARTH_BINARY=/path/to/hearth bench/auth_bench.sh      (default: build/server/hearth)
#
# Starts one hearth per mode on a fresh SQLite data dir (loopback, free port), loads N Patients
# through transaction Bundles (a write Service token), and runs bench/lua/read.lua with wrk
# (2 threads, C connections) R times per mode, reporting the median req/s and p99:
#   open        auth.enabled=false, audit off             (today's default)
#   open+header the same server, requests carrying the JWT anyway (what the bytes of a bearer token
#               cost to send and parse, with no check at all)
#   jwt         auth.enabled=true, an RS256 access token (user/Patient.rs, role doctor), audit off
#   jwt+audit   the same with audit.enabled=true (one AuditEvent per read, written in batches)
# The token is minted here with openssl from the server's own key file (auth.keys-dir), exactly
# as the authorization server signs: header {alg RS256, typ at+jwt, kid}. Every process started
# here is stopped at exit. Requires wrk (tools/ensure-deps.sh bench), curl, python3, openssl.
set -euo pipefail

PATIENTS=2000
DURATION=10
REPEAT=3
CONNECTIONS=16
while [[ $# -gt 0 ]]; do
  case "$1" in
    --patients) PATIENTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
done

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="${HEARTH_BINARY:-$ROOT/build/server/hearth}"
[[ -x "$BIN" ]] || { echo "no hearth binary at $BIN (set HEARTH_BINARY)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: tools/ensure-deps.sh bench" >&2; exit 1; }

WORK="$(mktemp -d /tmp/hearth-auth-bench.XXXXXX)"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

SERVICE_TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SERVICE_SHA="$(printf %s "$SERVICE_TOKEN" | sha256sum | cut -d' ' -f1)"

start() {  # start <data-dir> <extra --set args...>
  local data="$1"; shift
  rm -f "$WORK/port"
  "$BIN" --port 0 --mllp-port -1 --port-file "$WORK/port" --data-dir "$data" "$@" >>"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 200); do
    [[ -s "$WORK/port" ]] && break
    sleep 0.1
  done
  PORT="$(sed -n 's/^http=//p' "$WORK/port")"
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "hearth did not start; log:" >&2; tail -20 "$WORK/server.log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

load() {  # writes $WORK/ids
  python3 - "$PORT" "$PATIENTS" "$SERVICE_TOKEN" "$WORK/ids" <<'PY'
import json, sys, urllib.request
port, n, token, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ids = []
for start in range(0, n, 500):
    entries = [{"request": {"method": "POST", "url": "Patient"},
                "resource": {"resourceType": "Patient", "active": True,
                             "identifier": [{"system": "urn:bench:mrn", "value": "B%07d" % i}],
                             "name": [{"family": "Bench%d" % i, "given": ["Test", "Patient"]}],
                             "gender": "female" if i % 2 else "male", "birthDate": "1970-01-%02d" % (1 + i % 28),
                             "address": [{"line": ["%d Example Street" % i], "city": "Northvale", "postalCode": "NV1"}]}}
               for i in range(start, min(n, start + 500))]
    req = urllib.request.Request("http://127.0.0.1:%s/fhir" % port,
                                 data=json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode(),
                                 headers={"Content-Type": "application/fhir+json", "Authorization": "Bearer " + token,
                                          "Prefer": "return=minimal"})
    body = json.load(urllib.request.urlopen(req))
    for e in body["entry"]:
        ids.append(e["response"]["location"].split("/")[1])
open(out, "w").write("\n".join(ids) + "\n")
PY
}

mint() {  # prints an access token signed with the server's RS256 key
  python3 - "$1" "http://127.0.0.1:$PORT" <<'PY'
import base64, glob, json, os, subprocess, sys, time
keys, origin = sys.argv[1], sys.argv[2]
pem = sorted(glob.glob(os.path.join(keys, "RS256-*.pem")))[-1]
kid = os.path.basename(pem)[:-4].split("-", 2)[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
claims = {"iss": origin, "aud": origin + "/fhir", "sub": "bench-doctor", "client_id": "bench",
          "scope": "openid fhirUser user/Patient.rs", "jti": "bench-%d" % now, "iat": now, "exp": now + 3000,
          "fhirUser": "Practitioner/bench", "roles": ["doctor"]}
signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pem], input=signing.encode(), capture_output=True, check=True).stdout
print(signing + "." + b64(sig))
PY
}

run_wrk() {  # run_wrk <label> <auth header or empty>; appends "label rps p99_us non2xx" per run
  for r in $(seq 1 "$REPEAT"); do
    HEARTH_BENCH_LUA_DIR="$HERE/lua" HEARTH_BENCH_IDS="$WORK/ids" HEARTH_BENCH_RESULT="$WORK/result.json" \
      HEARTH_BENCH_AUTH="$2" HEARTH_BENCH_SEED="$r" \
      timeout $((DURATION + 30)) wrk -t2 -c"$CONNECTIONS" -d2s -s "$HERE/lua/read.lua" "http://127.0.0.1:$PORT/fhir" >/dev/null  # warm-up
    HEARTH_BENCH_LUA_DIR="$HERE/lua" HEARTH_BENCH_IDS="$WORK/ids" HEARTH_BENCH_RESULT="$WORK/result.json" \
      HEARTH_BENCH_AUTH="$2" HEARTH_BENCH_SEED="$r" \
      timeout $((DURATION + 30)) wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$HERE/lua/read.lua" \
      "http://127.0.0.1:$PORT/fhir" >"$WORK/wrk.txt"
    python3 - "$1" "$WORK/result.json" >>"$WORK/runs.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print(sys.argv[1], r["rps"], r["latency_us"]["p99"], r["errors"]["status"] + r["errors"]["connect"] + r["errors"]["read"] + r["errors"]["timeout"])
PY
  done
}

: >"$WORK/runs.txt"
DATA="$WORK/data"
mkdir -p "$DATA"
# Load once (auth on, audit off), then reuse the data dir for every mode.
start "$DATA" --set auth.enabled=true --set "auth.tokens=$SERVICE_SHA:write" --set audit.enabled=false
load
stop

# The modes alternate run by run (open, jwt, jwt+audit, open, ...), so slow drifts of a shared
# machine's load spread over all of them instead of favouring one.
WANT_REPEAT="$REPEAT"
REPEAT=1
for r in $(seq 1 "$WANT_REPEAT"); do
  for mode in open open+header jwt jwt+audit; do
    if [[ "$mode" == open* ]]; then
      start "$DATA" --set auth.enabled=false --set audit.enabled=false
      curl -fs "http://127.0.0.1:$PORT/fhir/Patient/$(head -1 "$WORK/ids")" >/dev/null
      if [[ "$mode" == "open" ]]; then run_wrk open ""; else run_wrk open+header "Bearer $(mint "$DATA/keys")"; fi
      stop
      continue
    fi
    audit=false
    [[ "$mode" == "jwt+audit" ]] && audit=true
    start "$DATA" --set auth.enabled=true --set "auth.tokens=$SERVICE_SHA:write" --set "audit.enabled=$audit"
    TOKEN="$(mint "$DATA/keys")"
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/Patient/$(head -1 "$WORK/ids")")"
    [[ "$code" == "200" ]] || { echo "token check failed: HTTP $code" >&2; tail -5 "$WORK/server.log" >&2; exit 1; }
    run_wrk "$mode" "Bearer $TOKEN"
    stop
  done
done

python3 - "$WORK/runs.txt" "$PATIENTS" "$DURATION" "$CONNECTIONS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
modes = []
for r in rows:
    if r[0] not in modes: modes.append(r[0])
print("Patient read, %s patients, %ss x %s runs per mode, 2 threads x %s connections (median)" %
      (sys.argv[2], sys.argv[3], len(rows) // len(modes), sys.argv[4]))
base = None
for m in modes:
    rps = [float(r[1]) for r in rows if r[0] == m]
    p99 = [float(r[2]) for r in rows if r[0] == m]
    errs = sum(int(r[3]) for r in rows if r[0] == m)
    med = statistics.median(rps)
    base = base or med
    print("%-10s %9.0f req/s  p99 %6.2f ms  runs %s  errors %d  vs open %+.1f%%" %
          (m, med, statistics.median(p99) / 1000, "/".join("%.0f" % x for x in rps), errs, (med / base - 1) * 100))
PY
