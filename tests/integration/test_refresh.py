#!/usr/bin/env python3
"""Route refresh "in and out" (RFC 2918, enhanced RFC 7313) of ricochetd.

Owns: its own ricochetd on 127.0.55.1 (loopback block 127.0.55.0/24, shared
with the graceful-restart and next-hop tests, which never run at the same
time), a BIRD 2 observer (127.0.55.10), FRR bgpd as a real client
(127.0.55.20) and raw speakers (bgpspeaker.py, 127.0.55.21-23).  Checks:
  - out: `ricochet refresh PEER` makes FRR count a ROUTE-REFRESH received
    (`show bgp neighbors ... json`), FRR answers (with BoRR/EoRR, as it
    negotiates enhanced route refresh) and its routes stay everywhere;
  - out, byte level: a raw speaker receives one ROUTE-REFRESH per negotiated
    family (AFI/SAFI, subtype 0), or only the family asked for;
  - out, refused: no route-refresh capability, unknown peer, session down,
    bad family - the command exits 1 with a message;
  - in: FRR's `clear bgp ... soft in` sends a ROUTE-REFRESH, ricochetd
    counts it and re-sends its table (FRR counts the prefixes again);
  - enhanced in: a raw speaker's BoRR marks its paths of the family stale,
    routes re-sent before EoRR stay, the rest disappear at the observer at
    EoRR; the other family is untouched.
Single-threaded, every wait bounded; exits 77 when not root, a daemon is
missing, or ricochetd is not built.  Python 3 stdlib only.

  python3 tests/integration/test_refresh.py --build BUILD [-k FILTER] [-v] [--keep]
"""

import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402
from test_gr import RR, OBS, AS, announce, eor, run_cases  # noqa: E402

FRR = "127.0.55.20"
SP_ERR, SP_NORR, SP_OUT = "127.0.55.21", "127.0.55.22", "127.0.55.23"
DOWN = "127.0.55.24"  # configured, never connects


def rr_cli(rr, *args):
    """(exit status, stdout + stderr) of a ricochet command."""
    return H.ricochet_ctl(rr.cli_bin, rr.sock, *args, js=False)


def peer_json(rr, addr):
    for e in rr.ctl("show", "peers"):
        if e["address"] == addr:
            return e
    return {}


def refreshes_from(sp, timeout):
    """(afi, subtype, safi) of every ROUTE-REFRESH read within timeout."""
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = sp.recv_msg(max(0.05, end - time.monotonic()))
        if m is None:
            break
        if m.type == B.ROUTE_REFRESH:
            out.append(struct.unpack("!HBB", m.body[:4]))
        elif m.type == B.KEEPALIVE:
            sp.send(B.keepalive())
    return out


def case_frr(s):
    frr = H.FrrClient(s.h, "frr", FRR, AS, target=(RR, AS),
                      v4=["10.55.30.0/24", "10.55.31.0/24"], v6=["2001:db8:55:3000::/64"])
    frr.start()
    if s.check("frr: FRR established", s.wait(frr.established, 30)):
        frr_refresh(s, frr)
    frr.stop()


def frr_refresh(s, frr):
    v4, v6 = frr.v4, frr.v6
    s.check("frr: routes of FRR reach the observer", s.wait(lambda: s.obs_has(v4 + v6), 30))
    # FRR answers a refresh with BoRR/EoRR only after its initial End-of-RIB
    s.check("frr: FRR sent its End-of-RIB for both families",
            s.wait(lambda: len(frr.neighbor().get("gracefulRestartInfo", {}).get("endOfRibSend", {})) >= 2, 15),
            json.dumps(frr.neighbor().get("gracefulRestartInfo")))
    before = frr.message_stats()
    rc, out = rr_cli(s.rr, "refresh", FRR)
    s.check("frr: `ricochet refresh PEER` accepted", rc == 0, out.strip())
    recv_key = "routeRefreshRecv"
    ok = s.wait(lambda: frr.message_stats().get(recv_key, 0) >= before.get(recv_key, 0) + 2, 10)
    after = frr.message_stats()
    s.check("frr: FRR counts the ROUTE-REFRESHes received (ipv4 + ipv6)", ok,
            f"{recv_key} {before.get(recv_key)} -> {after.get(recv_key)}")
    s.check("frr: ricochetd counts them sent", peer_json(s.rr, FRR).get("route_refresh_out") == 2,
            str(peer_json(s.rr, FRR).get("route_refresh_out")))
    # FRR answers with BoRR, its routes, EoRR: nothing may be lost
    s.check("frr: FRR answered with enhanced route refresh (BoRR/EoRR in ricochetd's log)",
            s.wait(lambda: "EoRR for ipv4-unicast" in s.rr.log_text()
                   and "EoRR for ipv6-unicast" in s.rr.log_text(), 10))
    s.check("frr: its routes still at the observer after the refresh", s.holds(lambda: s.obs_has(v4 + v6), 2.0))
    paths = s.rr.paths_from(FRR)
    s.check("frr: and in the RIB, none stale", all(p in paths and not paths[p]["stale"] for p in v4 + v6),
            str({p: paths.get(p, {}).get("stale") for p in v4 + v6}))
    rc, out = rr_cli(s.rr, "refresh", FRR, "ipv6")
    s.check("frr: refresh PEER ipv6 sends one more",
            rc == 0 and s.wait(lambda: frr.message_stats().get(recv_key, 0) >= after.get(recv_key, 0) + 1, 10)
            and peer_json(s.rr, FRR).get("route_refresh_out") == 3, out.strip())
    # refresh "in": FRR asks ricochetd for its table again
    n_in = peer_json(s.rr, FRR).get("route_refresh_in", 0)
    sent_before = frr.message_stats().get("routeRefreshSent", 0)
    frr.cli(f"clear bgp ipv4 unicast {RR} soft in")
    s.check("frr: `clear bgp soft in` at FRR: ricochetd counts a ROUTE-REFRESH received",
            s.wait(lambda: peer_json(s.rr, FRR).get("route_refresh_in", 0) >= n_in + 1, 10),
            f"FRR sent {sent_before} -> {frr.message_stats().get('routeRefreshSent')}")


