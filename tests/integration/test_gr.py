#!/usr/bin/env python3
"""Graceful-restart helper mode (RFC 4724) of ricochetd, against real daemons.

Owns: its own ricochetd on 127.0.55.1 (loopback block 127.0.55.0/24: the
route-refresh and next-hop tests use the same block and never run at the
same time), a BIRD 2 observer client (127.0.55.10) whose own RIB (birdc)
must keep a restarting peer's routes, and restarting peers:
  - raw speakers (bgpspeaker.py) with the GR capability, so every byte of
    the restart is under control: routes announced, the connection reset
    (TCP RST) or closed (FIN, what SIGKILL of a daemon produces); during
    the restart time the observer still has the routes and
    `ricochet --json show routes` flags them "stale": true;
      (a) it comes back (R bit, F bit), re-announces a subset, and sends
          End-of-RIB: the others disappear at the observer, the subset stays;
      (b) it does not come back: after its restart time the routes go;
      (c) it comes back without the GR capability, or without the F bit for
          one family: the stale routes (of that family) go at once;
      (d) controls: a session closed by a NOTIFICATION, and a peer without
          the capability, lose their routes at once;
      (e) a new connection while the old session still looks Established
          (the peer restarted faster than we saw the drop) is a restart;
      (f) it comes back (R and F bits) with another BGP identifier: not the
          same speaker, so its stale routes go at once, without End-of-RIB,
          and what the new session then announces is reflected;
  - BIRD 2 with `graceful restart on`, killed with SIGKILL and started
    again with `-R` (graceful recovery) announcing a subset.
Single-threaded, every wait bounded; exits 77 when not root, a daemon is
missing, or ricochetd is not built.  Python 3 stdlib only.

  python3 tests/integration/test_gr.py --build BUILD [-k FILTER] [-v] [--keep]
"""

import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402

RR = "127.0.55.1"
OBS = "127.0.55.10"
GR_A, GR_B, GR_C, GR_C6, NOTIF, PLAIN, GR_E, BIRD_GR, GR_F = (
    "127.0.55.11", "127.0.55.12", "127.0.55.13", "127.0.55.14", "127.0.55.15",
    "127.0.55.16", "127.0.55.17", "127.0.55.18", "127.0.55.19")
AS = 65000
GR_PEERS = (GR_A, GR_B, GR_C, GR_C6, NOTIF, PLAIN, GR_E, GR_F)


def cap_gr(restart_time, fams=(B.AFI_IPV4, B.AFI_IPV6), restarting=False, fwd=None):
    """RFC 4724 capability: R bit, restart time, (AFI, SAFI, F bit) per family."""
    fwd = fwd if fwd is not None else {a: True for a in fams}
    v = struct.pack("!H", (0x8000 if restarting else 0) | (restart_time & 0xFFF))
    for a in fams:
        v += struct.pack("!HBB", a, B.SAFI_UNICAST, 0x80 if fwd.get(a) else 0)
    return B.cap(B.CAP_GR, v)


def announce(sp, v4=(), v6=(), nh4="192.0.2.55", nh6="2001:db8:55::1"):
    base = B.a_origin(0) + B.a_aspath([]) + B.a_localpref(100)
    if v4:
        sp.send(B.update(attrs=base + B.a_nexthop(nh4), nlri=b"".join(B.pfx(p) for p in v4)))
    if v6:
        sp.send(B.update(attrs=base + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, nh6,
                                                   b"".join(B.pfx(p) for p in v6))))


def eor(sp, v4=True, v6=True):
    if v4:
        sp.send(B.update())
    if v6:
        sp.send(B.update(attrs=B.a_mp_unreach(B.AFI_IPV6, B.SAFI_UNICAST, b"")))


def gr_table(s, addr, v4, v6=(), caps=(), seen=None):
    """A peer (addr, with caps) announces v4 + v6 and End-of-RIB; wait until the
    observer has them, as the check named `seen` when given.  Its speaker."""
    sp = s.speaker(addr, list(caps))
    announce(sp, v4, v6)
    eor(sp)
    ok = s.wait(lambda: s.obs_has(list(v4) + list(v6)), 15)
    if seen:
        s.check(seen, ok)
    return sp


