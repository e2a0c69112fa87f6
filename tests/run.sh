#!/usr/bin/env bash
# Build Ricochet and run every test: cmocka unit tests, the wire-format check
# with tshark, and the integration tests against BIRD, FRR, GoBGP and ExaBGP
# on loopback.  Installs what it needs first (Debian 12, as root).
#   bash tests/run.sh            # everything
#   SUITE=unit bash tests/run.sh # one meson test suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dwerror=true
fi
ninja -C "$BUILD"
args=(--print-errorlogs --num-processes 2)
if [ -n "${SUITE:-}" ]; then args+=(--suite "$SUITE"); fi
meson test -C "$BUILD" "${args[@]}"
# every test must have run: a skip (tool missing, port taken) is a failure here
python3 tests/no-skips.py "$BUILD"
