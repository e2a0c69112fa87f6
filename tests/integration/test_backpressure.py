#!/usr/bin/env python3
"""Backpressure of an ADD-PATH update group with a member that stops reading.

Owns: its own ricochetd on 127.0.33.1 (peers from the range 127.0.33.0/24,
all route-reflector clients sent 2 paths per prefix), one run of
ricochet-load (feeders from 127.0.33.10, monitors from 127.0.33.100) whose
monitor 0 reads nothing for STALL seconds once up (--stall-monitor) while
two feeders announce the same prefixes, and a poller of `ricochet show
peers` meanwhile.

ADD-PATH members cannot be paused one by one (withdrawals are by path id,
and the group's table of advertised ids is what every member was sent), so
before the group-level pause (io/reflect.c, "slow readers") the stalled
member's queue grew with everything the group was sent.  Checks:
  - the run passes: both monitors end with exactly the expected paths
    (ricochet-load verifies every prefix, path count and attributes, so
    nothing stale and nothing missing), and after the feeders withdraw
    everything both are empty (withdrawals by id of what was deferred);
  - the group was paused (`show summary`: addpath_group_pauses) and no
    member was reset;
  - the stalled member's queue stayed bounded: its largest `queued_bytes`
    seen is below QUEUE_BOUND, while the group sent each monitor at least
    2 x QUEUE_BOUND (so the old code, which queued everything, fails).
Then the laggard rule: monitor 0 stops reading for LAG_STALL s, longer than
the 30 s a member may keep the group waiting alone, so it is reset (Cease,
counted in addpath_laggards_reset, not before 30 s) and the healthy monitor
gets the whole table once it is gone.
Single-threaded, every wait bounded; exits 77 when not root or not built.

  python3 tests/integration/test_backpressure.py --build build [-v] [--keep]
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

ADDR = "127.0.33.1"
STALLED = "127.0.33.100"            # ricochet-load's monitor 0
HEALTHY = "127.0.33.101"
STALL = 12                          # seconds monitor 0 does not read
LAG_STALL = 40                      # ... in the laggard check (the rule: 30 s)
QUEUE_BOUND = 40 << 20              # AP_HIGH (16 MiB) + a batch's output, with room


def main():
    ap = H.arg_parser(verbose=True)
    a = ap.parse_args()
    d = os.path.abspath(a.build)
    rd, cli, load = H.built(d, "io/ricochetd", "io/ricochet", "bench/ricochet-load")
    H.require(root="port 179", programs=(rd, cli, load))
    with H.Run("ricochet-backpressure-", keep=a.keep, verbose=a.verbose) as run:
        sock = os.path.join(run.root, "ctl.sock")
        cfg = os.path.join(run.root, "r.yaml")
        with open(cfg, "w") as f:
            f.write(f"""router-id: {ADDR}
asn: 65000
listen: [{{ address: {ADDR}, port: 179 }}]
control-socket: {sock}
io-threads: 2
log-level: info
peer-ranges:
  - {{ prefix: 127.0.33.0/24, asn: 65000, role: rr-client, add-path: {{ send: 2, receive: true }} }}