class Ricochet:
    """ricochetd under test, started through the harness (killed at its exit)."""
    LOG = "ricochetd/stdout.log"        # in the harness's root

    def __init__(self, h, build):
        self.h = h
        self.bin = os.path.join(build, "io", "ricochetd")
        self.cli_bin = os.path.join(build, "io", "ricochet")
        self.dir = h.dir("ricochetd")
        self.sock = os.path.join(self.dir, "ricochet.sock")
        self.log = os.path.join(h.root, self.LOG)
        self.proc = None

    def start(self, peers):
        lines = [f"router-id: {RR}", f"asn: {AS}", f"cluster-id: {RR}",
                 f"listen: [{{ address: {RR}, port: 179 }}]",
                 f"control-socket: {self.sock}", "io-threads: 2", "peers:"]
        lines += ["  - " + p for p in peers]
        conf = os.path.join(self.dir, "ricochet.yaml")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        if H.port_in_use(RR, 179):
            raise H.HarnessError(f"{RR}:179 is in use")
        self.proc = self.h.spawn("ricochetd", [self.bin, "-c", conf], self.dir, log=self.log)
        H.wait_until(lambda: self.alive() and H.tcp_listening(RR, 179), 10, "ricochetd listening")

    def alive(self):
        if not self.proc.alive():
            raise H.HarnessError("ricochetd exited:\n" + self.proc.tail())
        return True

    def ctl(self, *args):
        """The JSON answer of a ricochet command; HarnessError when it fails."""
        return H.ricochet_json(self.cli_bin, self.sock, *args, check=True)

    def routes(self):
        """[{prefix, from, stale, ...}] of every path in the RIB."""
        return self.ctl("show", "routes", "--all")

    def paths_from(self, addr):
        return {r["prefix"]: r for r in self.routes() if r["from"] == addr}

    def state(self, addr):
        for e in self.ctl("show", "peers"):
            if e["address"] == addr:
                return e["state"]
        return None

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


class GrBird(H.BirdClient):
    """BIRD 2 with graceful restart; `recovery` starts it with -R."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.recovery = False

    def write_conf(self):
        super().write_conf()
        with open(self.conf) as f:
            txt = f.read()
        txt = txt.replace("hold time 30;", "hold time 30; graceful restart on; graceful restart time 120;")
        with open(self.conf, "w") as f:
            f.write(txt)

    def start(self):
        self.write_conf()
        argv = ["bird", "-f", "-c", self.conf, "-s", self.sock, "-P", os.path.join(self.dir, "bird.pid")]
        if self.recovery:
            argv.append("-R")
        self.proc = self.h.spawn(self.name, argv, self.dir)
        H.wait_until(lambda: os.path.exists(self.sock) and self.cli("show status"), 10,
                     f"{self.name} control socket")


class Suite(H.Checks):
    def __init__(self, h, rr, obs, verbose):
        super().__init__()
        self.h, self.rr, self.obs, self.verbose = h, rr, obs, verbose

    def obs_has(self, prefixes):
        have = self.obs.all_routes()
        return all(p in have for p in prefixes)

    def obs_lacks(self, prefixes):
        have = self.obs.all_routes()
        return not any(p in have for p in prefixes)

    def wait(self, pred, timeout):
        try:
            H.wait_until(pred, timeout, "condition", interval=0.2)
            return True
        except H.HarnessError:
            return False

    def holds(self, pred, seconds):
        """pred stays true for `seconds` (checked every 0.25 s)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not pred():
                return False
            time.sleep(0.25)
        return pred()

    def speaker(self, addr, caps_extra=(), gr=True, open_caps=None, bgp_id=None):
        sp = B.Speaker(addr, RR, timeout=5.0)
        caps = open_caps if open_caps is not None else B.caps_default(AS) + list(caps_extra)
        sp.establish(AS, hold=90, bgp_id=bgp_id or addr, caps=caps)
        return sp

    def stale_flags(self, addr, prefixes):
        got = self.rr.paths_from(addr)
        return {p: (got[p]["stale"] if p in got else None) for p in prefixes}

    def wait_down(self, addr, timeout=5):
        return self.wait(lambda: self.rr.state(addr) != "Established", timeout)

    def wait_up(self, addr, timeout=10):
        return self.wait(lambda: self.rr.state(addr) == "Established", timeout)