def case_out_bytes(s):
    sp = s.speaker(SP_OUT)
    s.wait_up(SP_OUT)
    rc, out = rr_cli(s.rr, "refresh", SP_OUT)
    got = refreshes_from(sp, 3.0)
    s.check("out: one ROUTE-REFRESH per negotiated family, subtype 0",
            rc == 0 and sorted(got) == [(B.AFI_IPV4, 0, 1), (B.AFI_IPV6, 0, 1)], f"{out.strip()} {got}")
    rc, out = rr_cli(s.rr, "refresh", SP_OUT, "ipv4")
    got = refreshes_from(sp, 2.0)
    s.check("out: refresh PEER ipv4 sends only IPv4", rc == 0 and got == [(B.AFI_IPV4, 0, 1)], str(got))
    rc, out = rr_cli(s.rr, "refresh", SP_OUT, "vpnv4")
    s.check("out: unknown family refused", rc == 1 and "family" in out, out.strip())
    sp.close()
    s.wait_down(SP_OUT)
    # a v4-only session: asking for ipv6 is an error
    sp = s.speaker(SP_OUT, open_caps=B.caps_default(AS, v6=False))
    s.wait_up(SP_OUT)
    rc, out = rr_cli(s.rr, "refresh", SP_OUT, "ipv6")
    s.check("out: a family not negotiated is refused", rc == 1 and "not negotiated" in out, out.strip())
    sp.close()


def case_out_refused(s):
    sp = s.speaker(SP_NORR, open_caps=B.caps_default(AS, rr=False))
    s.wait_up(SP_NORR)
    rc, out = rr_cli(s.rr, "refresh", SP_NORR)
    s.check("refused: peer without the route-refresh capability", rc == 1 and "capability" in out, out.strip())
    s.check("refused: nothing sent to it", refreshes_from(sp, 1.0) == [])
    sp.close()
    rc, out = rr_cli(s.rr, "refresh", "127.0.55.99")
    s.check("refused: unknown peer", rc == 1 and "no such peer" in out, out.strip())
    rc, out = rr_cli(s.rr, "refresh", DOWN)
    s.check("refused: session not Established", rc == 1 and "Established" in out, out.strip())
    rc, out = rr_cli(s.rr, "refresh")
    s.check("refused: usage without a peer", rc == 1 and "usage" in out, out.strip())


def case_enhanced_in(s):
    v4 = [f"10.55.20.{i * 16}/28" for i in range(6)]
    v6 = ["2001:db8:55:2000::/64", "2001:db8:55:2001::/64"]
    caps = B.caps_default(AS) + [B.cap(B.CAP_ERR)]
    sp = s.speaker(SP_ERR, open_caps=caps)
    announce(sp, v4, v6)
    eor(sp)
    s.check("borr: routes reach the observer", s.wait(lambda: s.obs_has(v4 + v6), 15))
    sp.send(B.route_refresh(B.AFI_IPV4, subtype=1))  # BoRR
    ok = s.wait(lambda: all(r["stale"] for p, r in s.rr.paths_from(SP_ERR).items() if ":" not in p), 5)
    st = s.rr.paths_from(SP_ERR)
    s.check("borr: BoRR marks the IPv4 paths stale, not the IPv6 ones",
            ok and not any(r["stale"] for p, r in st.items() if ":" in p),
            str({p: r["stale"] for p, r in st.items()}))
    announce(sp, v4[:4])
    s.check("borr: nothing withdrawn before EoRR", s.holds(lambda: s.obs_has(v4 + v6), 1.5))
    sp.send(B.route_refresh(B.AFI_IPV4, subtype=2))  # EoRR
    s.check("borr: at EoRR the routes not re-sent disappear at the observer",
            s.wait(lambda: s.obs_lacks(v4[4:]), 10))
    s.check("borr: the re-sent ones and the other family stay", s.obs_has(v4[:4] + v6))
    st = s.rr.paths_from(SP_ERR)
    s.check("borr: no stale path left, accepted count right",
            not any(r["stale"] for r in st.values()) and peer_json(s.rr, SP_ERR).get("prefixes_accepted") == 6,
            f"{len(st)} paths, accepted {peer_json(s.rr, SP_ERR).get('prefixes_accepted')}")
    sp.close()


CASES = [("frr", case_frr), ("out", case_out_bytes), ("refused", case_out_refused), ("borr", case_enhanced_in)]


def main():
    ap = H.arg_parser(verbose=True)
    ap.add_argument("-k", default="")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    H.require(root="binds port 179 on loopback",
              programs=["bird", "birdc", "vtysh", H.FRR_BGPD] + H.built(a.build, "io/ricochetd", "io/ricochet"))
    fam = "families: [ipv4-unicast, ipv6-unicast]"
    # FRR sends End-of-RIB, and then answers a refresh with BoRR/EoRR, only to
    # a peer that announced graceful restart: ricochetd does for it
    peers = [f"{{ address: {x}, asn: {AS}, role: rr-client, passive: true, {fam}"
             + (", graceful-restart: true }" if x == FRR else " }")
             for x in (OBS, FRR, SP_ERR, SP_NORR, SP_OUT, DOWN)]
    return run_cases(a, "ricochet-rr-", peers, CASES)


if __name__ == "__main__":
    sys.exit(main())
