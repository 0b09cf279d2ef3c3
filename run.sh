#!/usr/bin/env bash
# Installs what is missing (apt), builds Hearth, and starts it on the embedded defaults:
# SQLite store under ./data, FHIR at http://127.0.0.1:8080/fhir, MLLP port 2575.
# Extra arguments go to hearth, e.g. ./run.sh --port 9090 or ./run.sh --db postgresql://...
set -euo pipefail
cd "$(dirname "$0")"
tools/ensure-deps.sh build
BUILD_DIR=${BUILD_DIR:-build/release}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DHEARTH_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target hearth
exec "$BUILD_DIR/server/hearth" --config config/hearth.properties "$@"