""")
        proc = run.popen([rd, "-c", cfg], log="ricochetd.log")
        checks = run.checks

        def ctl(*args):
            return H.ricochet_json(cli, sock, *args)

        out = os.path.join(run.root, "load.json")

        def finish(bg):
            """Stop the load run if it outlived its bound; its output, its JSON and
            ricochetd's summary."""
            if bg.poll() is None:
                H.terminate(bg)
            txt = bg.stdout.read()
            res = json.load(open(out)) if os.path.exists(out) else {}
            return txt, res, ctl("show", "summary") or {}

        H.wait_until(lambda: os.path.exists(sock) and ctl("show", "summary"), 10,
                     "ricochetd's control socket")
        # prefixes-per-attr 1: every path its own UPDATE, so the table is about
        # 2 x 360,000 x 90 bytes of output per monitor
        cmd = [load, "-q", "--target", f"{ADDR}:179", "--asn", "65000",
               "--feeder-base", "127.0.33.10", "--monitor-base", "127.0.33.100",
               "--feeders", "2", "--monitors", "2", "--shared", "--addpath", "2",
               "--routes", "300000", "--v6-routes", "60000", "--prefixes-per-attr", "1",
               "--stall-monitor", str(STALL), "--withdraw", "--timeout", "90", "--json", out]
        t0 = time.monotonic()
        bg = run.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = {STALLED: 0, HEALTHY: 0}
        bytes_out = {}
        while bg.poll() is None and time.monotonic() - t0 < 240:
            ps = ctl("show", "peers") or []
            for e in ps:
                if e["address"] in peak:
                    peak[e["address"]] = max(peak[e["address"]], e["queued_bytes"])
                    bytes_out[e["address"]] = e["bytes_out"]
            time.sleep(0.1)
        txt, res, summ = finish(bg)
        mons = res.get("monitors", [])
        if a.verbose:
            print(txt[-1500:])
        print(f"   stalled member: largest queue {peak[STALLED] / 1048576:.1f} MiB, healthy "
              f"{peak[HEALTHY] / 1048576:.1f} MiB; sent to each monitor "
              f"{bytes_out.get(HEALTHY, 0) / 1048576:.1f} MiB; group pauses "
              f"{summ.get('addpath_group_pauses')}, prefixes taken from the deferred set "
              f"{summ.get('addpath_deferred_sent')}, members reset {summ.get('addpath_laggards_reset')}; "
              f"run {time.monotonic() - t0:.1f} s", flush=True)
        checks.check("both monitors converge to the verified table and are emptied by the withdrawal",
                     bg.returncode == 0 and len(mons) == 2, f"rc {bg.returncode} " + txt[-800:])
        checks.check("the group was paused, nobody was reset",
                     (summ.get("addpath_group_pauses") or 0) >= 1
                     and summ.get("addpath_laggards_reset") == 0
                     and summ.get("addpath_deferred") == 0, str(summ))
        checks.check("enough output to tell (each monitor sent at least 2 x the bound)",
                     bytes_out.get(HEALTHY, 0) >= 2 * QUEUE_BOUND, str(bytes_out))
        checks.check(f"the stalled member's queue stayed below {QUEUE_BOUND >> 20} MiB",
                     0 < peak[STALLED] < QUEUE_BOUND, str(peak))
        checks.check("ricochetd still running", proc.poll() is None)

        # the laggard rule: the same run without --withdraw, monitor 0 stalled
        # for longer than a member may keep the group waiting alone
        H.wait_until(lambda: (ctl("show", "summary") or {}).get("established") == 0, 20,
                     "the first run's sessions to close")
        cmd = [c for c in cmd if c != "--withdraw"]
        cmd[cmd.index("--stall-monitor") + 1] = str(LAG_STALL)
        cmd[cmd.index("--timeout") + 1] = "70"
        if os.path.exists(out):
            os.unlink(out)
        t0 = time.monotonic()
        bg = run.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        reset_at = None
        while bg.poll() is None and time.monotonic() - t0 < 120:
            if reset_at is None and (ctl("show", "summary") or {}).get("addpath_laggards_reset"):
                reset_at = time.monotonic() - t0
            time.sleep(0.2)
        txt, res, summ = finish(bg)
        mons = res.get("monitors", [])
        want = res.get("expected_paths_per_monitor")
        held = mons[1].get("held") if len(mons) == 2 else None
        print(f"   laggard: reset after {reset_at if reset_at is None else round(reset_at, 1)} s "
              f"(counter {summ.get('addpath_laggards_reset')}); the healthy monitor holds {held} "
              f"of {want} paths", flush=True)
        checks.check("a member keeping the group waiting alone for 30 s is reset",
                     summ.get("addpath_laggards_reset") == 1 and reset_at is not None
                     and 30 <= reset_at < LAG_STALL + 5, f"{reset_at} {summ}")
        checks.check("the healthy monitor gets the whole table once the laggard is gone",
                     want and held == want, txt[-800:])
        checks.check("ricochetd still running after the reset", proc.poll() is None)
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
