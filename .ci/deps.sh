#!/usr/bin/env bash
# Install everything Ricochet needs to build, test and benchmark, from Debian's
# packages only.  Idempotent; safe to run on a fresh Debian 12 machine as root.
set -euo pipefail
pkgs=(
  build-essential clang meson ninja-build pkg-config        # toolchain (clang: libFuzzer, TSan)
  liburcu-dev libjemalloc-dev libyaml-dev                   # runtime libraries
  libcmocka-dev libbenchmark-dev                            # tests, micro-benchmarks
  libclang-rt-14-dev                                        # sanitizer/fuzzer runtimes
  bird2 frr gobgpd exabgp                                   # real peers for interop and benchmarks
  tshark                                                    # wire-format check (BMP dissector too)
  bgpdump python3-prometheus-client                         # MRT read-back, metrics parser (tests/integration)
  gnuplot-nox python3 iproute2 procps                       # benchmark plots, harness
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Debian packages start bird/frr services where an init system runs; the
# tests start their own instances on loopback, so stop the system ones.
for s in bird frr; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$s" 2>/dev/null; then
    systemctl stop "$s" || true
  fi
done
