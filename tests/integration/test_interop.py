#!/usr/bin/env python3
"""Interoperability test: real BGP daemons from Debian peer with the reflector
under test on loopback, and every assertion is read from the daemons' own CLIs
(birdc, vtysh, gobgp).

Owns the interop scenarios of the integration suite; single process, drives
the daemons sequentially through tests/integration/harness.py.  The reflector
is pluggable (--reflector bird|ricochetd) so the test itself is proven against
BIRD 2 as a route reflector before ricochetd exists.

Topology (reflector AS 65000 on --addr, clients on <client-net>.N):
  b1  BIRD   rr-client  AS 65000   v4+v6, also the shared prefix
  b2  BIRD   rr-client  AS 65000   v4+v6, also the shared prefix
  f3  FRR    rr-client  AS 65000   v4+v6
  f4  FRR    rs-client  AS 4200000001 (4-octet)
  g5  GoBGP  rr-client  AS 65000   ADD-PATH receive (reflector sends up to 4)
  e6  ExaBGP rr-client  AS 65000   injector, static v4+v6
  b7  BIRD   rs-client  AS 65107 (2-octet)

Exit status: 0 all checks passed, 1 some failed, 77 skipped (tools missing,
ricochetd not built, not root).  Prints "N passed, N failed".
"""

import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

SHARED = "10.99.0.0/24"
CONVERGE = 45  # seconds: bound for every convergence wait


def parse_args():
    ap = H.arg_parser(verbose=True, description=__doc__.split("\n\n")[0])
    ap.add_argument("--reflector", choices=sorted(H.REFLECTORS), default="bird")
    ap.add_argument("--addr", default=os.environ.get("RICOCHET_IT_ADDR", "127.0.0.1"),
                    help="reflector address (port 179)")
    ap.add_argument("--client-net", default=os.environ.get("RICOCHET_IT_NET", "127.0.1"),
                    help="first three octets of the clients' loopback addresses")
    ap.add_argument("--only", help="comma-separated check names to run (after setup)")
    ap.add_argument("--allow-fail", default="",
                    help="comma-separated checks known to fail: reported XFAIL, not counted")
    return ap.parse_args()


