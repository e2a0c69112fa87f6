#!/usr/bin/env python3
"""flap-latency.py - how long one I/O thread's other sessions wait while a
peer on the same thread flaps its whole table by UPDATEs.

Owns nothing in the daemon; it is a measurement, not a test (no bound is
judged).  One ricochetd with `io-threads: 1` on 127.0.44.1; a feeder loads N
/24s (4 KiB UPDATEs), then three times withdraws all but one and announces
them again.  During each re-announcement it times, one after the other, a
probe route's round trip (announced by one session, reflected to another)
and a new session's OPEN (tests/integration/test_sweep.py's Probe and
measure), and prints the worst of each per flap.  Built on the integration
tests' BGP speaker and harness, so it needs the repository's tests/ folder.

    python3 bench/flap-latency.py [--routes N] [--build BUILD_DIR] [--flaps K]

The stalls it shows (docs/BENCHMARKS.md, stop 18 and 19): the peer index's
compaction, the read budget's ingest per wakeup, the reflection batches.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import bgpspeaker as B            # noqa: E402
import harness as H               # noqa: E402
import test_sweep as S            # noqa: E402
from test_malformed import Daemon, LOCAL_AS   # noqa: E402

RR = "127.0.44.1"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=600000)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build-final"))
    ap.add_argument("--flaps", type=int, default=3)
    a = ap.parse_args()
    n = a.routes
    with H.Run("flap-", keep=False, verbose=False) as run:
        d = Daemon(a.build, run.root, io_threads=1, addr=RR)
        run.at_end(d.stop)
        peer = "{{ address: {}, asn: {}, role: rr-client, passive: true, families: [{}] }}"
        d.start([peer.format(S.FEEDER, LOCAL_AS, "ipv4-unicast"),
                 peer.format(S.PROBE_TX, LOCAL_AS, "ipv4-unicast, ipv6-unicast"),
                 peer.format(S.PROBE_RX, LOCAL_AS, "ipv4-unicast, ipv6-unicast"),
                 peer.format(S.PROBE_OPEN, LOCAL_AS, "ipv4-unicast, ipv6-unicast")],
                ["{ prefix: 127.0.44.128/25, asn: 65000, role: rr-client }"])

        def accepted():
            return d.peer(S.FEEDER).get("prefixes_accepted")

        probe = S.Probe()
        f = B.Speaker(S.FEEDER, RR, timeout=30)
        f.establish(LOCAL_AS, bgp_id="10.0.44.11", caps=B.caps_default(LOCAL_AS, v6=False))
        table = S.v4_table(n)
        # all but the first prefix withdrawn, 900 per UPDATE
        wd = b"".join(B.update(withdrawn=b"".join(S.v4_pfx(i, 20)[1]
                                                  for i in range(max(1, j), min(n, j + 900))))
                      for j in range(0, n, 900))
        f.send(table)
        H.poll(lambda: accepted() == n, 120, 0.2)
        for k in range(a.flaps):
            f.send(wd)
            H.poll(lambda: accepted() == 1, 120, 0.05)
            f.send(table)
            lat, olat, lost, took = S.measure(probe, lambda: accepted() == n, min_s=0.5)
            print(f"flap {k}: {len(lat)} probes, worst {max(lat):.1f} ms; "
                  f"{len(olat)} OPENs, worst {max(olat):.1f} ms; {lost} lost", flush=True)


if __name__ == "__main__":
    main()
