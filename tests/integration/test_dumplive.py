#!/usr/bin/env python3
"""A client whose table dump overlaps live changes is sent each state once.

Owns: its own ricochetd on 127.0.45.1 and two raw speakers (bgpspeaker.py),
iBGP rr-clients, IPv4 only:
  - FEEDER (127.0.45.11) announces a table of N0 /24s, each with its own
    attributes (a MED per prefix and 48 communities, about 250 bytes of
    UPDATE per prefix, so the dump is tens of MB);
  - CLIENT (127.0.45.12) comes up with a small receive buffer and reads
    nothing at first: its dump stops once its queue is full (ricochetd
    paces a dump by the member's queue), part way through the table.
While CLIENT's dump waits, FEEDER announces N1 new prefixes above the table
and new attributes for the table's last CHANGED prefixes - all ahead of
the walk, so CLIENT is sent them live (it is in its update group from the
start).  Then CLIENT reads everything.
Checks:
  - CLIENT ends with the whole table, every prefix with its latest
    attributes, and End-of-RIB;
  - no prefix is announced twice with the same attributes: the walk leaves
    out what the group was sent live since CLIENT joined (before stop 18 it
    sent them again: N1 + CHANGED duplicates);
  - ricochetd counts the prefixes its walk left out (the metric
    ricochet_reflect_dump_live_skips_total): at least N1 + CHANGED.
Every wait bounded; exits 77 when not root or not built.

  python3 tests/integration/test_dumplive.py --build build [-v] [--keep]
"""

import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402
from test_malformed import Daemon, LOCAL_AS  # noqa: E402

RR = "127.0.45.1"
FEEDER, CLIENT = "127.0.45.11", "127.0.45.12"
N0 = int(os.environ.get("DUMPLIVE_ROUTES", "80000"))
N1 = 20000                # new prefixes, above the table
CHANGED = 10000           # the table's last prefixes, new attributes
COMMS = [(65000 << 16) | k for k in range(48)]


def nlri(i, first):
    return bytes((24, first + (i >> 16), (i >> 8) & 255, i & 255))


def text(i, first):
    return f"{first + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24"


def table(lo, hi, first, med_base):
    """One UPDATE per prefix, each with its own MED."""
    common = B.a_origin(0) + B.a_aspath([]) + B.a_nexthop("192.0.2.11") + B.a_localpref(100)
    comm = B.a_communities(COMMS)
    return b"".join(B.update(attrs=common + B.a_med(med_base + i) + comm, nlri=nlri(i, first))
                    for i in range(lo, hi))