class Checks(H.Checks):
    """H.Checks, plus checks that are functions raising on failure, and
    failures known in advance (allowed): reported XFAIL, not counted."""

    def __init__(self, allowed=()):
        super().__init__()
        self.allowed = set(allowed)

    def summary(self, ok=True, skipped=0):
        xfail = [n for n in self.failed if n in self.allowed]
        self.results = [r for r in self.results if r[0] not in xfail]
        for name in xfail:
            print(f"XFAIL {name} (known failure, --allow-fail)")
        return super().summary(ok, skipped + len(xfail))

    def run(self, name, fn):
        t0 = time.monotonic()
        try:
            fn()
            self.record(name, None)
            print(f"PASS {name} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception as e:  # a failed check must not stop the others
            msg = str(e) if isinstance(e, (H.HarnessError, AssertionError)) else \
                traceback.format_exc(limit=3)
            self.record(name, msg)
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s): {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    a = parse_args()
    tools = ["bird", "birdc", H.FRR_BGPD, "vtysh", "gobgpd", "gobgp", "exabgp"]
    binary = None
    if a.reflector == "ricochetd":
        binary = os.path.abspath(os.environ.get("RICOCHETD") or
                                 os.path.join(a.build, "io", "ricochetd"))
        tools.append(binary)
    H.require(root="daemons bind port 179 on loopback", programs=tools)
    if H.port_in_use(a.addr, 179):
        print(f"SKIP: {a.addr}:179 already in use (another daemon or test running?)")
        return H.SKIP

    net = a.client_net
    with H.Run("ricochet-it-", keep=a.keep, verbose=a.verbose,
               daemon_log=f"reflector-{a.reflector}/stdout.log") as h:
        h.checks = checks = Checks(x for x in a.allow_fail.split(",") if x)
        R = H.REFLECTORS[a.reflector](h, addr=a.addr, asn=65000, binary=binary)
        tgt = (a.addr, 65000)
        ip = lambda n: f"{net}.{n}"  # noqa: E731
        b1 = H.BirdClient(h, "b1", ip(1), 65000, target=tgt,
                          v4=["10.1.0.0/24", "10.1.1.0/24", SHARED], v6=["2001:db8:1::/48"])
        b2 = H.BirdClient(h, "b2", ip(2), 65000, target=tgt,
                          v4=["10.2.0.0/24", SHARED], v6=["2001:db8:2::/48"])
        f3 = H.FrrClient(h, "f3", ip(3), 65000, target=tgt,
                         v4=["10.3.0.0/24"], v6=["2001:db8:3::/48"])
        f4 = H.FrrClient(h, "f4", ip(4), 4200000001, target=tgt, v4=["10.4.0.0/24"])
        g5 = H.GobgpClient(h, "g5", ip(5), 65000, target=tgt, v4=["10.5.0.0/24"],
                           addpath_rx=True)
        e6 = H.ExabgpClient(h, "e6", ip(6), 65000, target=tgt,
                            v4=["10.6.0.0/24"], v6=["2001:db8:6::/48"])
        b7 = H.BirdClient(h, "b7", ip(7), 65107, target=tgt, v4=["10.7.0.0/24"])
        clients = [b1, b2, f3, f4, g5, e6, b7]
        ibgp = [c for c in clients if not c.ebgp]
        for c in clients:
            R.add_peer(H.PeerSpec(c.addr, c.asn,
                                  role="rs-client" if c.ebgp else "rr-client",
                                  addpath_send=4 if c is g5 else 0,
                                  addpath_receive=c is g5))
        print(f"reflector under test: {a.reflector} on {a.addr} (work dir {h.root})", flush=True)
        try:
            R.start()
            for c in clients:
                c.start()
        except (H.HarnessError, OSError) as e:
            checks.check("setup", False, str(e))
            for p in h.procs:
                print(f"--- {p.name} ---\n{p.tail()}")
            return 1
        queryable = [c for c in clients if c.kind != "exabgp"]

        # who should hold what: every originated prefix reaches every other client
        def origin_of(prefix):
            return [c for c in clients if prefix in c.originated()]

        def wait_routes(client, want, gone=(), what=""):
            """Wait until client holds every prefix in want and none in gone."""
            def ok():
                r = client.all_routes()
                return all(p in r for p in want) and not any(p in r for p in gone)
            try:
                H.wait_until(ok, CONVERGE, f"{client.name} {what}")
            except H.HarnessError:
                r = client.all_routes()
                raise AssertionError(
                    f"{client.name} ({client.kind}): missing {[p for p in want if p not in r]}, "
                    f"unexpected {[p for p in gone if p in r]}")

        def all_expected(c):
            return [p for o in clients if o is not c for p in o.originated()
                    if p not in c.originated()]

        # ---- checks -------------------------------------------------------------
        def sessions():
            for c in clients:
                try:
                    c.wait_established(CONVERGE)
                except H.HarnessError as e:
                    raise AssertionError(f"{c.name} ({c.kind}): {e}")
            st = R.peer_states()
            if st is not None:
                bad = {k: v for k, v in st.items() if v != "Established"}
                expect(not bad, f"reflector reports peers not Established: {bad}")

        def converge():
            for c in queryable:
                wait_routes(c, all_expected(c), what="full table")

        def rfc4456_attrs(afi):
            def chk():
                for c in queryable:
                    r = c.routes(afi)
                    for o in clients:
                        if o is c:
                            continue
                        for p in (o.v6 if afi == 6 else o.v4):
                            if p == SHARED or p not in r:
                                continue
                            paths = r[p]
                            path = paths[0]
                            where = f"{c.name}({c.kind}) {p} from {o.name}"
                            nh = o.nh6 if afi == 6 else o.nh4
                            if not o.ebgp and not c.ebgp:
                                expect(path.originator_id == o.router_id,
                                       f"{where}: ORIGINATOR_ID {path.originator_id}, "
                                       f"want {o.router_id}")
                                expect(path.cluster_list[:1] == [R.cluster_id],
                                       f"{where}: CLUSTER_LIST {path.cluster_list}, "
                                       f"want [{R.cluster_id}]")
                                expect(path.next_hop == nh,
                                       f"{where}: next hop {path.next_hop}, want {nh} "
                                       "(a reflector must not change it)")
                                expect(path.as_path == [], f"{where}: AS_PATH {path.as_path}")
                            if c.ebgp:
                                expect(65000 not in path.as_path,
                                       f"{where}: route server prepended its ASN: {path.as_path}")
            return chk

        def v6_present():
            for c in queryable:
                if c.ebgp:
                    continue
                r = c.routes(6)
                want = [p for o in clients if o is not c and not o.ebgp for p in o.v6]
                miss = [p for p in want if p not in r]
                expect(not miss, f"{c.name}: IPv6 routes missing: {miss}")
                for p in want:
                    nh = r[p][0].next_hop
                    expect(nh and ":" in nh, f"{c.name}: {p} has non-IPv6 next hop {nh}")

        def four_octet():
            r7 = b7.routes(4)
            expect("10.4.0.0/24" in r7, "b7 (AS 65107) did not get 10.4.0.0/24 from AS 4200000001")
            expect(r7["10.4.0.0/24"][0].as_path[:1] == [4200000001],
                   f"b7: 10.4.0.0/24 AS_PATH {r7['10.4.0.0/24'][0].as_path}, want [4200000001]")
            r4 = f4.routes(4)
            expect("10.7.0.0/24" in r4, "f4 (AS 4200000001) did not get 10.7.0.0/24 from AS 65107")
            expect(r4["10.7.0.0/24"][0].as_path[:1] == [65107],
                   f"f4: 10.7.0.0/24 AS_PATH {r4['10.7.0.0/24'][0].as_path}")
            for c in (b1, f3, g5):
                rc = c.routes(4)
                expect(rc.get("10.4.0.0/24") and rc["10.4.0.0/24"][0].as_path == [4200000001],
                       f"{c.name}: 10.4.0.0/24 AS_PATH "
                       f"{rc.get('10.4.0.0/24') and rc['10.4.0.0/24'][0].as_path}")

        def addpath():
            def two():
                r = g5.routes(4).get(SHARED, [])
                return len({p.next_hop for p in r}) >= 2 and r
            try:
                r = H.wait_until(two, CONVERGE, "two ADD-PATH paths at g5")
            except H.HarnessError:
                raise AssertionError(f"g5 holds {g5.routes(4).get(SHARED)} for {SHARED}, "
                                     "want 2 paths (192.0.2.1 and 192.0.2.2)")
            nhs = sorted(p.next_hop for p in r)
            expect(nhs == [b1.nh4, b2.nh4], f"g5 paths for {SHARED}: {nhs}")
            # a client without ADD-PATH gets exactly one path
            expect(len(f3.routes(4).get(SHARED, [])) == 1,
                   f"f3 (no ADD-PATH) got {f3.routes(4).get(SHARED)}")

        def refresh():
            before = f3.message_stats()
            n_before = len(f3.all_routes())
            f3.cli(f"clear bgp ipv4 unicast {R.addr} soft in")
            H.wait_until(lambda: f3.message_stats().get("routeRefreshSent", 0) >
                         before.get("routeRefreshSent", 0), 10, "f3 to send ROUTE-REFRESH")
            try:
                H.wait_until(lambda: f3.message_stats().get("updatesRecv", 0) >
                             before.get("updatesRecv", 0), 15,
                             "UPDATEs re-sent by the reflector after ROUTE-REFRESH")
            except H.HarnessError as e:
                raise AssertionError(f"{e}; before {before}, after {f3.message_stats()}")
            time.sleep(0.5)
            expect(len(f3.all_routes()) == n_before, "f3 lost routes across the refresh")
            expect(f3.established(), "f3 session dropped by the refresh")

        def withdraw():
            b1.withdraw("10.1.1.0/24")
            for c in queryable:
                if c is not b1:
                    wait_routes(c, [], gone=["10.1.1.0/24"], what="withdrawal of 10.1.1.0/24")
            # the others still have the rest of b1's table
            for c in queryable:
                if c is not b1:
                    wait_routes(c, ["10.1.0.0/24"], what="10.1.0.0/24 still present")

        def kill_client():
            b2.stop(hard=True)  # SIGKILL: the kernel closes the TCP session
            gone = ["10.2.0.0/24", "2001:db8:2::/48"]
            for c in queryable:
                if c is b2:
                    continue
                wait_routes(c, [] if c is b1 else [SHARED], gone=gone,
                            what="removal of b2's routes")
            H.wait_until(lambda: [p.next_hop for p in g5.routes(4).get(SHARED, [])] == [b1.nh4],
                         CONVERGE, "g5 left with only b1's path for the shared prefix")

        plan = [("sessions-established", sessions),
                ("initial-convergence", converge),
                ("reflected-ipv4-originator-cluster-list", rfc4456_attrs(4)),
                ("reflected-ipv6-mp-bgp", v6_present),
                ("reflected-ipv6-originator-cluster-list", rfc4456_attrs(6)),
                ("exabgp-injected-routes-everywhere",
                 lambda: [wait_routes(c, ["10.6.0.0/24", "2001:db8:6::/48"],
                                      what="exabgp routes") for c in queryable]),
                ("four-octet-asn-alongside-two-octet", four_octet),
                ("add-path-two-paths-to-gobgp", addpath),
                ("route-refresh-resends-table", refresh),
                ("withdraw-propagates", withdraw),
                ("killed-client-routes-removed", kill_client)]
        only = set(a.only.split(",")) if a.only else None
        for name, fn in plan:
            if only and name not in only and name != "sessions-established":
                continue
            checks.run(name, fn)
        if checks.failed and a.verbose:
            for p in h.procs:
                print(f"--- {p.name} log tail ---\n{p.tail()}")
    return h.rc


if __name__ == "__main__":
    sys.exit(main())