def v4s(block, n):
    return [f"10.55.{block}.{i * 16}/28" for i in range(n)]


def v6s(block, n):
    return [f"2001:db8:55:{block:x}{i:02x}::/64" for i in range(n)]


# ------------------------------------------------------------------ cases

def case_a_restart_subset(s):
    """(a) restart with RST, come back, re-announce a subset, End-of-RIB."""
    v4, v6 = v4s(1, 6), v6s(1, 2)
    keep4, keep6 = v4[:3], v6[:1]
    gone = v4[3:] + v6[1:]
    sp = gr_table(s, GR_A, v4, v6, [cap_gr(60)], "a: routes of the GR peer reach the observer")
    sp.close(reset=True)
    s.check("a: session seen down after a TCP reset", s.wait_down(GR_A))
    flags = s.stale_flags(GR_A, v4 + v6)
    s.check("a: show routes --json flags the kept paths \"stale\": true",
            all(f is True for f in flags.values()), str(flags))
    s.check("a: observer keeps all routes during the restart (3 s)",
            s.holds(lambda: s.obs_has(v4 + v6), 3.0))
    sp = s.speaker(GR_A, [cap_gr(60, restarting=True)])
    s.check("a: restarted session Established", s.wait_up(GR_A))
    announce(sp, keep4, keep6)
    # before End-of-RIB nothing may go
    s.check("a: before End-of-RIB the routes not re-announced are still there",
            s.holds(lambda: s.obs_has(v4 + v6), 1.5))
    flags = s.stale_flags(GR_A, v4 + v6)
    s.check("a: re-announced paths no longer stale, the others still stale",
            all(flags[p] is False for p in keep4 + keep6) and all(flags[p] is True for p in gone),
            str(flags))
    eor(sp)
    s.check("a: after End-of-RIB the routes not re-announced disappear at the observer",
            s.wait(lambda: s.obs_lacks(gone), 10))
    s.check("a: the re-announced routes stay", s.obs_has(keep4 + keep6))
    s.check("a: no stale path left in show routes",
            not any(r.get("stale") for r in s.rr.paths_from(GR_A).values()))
    peers = {e["address"]: e for e in s.rr.ctl("show", "peers")}
    acc = peers.get(GR_A, {}).get("prefixes_accepted")
    s.check("a: prefixes accepted counts the surviving paths", acc == len(keep4 + keep6), f"accepted {acc}")
    sp.close()
    s.wait_down(GR_A)


def case_b_no_return(s):
    """(b) the peer closes (FIN, like a killed daemon) and never comes back."""
    v4, v6 = v4s(2, 4), v6s(2, 2)
    sp = gr_table(s, GR_B, v4, v6, [cap_gr(4)], "b: routes reach the observer")
    t0 = time.monotonic()
    sp.close()
    s.wait_down(GR_B)
    s.check("b: routes held at the observer during the restart time (2 s of 4 s)",
            s.holds(lambda: s.obs_has(v4 + v6), 2.0))
    ok = s.wait(lambda: s.obs_lacks(v4 + v6), 10)
    dt = time.monotonic() - t0
    s.check("b: routes gone at the observer after the restart time", ok and dt >= 3.5, f"after {dt:.1f} s")
    s.check("b: and gone from the RIB", not s.rr.paths_from(GR_B))
    s.check("b: logged 'restart time over'", "restart time over" in s.rr.log_text())


