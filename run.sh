#!/usr/bin/env bash
# Installs what is missing (apt), builds Hearth, and starts it on the embedded defaults:
# SQLite store under ./data, FHIR at http://127.0.0.1:8080/fhir, MLLP port 2575.
# Extra arguments go to hearth, e.g. ./run.sh --port 9090 or ./run.sh --db postgresql://...
#   ./run.sh --tls    HTTPS (https://127.0.0.1:8080/fhir): with no http.tls.certificate /
#                     http.tls.private-key configured, a self-signed DEVELOPMENT pair is made
#                     once under ./data/tls (CN localhost; browsers will warn; not for production).
set -euo pipefail
cd "$(dirname "$0")"
tools/ensure-deps.sh build
BUILD_DIR=${BUILD_DIR:-build/release}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DHEARTH_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target hearth

args=()
tls=0
for a in "$@"; do
  if [[ $a == --tls ]]; then tls=1; else args+=("$a"); fi
done
if ((tls)); then
  args+=(--set http.tls=true)
  if ! grep -Eq '^[[:space:]]*http\.tls\.certificate[[:space:]]*=[[:space:]]*[^[:space:]]' config/hearth.properties &&
     [[ " ${args[*]:-} " != *"http.tls.certificate="* ]]; then
    dir=data/tls
    if [[ ! -s $dir/dev-cert.pem || ! -s $dir/dev-key.pem ]]; then
      mkdir -p "$dir" && chmod 700 "$dir"
      echo "[run] making a self-signed development certificate in $dir (not for production)" >&2
      openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$dir/dev-key.pem" -out "$dir/dev-cert.pem" 2>/dev/null
      chmod 600 "$dir/dev-key.pem"
    fi
    args+=(--set "http.tls.certificate=$dir/dev-cert.pem" --set "http.tls.private-key=$dir/dev-key.pem")
  fi
fi
exec "$BUILD_DIR/server/hearth" --config config/hearth.properties "${args[@]}"
