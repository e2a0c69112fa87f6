#!/usr/bin/env python3
"""IPv6 next hops of 16 and 32 octets (RFC 2545: global + link-local)
reflected unchanged by ricochetd.

Owns: its own ricochetd on 127.0.55.1 (loopback block 127.0.55.0/24, shared
with the graceful-restart and route-refresh tests, never at the same time),
a raw speaker source (127.0.55.30) announcing IPv6 prefixes with an MP_REACH
next hop of 32 octets (2001:db8:55::30 + fe80::30) and of 16 octets, and
three receivers: a raw rr-client monitor (127.0.55.31) that checks the
MP_REACH next-hop field octet for octet, a raw rs-client monitor with its
own ASN (127.0.55.32, RFC 7947: next hop unchanged too), and BIRD 2
(127.0.55.33) whose `show route all` must carry both addresses in
BGP.next_hop.  Also: `ricochet --json show routes` and a replacement of a
32-octet next hop by a 16-octet one (and back).

Not FRR as a receiver: FRR bgpd run without zebra (as the harness does) has
no interface for a loopback peer and treats a 32-octet next hop as an error
(MP_REACH treat-as-withdraw, then NOTIFICATION 3/10 "wrong prefix length 56
for afi 1"), seen with FRR 8.4.  Passing the link-local address on unchanged
is what this reflector is specified to do.
Single-threaded, every wait bounded; exits 77 when not root, a daemon is
missing, or ricochetd is not built.  Python 3 stdlib only.

  python3 tests/integration/test_nexthop6.py --build BUILD [-v] [--keep]
"""

import ipaddress
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402
from test_gr import RR, AS, Ricochet, Suite  # noqa: E402

SRC, MON, MON_RS, BIRD = "127.0.55.30", "127.0.55.31", "127.0.55.32", "127.0.55.33"
RS_AS = 65055
GLOBAL, LL = "2001:db8:55::30", "fe80::30"
P32 = ["2001:db8:55:3200::/56", "2001:db8:55:3300::/56"]
P16 = ["2001:db8:55:1600::/56"]


def mp_nexthop(u):
    """Raw next-hop octets of an UPDATE's MP_REACH."""
    v = u.attrs[B.MP_REACH][1]
    nhl = v[3]
    return v[4:4 + nhl]


def nh_bytes(*addrs):
    return b"".join(ipaddress.IPv6Address(a).packed for a in addrs)


class Mon:
    """A raw monitor: latest MP_REACH next hop per prefix."""

    def __init__(self, s, addr, asn):
        self.sp = B.Speaker(addr, RR, timeout=5.0)
        self.sp.establish(asn, hold=90, bgp_id=addr, caps=B.caps_default(asn))
        self.nh = {}

    def pump(self, t=0.3):
        for u in self.sp.updates(t):
            for p, _ in u.withdrawn:
                self.nh.pop(p, None)
            if B.MP_REACH in u.attrs:
                for p, _ in u.announced:
                    self.nh[p] = mp_nexthop(u)
        return self.nh

    def wait(self, s, pred, timeout=10):
        return s.wait(lambda: pred(self.pump()), timeout)


def bird_nexthops(bird):
    """prefix -> BGP.next_hop addresses (a list) from BIRD's master6 table."""
    out, cur = {}, None
    for line in bird.cli("show", "route", "table", "master6", "all").splitlines():
        if line and not line[0].isspace() and "/" in line.split()[0]:
            cur = H.norm_prefix(line.split()[0])
        elif cur and line.strip().startswith("BGP.next_hop:"):
            out[cur] = line.split(":", 1)[1].split()
    return out