def case_c_no_gr_on_return(s):
    """(c) back without the capability: everything stale goes at once; back
    with F=0 for IPv6: the IPv6 stale routes go at once, IPv4 waits for EoR."""
    v4, v6 = v4s(3, 3), v6s(3, 2)
    sp = gr_table(s, GR_C, v4, v6, [cap_gr(60)])
    sp.close(reset=True)
    s.wait_down(GR_C)
    s.check("c: kept during the restart", s.holds(lambda: s.obs_has(v4 + v6), 1.0))
    sp = s.speaker(GR_C)  # no GR capability
    s.wait_up(GR_C)
    s.check("c: back without the GR capability: stale routes flushed at once",
            s.wait(lambda: s.obs_lacks(v4 + v6), 6))
    sp.close()
    s.wait_down(GR_C)

    v4, v6 = v4s(4, 3), v6s(4, 2)
    sp = gr_table(s, GR_C6, v4, v6, [cap_gr(60)])
    sp.close(reset=True)
    s.wait_down(GR_C6)
    sp = s.speaker(GR_C6, [cap_gr(60, restarting=True, fwd={B.AFI_IPV4: True, B.AFI_IPV6: False})])
    s.wait_up(GR_C6)
    s.check("c: back with F=0 for IPv6: the IPv6 stale routes go at once",
            s.wait(lambda: s.obs_lacks(v6), 6))
    s.check("c: ... while the IPv4 ones wait for End-of-RIB", s.holds(lambda: s.obs_has(v4), 1.0))
    eor(sp, v6=False)
    s.check("c: IPv4 End-of-RIB without re-announcement removes them", s.wait(lambda: s.obs_lacks(v4), 6))
    sp.close()
    s.wait_down(GR_C6)

    # a GR capability that lists IPv4 only: the IPv6 routes are not helped
    v4, v6 = v4s(9, 2), v6s(9, 2)
    sp = gr_table(s, GR_C, v4, v6, [cap_gr(60, fams=(B.AFI_IPV4,))])
    sp.close(reset=True)
    s.wait_down(GR_C)
    s.check("c: GR for IPv4 only: the IPv6 routes go at the drop", s.wait(lambda: s.obs_lacks(v6), 6))
    s.check("c: ... the IPv4 ones are kept", s.holds(lambda: s.obs_has(v4), 1.0))
    sp = s.speaker(GR_C, [cap_gr(60, fams=(B.AFI_IPV4,), restarting=True)])
    s.wait_up(GR_C)
    eor(sp)
    s.check("c: ... until its End-of-RIB", s.wait(lambda: s.obs_lacks(v4), 6))
    sp.close()
    s.wait_down(GR_C)


def case_d_controls(s):
    """(d) a NOTIFICATION ends GR; a peer without the capability is not helped."""
    v4 = v4s(5, 3)
    sp = gr_table(s, NOTIF, v4, caps=[cap_gr(60)])
    sp.send(B.notification(6, 2))  # Cease / administrative shutdown
    sp.close()
    s.check("d: GR peer closing with a NOTIFICATION: routes withdrawn at once",
            s.wait(lambda: s.obs_lacks(v4), 5))
    v4 = v4s(6, 3)
    sp = gr_table(s, PLAIN, v4)  # no GR capability (ricochetd has GR on for it)
    sp.close(reset=True)
    s.check("d: peer without the GR capability reset: routes withdrawn at once",
            s.wait(lambda: s.obs_lacks(v4), 5))


def case_e_new_connection(s):
    """(e) the peer restarts before its old connection is seen dead."""
    v4 = v4s(7, 4)
    sp = gr_table(s, GR_E, v4, caps=[cap_gr(60)])
    old = sp  # left open, silent: ricochetd still sees it Established
    sp = s.speaker(GR_E, [cap_gr(60, restarting=True)])
    s.check("e: new connection while Established is taken as a restart", s.wait_up(GR_E))
    s.check("e: the old routes kept (stale) meanwhile", s.holds(lambda: s.obs_has(v4), 1.0))
    announce(sp, v4[:2])
    eor(sp)
    s.check("e: after End-of-RIB only the re-announced routes remain",
            s.wait(lambda: s.obs_lacks(v4[2:]), 6) and s.obs_has(v4[:2]))
    sp.close()
    old.close()
    s.wait_down(GR_E)


def case_f_other_identifier(s):
    """(f) back with another BGP identifier: the stale routes go at once."""
    v4, v6 = v4s(10, 4), v6s(10, 2)
    sp = gr_table(s, GR_F, v4, v6, [cap_gr(60)], "f: routes reach the observer")
    sp.close(reset=True)
    s.wait_down(GR_F)
    s.check("f: kept during the restart", s.holds(lambda: s.obs_has(v4 + v6), 1.0))
    sp = s.speaker(GR_F, [cap_gr(60, restarting=True)], bgp_id="192.0.2.99")
    s.check("f: session with another BGP identifier Established", s.wait_up(GR_F))
    s.check("f: its stale routes withdrawn at once, without End-of-RIB",
            s.wait(lambda: s.obs_lacks(v4 + v6), 6))
    s.check("f: and gone from the RIB", s.wait(lambda: not s.rr.paths_from(GR_F), 3))
    s.check("f: logged as another speaker", "not the same speaker" in s.rr.log_text())
    fresh = v4s(11, 2)
    announce(sp, fresh)
    eor(sp)
    s.check("f: what the new session announces is reflected", s.wait(lambda: s.obs_has(fresh), 10))
    s.check("f: and kept", s.holds(lambda: s.obs_has(fresh), 1.0))
    sp.close()
    s.wait_down(GR_F)


