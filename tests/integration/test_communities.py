#!/usr/bin/env python3
"""Well-known communities and community pass-through, end to end (127.0.56.0/24).

A raw rr-client announces four prefixes: one with NO_EXPORT, one with
NO_ADVERTISE, one with NO_EXPORT_SUBCONFED, one with ordinary, extended and
large communities.  Expected (RFC 1997, RFC 4456, RFC 7947): an iBGP
rr-client receives NO_EXPORT and NO_EXPORT_SUBCONFED routes but not the
NO_ADVERTISE one; an eBGP rs-client receives only the ordinary route; every
community attribute arrives octet for octet as sent.
"""
import os, struct, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402

RR, SRC, MON, RS = "127.0.56.1", "127.0.56.10", "127.0.56.11", "127.0.56.12"
AS, RS_AS = 65000, 65056
NO_EXPORT, NO_ADVERTISE, NO_EXPORT_SUBCONFED = 0xFFFFFF01, 0xFFFFFF02, 0xFFFFFF03
P_NOEXP, P_NOADV, P_NOSUB, P_PLAIN = "10.56.1.0/24", "10.56.2.0/24", "10.56.3.0/24", "10.56.4.0/24"
EXT = bytes.fromhex("0002fde800000001")                      # route target 65000:1
LARGE = struct.pack("!III", 4200000056, 1, 2)


def main():
    ap = H.arg_parser(verbose=False)
    a = ap.parse_args()
    rd = os.path.join(os.path.abspath(a.build), "io", "ricochetd")
    H.require(root="port 179", programs=(rd,))
    with H.Run("ricochet-comm-", keep=a.keep) as run:
        tmp = run.root
        cfg = os.path.join(tmp, "r.yaml")
        open(cfg, "w").write(f"""router-id: {RR}
asn: {AS}
listen: [{{ address: {RR}, port: 179 }}]
control-socket: {tmp}/ctl.sock
peers:
  - {{ address: {SRC}, asn: {AS}, role: rr-client, passive: true }}
  - {{ address: {MON}, asn: {AS}, role: rr-client, passive: true }}
  - {{ address: {RS}, asn: {RS_AS}, role: rs-client, passive: true }}
""")
        proc = run.popen([rd, "-c", cfg], log="ricochetd.log")
        check = run.checks.check

        time.sleep(0.5)
        peers = {}
        for addr, asn in ((MON, AS), (RS, RS_AS), (SRC, AS)):
            sp = B.Speaker(addr, RR, timeout=5.0)
            sp.establish(asn, hold=90, bgp_id=addr, caps=B.caps_default(asn))
            peers[addr] = B.RibView(sp)
        base = B.a_origin(0) + B.a_aspath([]) + B.a_nexthop("192.0.2.56") + B.a_localpref(100)
        src = peers[SRC].sp
        comm_plain = B.a_communities([(65000 << 16) | 1, (65000 << 16) | 2])
        ext_attr = B.attr(B.F_OT, B.EXT_COMMUNITIES, EXT)
        large_attr = B.attr(B.F_OT, 32, LARGE)
        src.send(B.update(attrs=base + B.a_communities([NO_EXPORT]), nlri=B.pfx(P_NOEXP)))
        src.send(B.update(attrs=base + B.a_communities([NO_ADVERTISE]), nlri=B.pfx(P_NOADV)))
        src.send(B.update(attrs=base + B.a_communities([NO_EXPORT_SUBCONFED]), nlri=B.pfx(P_NOSUB)))
        src.send(B.update(attrs=base + comm_plain + ext_attr + large_attr, nlri=B.pfx(P_PLAIN)))
        mon, rs = peers[MON], peers[RS]
        mon.wait(lambda r: P_PLAIN in r and P_NOEXP in r and P_NOSUB in r, 10)
        rs.wait(lambda r: P_PLAIN in r, 10)
        time.sleep(1.0)             # anything that should not come has had time to come
        mon.pump(0.3)
        rs.pump(0.3)
        for v in peers.values():
            v.keepalive()
        check("rr-client gets the NO_EXPORT route (iBGP)", P_NOEXP in mon.routes, sorted(mon.routes))
        check("rr-client gets the NO_EXPORT_SUBCONFED route", P_NOSUB in mon.routes, sorted(mon.routes))
        check("rr-client does not get the NO_ADVERTISE route", P_NOADV not in mon.routes, sorted(mon.routes))
        check("rs-client (eBGP) gets the ordinary route", P_PLAIN in rs.routes, sorted(rs.routes))
        check("rs-client gets neither NO_EXPORT nor NO_EXPORT_SUBCONFED",
              P_NOEXP not in rs.routes and P_NOSUB not in rs.routes, sorted(rs.routes))
        check("rs-client does not get the NO_ADVERTISE route", P_NOADV not in rs.routes, sorted(rs.routes))
        for who, view in (("rr-client", mon), ("rs-client", rs)):
            u = view.routes.get(P_PLAIN)
            ok = u is not None and u.attrs.get(B.COMMUNITIES, (0, b""))[1] == comm_plain[3:] \
                and u.attrs.get(B.EXT_COMMUNITIES, (0, b""))[1] == EXT and u.attrs.get(32, (0, b""))[1] == LARGE
            check(f"{who}: communities, extended and large communities untouched", ok,
                  u.attrs if u else None)
        u = mon.routes.get(P_NOEXP)
        check("rr-client: NO_EXPORT community itself passed through",
              u is not None and u.attrs.get(B.COMMUNITIES, (0, b""))[1] == struct.pack("!I", NO_EXPORT))
        check("daemon still running", proc.poll() is None)
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
