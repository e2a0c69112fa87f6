#!/usr/bin/env python3
"""The benchmark's floor, checked: ricochet-nullrelay under ricochet-load.

Owns: one ricochet-nullrelay on 127.0.45.1 (a free high port) and the
ricochet-load sessions it drives, feeders from 127.0.45.11, monitors from
127.0.46.11.  Every figure "x null relay" in docs/BENCHMARKS.md is a
multiple of this program's time, so it must really deliver every feeder's
routes to every receiver, in each receiver mode:
  - default: the peers that never sent an UPDATE are the receivers;
  - --monitors-from 127.0.46.0/24: receivers by source address;
  - default again with more feeders than monitors and a withdraw-all phase
    (the log is shared by all receivers and trimmed as they pass it).
Each run must end with ricochet-load's "RESULT: PASS": every monitor holds
exactly the expected table (nothing missing, nothing extra, attributes
byte for byte) and, with --withdraw, is empty afterwards.  ricochet-load
runs with --no-expect-rr (the relay adds no ORIGINATOR_ID / CLUSTER_LIST).
One run is the other way round, so that the verification is seen to fail:
expecting reflected routes from the relay, every path held by every
monitor must be counted as lacking them, and the run must say FAIL.
Every run is bounded by ricochet-load's --timeout and the relay's
--duration.  Needs no root (high port, loopback only).

  python3 tests/integration/test_nullrelay.py --build build [--keep]
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

RELAY_ADDR = "127.0.45.1"
FEEDER_BASE = "127.0.45.11"
MONITOR_BASE = "127.0.46.11"

CASES = [
    # name, relay options, ricochet-load options, None = must pass, else what
    # the failing run's summary must say
    ("default", [], ["--feeders", "2", "--monitors", "3", "--routes", "20000"], None),
    ("monitors-from", ["--monitors-from", "127.0.46.0/24"],
     ["--feeders", "2", "--monitors", "2", "--routes", "20000", "--v6-routes", "5000"], None),
    ("withdraw", [], ["--feeders", "8", "--monitors", "2", "--routes", "10000", "--withdraw"], None),
    # --expect-rr comes after run_case's --no-expect-rr: ricochet-load takes the last
    ("expect-rr", [], ["--feeders", "2", "--monitors", "3", "--routes", "5000", "--expect-rr"],
     "verify: missing 0 extra 0 wrong-feeder 0 stale 0 bad-attrs 0 no-rr 30000 bad-nh 0"),
]


def run_case(relay, load, work, name, relay_opts, load_opts, fails_with, checks):
    port = H.free_tcp_port(RELAY_ADDR)
    log = open(os.path.join(work, f"relay-{name}.log"), "w")
    rp = subprocess.Popen([relay, "--listen", f"{RELAY_ADDR}:{port}", "--asn", "65000",
                           "--duration", "120"] + relay_opts, stdout=log, stderr=subprocess.STDOUT)
    try:
        H.wait_until(lambda: H.tcp_listening(RELAY_ADDR, port), 10, f"null relay on port {port}")
        cmd = [load, "--target", f"{RELAY_ADDR}:{port}", "--asn", "65000", "-q",
               "--feeder-base", FEEDER_BASE, "--monitor-base", MONITOR_BASE,
               "--no-expect-rr", "--timeout", "60",
               "--json", os.path.join(work, f"load-{name}.json")] + load_opts
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
            out = r.stdout + r.stderr
            rc = r.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = str(e), -1
        with open(os.path.join(work, f"load-{name}.log"), "w") as f:
            f.write(out)
        if fails_with is None:
            ok = rc == 0 and "RESULT: PASS" in out
            what = "every monitor holds exactly the table"
        else:
            ok = rc == 1 and "RESULT: FAIL" in out and fails_with in out
            what = f"the verification fails as it must ({fails_with})"
        checks.check(f"{name}: {what}", ok,
                     "" if ok else f"exit {rc}: " + " | ".join(out.strip().splitlines()[-4:]))
        checks.check(f"{name}: relay still running", rp.poll() is None,
                     f"exit {rp.poll()}: {H.tail_file(log.name)}")
    finally:
        H.terminate(rp)
        log.close()


def main():
    a = H.arg_parser(description=__doc__.splitlines()[0]).parse_args()
    relay, load = H.built(a.build, "bench/ricochet-nullrelay", "bench/ricochet-load")
    H.require(programs=(relay, load))
    checks = H.Checks()
    work = tempfile.mkdtemp(prefix="ricochet-nullrelay-")
    for name, ropts, lopts, fails_with in CASES:
        run_case(relay, load, work, name, ropts, lopts, fails_with, checks)
    rc = checks.summary()
    H.clean_workdir(work, keep=a.keep or rc != 0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