def main():
    ap = H.arg_parser(verbose=True)
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    H.require(root="binds port 179 on loopback",
              programs=["bird", "birdc"] + H.built(a.build, "io/ricochetd", "io/ricochet"))
    fam = "families: [ipv4-unicast, ipv6-unicast]"
    peers = [f"{{ address: {x}, asn: {AS}, role: rr-client, passive: true, {fam} }}" for x in (SRC, MON, BIRD)]
    peers.append(f"{{ address: {MON_RS}, asn: {RS_AS}, role: rs-client, passive: true, {fam} }}")
    with H.Run("ricochet-nh6-", keep=a.keep, verbose=a.verbose, daemon_log=Ricochet.LOG) as h:
        rr = Ricochet(h, a.build)
        rr.start(peers)
        h.checks = s = Suite(h, rr, None, a.verbose)
        bird = H.BirdClient(h, "bird", BIRD, AS, target=(RR, AS))
        bird.start()
        s.check("BIRD established", s.wait(bird.established, 30))
        mon = Mon(s, MON, AS)
        mon_rs = Mon(s, MON_RS, RS_AS)
        src = B.Speaker(SRC, RR, timeout=5.0)
        src.establish(AS, hold=90, bgp_id=SRC, caps=B.caps_default(AS))
        base = B.a_origin(0) + B.a_aspath([]) + B.a_localpref(100)
        src.send(B.update(attrs=base + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, [GLOBAL, LL],
                                                    b"".join(B.pfx(p) for p in P32))))
        src.send(B.update(attrs=base + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, GLOBAL,
                                                    b"".join(B.pfx(p) for p in P16))))
        want32, want16 = nh_bytes(GLOBAL, LL), nh_bytes(GLOBAL)
        for m, who in ((mon, "rr-client"), (mon_rs, "rs-client")):
            ok = m.wait(s, lambda nh: all(p in nh for p in P32 + P16))
            got = {p: m.nh.get(p, b"").hex() for p in P32 + P16}
            s.check(f"raw {who}: 32-octet next hop passed through octet for octet",
                    ok and all(m.nh[p] == want32 for p in P32), str(got))
            s.check(f"raw {who}: 16-octet next hop passed through", ok and all(m.nh[p] == want16 for p in P16),
                    str(got))
        routes = {r["prefix"]: r for r in rr.routes() if r["from"] == SRC}
        s.check("show routes --json: next_hop and next_hop_link_local of the 32-octet next hop",
                all(routes.get(p, {}).get("next_hop") == GLOBAL and routes[p].get("next_hop_link_local") == LL
                    for p in P32)
                and all("next_hop_link_local" not in routes.get(p, {}) for p in P16),
                str({p: (routes.get(p, {}).get("next_hop"), routes.get(p, {}).get("next_hop_link_local"))
                     for p in P32 + P16}))
        ok = s.wait(lambda: all(p in bird_nexthops(bird) for p in P32 + P16), 20)
        got = bird_nexthops(bird)
        s.check("BIRD: 32-octet next hop received as global + link-local",
                ok and all(got[p] == [GLOBAL, LL] for p in P32), str(got))
        s.check("BIRD: 16-octet next hop received as global only",
                ok and all(got[p] == [GLOBAL] for p in P16), str(got))
        # replace: the 32-octet path becomes 16 octets, then 32 again
        src.send(B.update(attrs=base + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, GLOBAL, B.pfx(P32[0]))))
        s.check("replacement 32 -> 16 octets reaches the monitor",
                mon.wait(s, lambda nh: nh.get(P32[0]) == want16), mon.nh.get(P32[0], b"").hex())
        src.send(B.update(attrs=base + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, [GLOBAL, LL],
                                                    B.pfx(P32[0]))))
        s.check("replacement 16 -> 32 octets reaches the monitor",
                mon.wait(s, lambda nh: nh.get(P32[0]) == want32), mon.nh.get(P32[0], b"").hex())
        s.check("BIRD follows (global + link-local again)",
                s.wait(lambda: bird_nexthops(bird).get(P32[0]) == [GLOBAL, LL], 15),
                str(bird_nexthops(bird).get(P32[0])))
        src.close()
        mon.sp.close()
        mon_rs.sp.close()
        s.check("ricochetd still running", rr.proc.alive())
    return h.rc


if __name__ == "__main__":
    sys.exit(main())
