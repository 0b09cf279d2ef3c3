#!/usr/bin/env bash
# Installs, with apt, whichever of Hearth's Debian packages are missing. Usage:
#   tools/ensure-deps.sh build     # what building and running hearth needs
#   tools/ensure-deps.sh test      # plus what the test suite needs (PostgreSQL, Redis, Node for ajv,
#                                  # clang for the HL7 parser's libFuzzer target)
#   tools/ensure-deps.sh bench     # plus wrk, nginx, jq and python3 (bench/search_bench.sh)
set -euo pipefail
BUILD_PKGS=(build-essential cmake pkg-config libpoco-dev rapidjson-dev libxml2-dev libhiredis-dev
            libssl-dev libsqlite3-dev libpq-dev libcppunit-dev)
TEST_PKGS=(postgresql redis-server nodejs npm iproute2 curl clang libclang-rt-14-dev)
BENCH_PKGS=(wrk nginx-light jq python3)

want=("${BUILD_PKGS[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  # A machine may have Node from elsewhere (e.g. /usr/local): then the Debian packages are not needed.
  if [[ $p == nodejs || $p == npm ]] && command -v "${p/nodejs/node}" >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "[deps] installing: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # policy-rc.d keeps the packages' own services (the system PostgreSQL cluster, redis, nginx) from
  # starting: Hearth's scripts start throwaway instances of their own.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
