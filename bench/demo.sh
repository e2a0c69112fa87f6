#!/usr/bin/env bash
# The README's main job: build Ricochet, start ricochetd on loopback with its
# built-in configuration (AS 65515, 127.0.0.1 port 1179, any 127.0.0.0/8 peer
# accepted as a route-reflector client), drive it with synthetic peers from
# ricochet-load and show convergence, then show what the daemon holds.
#   bash bench/demo.sh                 # 4 feeders x 2,500 routes -> 4 clients (the seed's 10k target)
#   ROUTES=250000 bash bench/demo.sh   # per feeder
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release
ninja -C "$BUILD"
FEEDERS=${FEEDERS:-4}
MONITORS=${MONITORS:-4}
ROUTES=${ROUTES:-2500}
V6=${V6_ROUTES:-0}
SOCK=/tmp/ricochet.sock

log=$(mktemp /tmp/ricochetd-demo.XXXXXX.log)
"$BUILD/io/ricochetd" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
# ready when the control socket answers (a file left by an earlier daemon is not enough)
for _ in $(seq 50); do "$BUILD/io/ricochet" -s $SOCK show summary >/dev/null 2>&1 && break; sleep 0.1; done
echo "ricochetd running (pid $pid, log $log)"
"$BUILD/io/ricochet" -s $SOCK show summary

echo
echo "== ricochet-load: $FEEDERS feeders x $ROUTES IPv4 routes (+$V6 IPv6) -> $MONITORS route-reflector clients"
"$BUILD/bench/ricochet-load" --target 127.0.0.1:1179 --asn 65515 --feeders "$FEEDERS" \
  --monitors "$MONITORS" --routes "$ROUTES" --v6-routes "$V6" --withdraw --timeout 120
echo
"$BUILD/io/ricochet" -s $SOCK show peers
"$BUILD/io/ricochet" -s $SOCK show memory
echo
echo "daemon log (last lines):"
tail -n 5 "$log"
