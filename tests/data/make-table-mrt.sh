#!/usr/bin/env bash
# Regenerate tests/data/table-small.mrt: a small TABLE_DUMP_V2 file made by the
# project itself - ricochetd loaded by ricochet-load (3 feeders, disjoint
# Internet-like IPv4 + IPv6 tables, seed 7), then `ricochet dump routes`.
# Needs root (port 179) and a build directory; uses 127.0.99.0/24.
# Usage: bash tests/data/make-table-mrt.sh [BUILD_DIR]
set -euo pipefail
B=$(realpath "${1:-build}")
OUT=$(realpath "$(dirname "$0")")/table-small.mrt
T=$(mktemp -d)
trap 'kill $DP 2>/dev/null || true; rm -rf "$T"' EXIT
cat > "$T/r.yaml" <<YAML
router-id: 127.0.99.1
asn: 65000
listen: [{ address: 127.0.99.1, port: 179 }]
control-socket: $T/ctl.sock
peer-ranges:
  - { prefix: 127.0.99.0/24, asn: 65000, role: rr-client }
YAML
"$B/io/ricochetd" -c "$T/r.yaml" >"$T/log" 2>&1 & DP=$!
for _ in $(seq 50); do [ -S "$T/ctl.sock" ] && break; sleep 0.1; done
"$B/bench/ricochet-load" -q --target 127.0.99.1:179 --asn 65000 --feeder-base 127.0.99.50 \
  --monitor-base 127.0.99.150 --feeders 3 --monitors 1 --routes 1200 --v6-routes 300 --seed 7 \
  --churn-rate 1 --churn-seconds 3 >/dev/null &
LP=$!
sleep 1.5
rm -f "$OUT"
"$B/io/ricochet" -s "$T/ctl.sock" dump routes "$OUT"
wait $LP
ls -l "$OUT"