def case_bird(s):
    """A real restarting daemon: BIRD 2 (graceful restart on) killed with SIGKILL."""
    v4 = v4s(8, 4)
    v6 = v6s(8, 2)
    b = GrBird(s.h, "bird-gr", BIRD_GR, AS, target=(RR, AS), v4=v4, v6=v6)
    b.start()
    s.check("bird: GR-capable BIRD established", s.wait(b.established, 30))
    s.check("bird: its routes reach the observer", s.wait(lambda: s.obs_has(v4 + v6), 20))
    b.stop(hard=True)  # SIGKILL
    s.wait_down(BIRD_GR)
    flags = s.stale_flags(BIRD_GR, v4 + v6)
    s.check("bird: after SIGKILL its paths are stale in show routes",
            all(f is True for f in flags.values()), str(flags))
    s.check("bird: the observer keeps them during the restart (3 s)",
            s.holds(lambda: s.obs_has(v4 + v6), 3.0))
    # back with graceful recovery (-R: R and F bits), announcing a subset
    b.v4, b.v6 = v4[:2], v6[:1]
    b.recovery = True
    b.start()
    s.check("bird: restarted BIRD established again", s.wait(b.established, 30))
    s.check("bird: after its End-of-RIB the routes it dropped disappear at the observer",
            s.wait(lambda: s.obs_lacks(v4[2:] + v6[1:]), 30))
    s.check("bird: the routes it re-announced stay", s.obs_has(v4[:2] + v6[:1]))
    s.check("bird: nothing stale left", not any(r.get("stale") for r in s.rr.paths_from(BIRD_GR).values()))
    b.stop()


CASES = [("a", case_a_restart_subset), ("b", case_b_no_return), ("c", case_c_no_gr_on_return),
         ("d", case_d_controls), ("e", case_e_new_connection), ("f", case_f_other_identifier),
         ("bird", case_bird)]


def run_cases(a, prefix, peers, cases):
    """The run of a suite of cases (here and test_refresh.py): ricochetd with
    peers, the BIRD observer, then each case fn(s) of cases [(name, fn)]
    that -k selects; a case that raises fails alone ("NAME: ran to the
    end").  Returns the exit status."""
    with H.Run(prefix, keep=a.keep, verbose=a.verbose, daemon_log=Ricochet.LOG) as h:
        rr = Ricochet(h, a.build)
        rr.start(peers)
        obs = H.BirdClient(h, "observer", OBS, AS, target=(RR, AS))
        obs.start()
        h.checks = s = Suite(h, rr, obs, a.verbose)
        if not s.check("observer BIRD established", s.wait(obs.established, 30)):
            return 1
        for name, fn in cases:
            if a.k and a.k not in name:
                continue
            try:
                fn(s)
            except (H.HarnessError, B.Closed, OSError, ConnectionError, TimeoutError,
                    subprocess.SubprocessError) as e:
                s.check(f"{name}: ran to the end", False, repr(e))
        s.check("ricochetd still running", rr.proc.alive())
    return h.rc


def main():
    ap = H.arg_parser(verbose=True)
    ap.add_argument("-k", default="")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    H.require(root="binds port 179 on loopback",
              programs=["bird", "birdc"] + H.built(a.build, "io/ricochetd", "io/ricochet"))
    gr = "graceful-restart: { enabled: true, restart-time: 120 }"
    fam = "families: [ipv4-unicast, ipv6-unicast]"
    peers = [f"{{ address: {OBS}, asn: {AS}, role: rr-client, passive: true, {fam} }}"]
    peers += [f"{{ address: {x}, asn: {AS}, role: rr-client, passive: true, {fam}, {gr} }}"
              for x in GR_PEERS + (BIRD_GR,)]
    return run_cases(a, "ricochet-gr-", peers, CASES)


if __name__ == "__main__":
    sys.exit(main())