def main():
    ap = H.arg_parser(verbose=True)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    H.require(root="port 179", programs=H.built(build, "io/ricochetd", "io/ricochet"))
    with H.Run("ricochet-dumplive-", keep=a.keep, verbose=a.verbose) as run:
        mport = H.free_tcp_port(RR)
        d = Daemon(build, run.root, io_threads=2, addr=RR,
                   extra_yaml=f"metrics: {{ listen: {RR}:{mport} }}")
        run.at_end(d.stop)
        check = run.checks.check

        def accepted(addr):
            return d.peer(addr).get("prefixes_accepted")

        wait = H.poll

        peer = "{{ address: {}, asn: {}, role: rr-client, passive: true, families: [ipv4-unicast] }}"
        d.start([peer.format(FEEDER, LOCAL_AS), peer.format(CLIENT, LOCAL_AS)],
                ["{ prefix: 127.0.45.128/25, asn: 65000, role: rr-client }"])
        caps = B.caps_default(LOCAL_AS, v6=False)
        feeder = B.Speaker(FEEDER, RR, timeout=30)
        feeder.establish(LOCAL_AS, bgp_id="10.0.45.11", caps=caps)
        feeder.send(table(0, N0, 20, 0))
        ok = wait(lambda: accepted(FEEDER) == N0, 120, 0.25)
        check(f"feeder's {N0} routes accepted", ok, f"{accepted(FEEDER)}")

        def queued(addr):
            return d.peer(addr).get("queued_bytes") or 0

        def steady(addr, floor, hold=0.5, timeout=60):
            """addr's output queue at or above floor and unchanged for hold s."""
            deadline = time.monotonic() + timeout
            last, since = None, time.monotonic()
            while time.monotonic() < deadline:
                q = queued(addr)
                if q != last:
                    last, since = q, time.monotonic()
                elif q >= floor and time.monotonic() - since >= hold:
                    return q
                time.sleep(0.05)
            return None

        client = B.Speaker(CLIENT, RR, timeout=30, rcvbuf=65536)
        client.establish(LOCAL_AS, bgp_id="10.0.45.12", caps=caps)
        # its dump runs until its queue passes 8 MiB, then waits for it to drain
        q0 = steady(CLIENT, 8 << 20)
        check("the client's dump waits, part way through, for its queue (>= 8 MiB, steady)",
              q0 is not None, f"{queued(CLIENT)} bytes queued")
        # ahead of the waiting walk: new prefixes above the table, and the
        # table's last prefixes with new attributes
        feeder.send(table(0, N1, 120, 1000000) + table(N0 - CHANGED, N0, 20, 2000000))
        ok = wait(lambda: accepted(FEEDER) == N0 + N1, 60, 0.1)
        check(f"feeder's {N1} more routes accepted", ok, f"{accepted(FEEDER)}")
        q1 = steady(CLIENT, (q0 or 0) + 1)  # and sent live: the queue grew, then stays
        check("the changes are queued to the client live while its dump waits", q1 is not None,
              f"{queued(CLIENT)} bytes queued, {q0} before")

        want = {text(i, 20): 0 + i for i in range(N0)}
        for i in range(N0 - CHANGED, N0):
            want[text(i, 20)] = 2000000 + i
        for i in range(N1):
            want[text(i, 120)] = 1000000 + i
        held = {}                       # prefix -> MED last announced
        dups, eor, upd = 0, False, 0
        t0 = time.monotonic()
        deadline = t0 + 120
        while time.monotonic() < deadline:
            m = client.recv_msg(min(2.0, max(0.01, deadline - time.monotonic())))
            if m is None:
                if eor and held == want:
                    break
                continue
            if m.type == B.KEEPALIVE:
                continue
            if m.type != B.UPDATE:
                break
            upd += 1
            u = B.Update(m.body)
            if u.eor:
                eor = True
                continue
            med = int.from_bytes(u.attrs[B.MED][1], "big") if B.MED in u.attrs else None
            for p, _ in u.announced:
                if held.get(p) == med:
                    dups += 1
                held[p] = med
            for p, _ in u.withdrawn:
                held.pop(p, None)
            if len(client.received) > 4096:
                client.received.clear()
        print(f"  client: {upd} UPDATEs, {len(held)} prefixes, {dups} announced again unchanged, "
              f"End-of-RIB {'seen' if eor else 'missing'} ({time.monotonic() - t0:.1f} s)")
        check("the client holds every prefix with its latest attributes, and End-of-RIB",
              eor and held == want,
              f"{len(held)} held, {len(want)} wanted, "
              f"{sum(1 for k, v in want.items() if held.get(k) != v)} differ")
        check("no prefix announced twice with the same attributes (dump and live do not overlap)",
              dups == 0, f"{dups} duplicates")
        skips = metric(mport, "ricochet_reflect_dump_live_skips_total")
        check(f"ricochetd counts the prefixes its walk left out (>= {N1 + CHANGED})",
              skips is not None and skips >= N1 + CHANGED, f"{skips}")
        feeder.close()
        client.close()
        check("ricochetd still running", d.alive())
    return run.rc


def metric(port, name):
    """A counter from ricochetd's Prometheus endpoint."""
    try:
        with urllib.request.urlopen(f"http://{RR}:{port}/metrics", timeout=5) as r:
            out = r.read().decode()
    except OSError:
        return None
    for ln in out.splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[1])
    return None


if __name__ == "__main__":
    sys.exit(main())
