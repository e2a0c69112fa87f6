#!/usr/bin/env python3
"""Slow, stuck, failing and unwanted peers against a running ricochetd.

Owns: its own ricochetd on 127.0.88.1 (clients in 127.0.88.0/24; the
malformed suite uses the same block and never runs at the same time), a
healthy monitor client (127.0.88.10) that must keep converging throughout,
and one check per behaviour of issue 6:
  - control socket mode 0600;
  - a connection from an address outside every peer and range is closed at
    once and logged; a flood of 300 idle connections from unconfigured
    addresses plus 64 idle ones from a configured range does not stop a
    configured peer from establishing within a few seconds;
  - a peer closing mid-message, a TCP reset, hold timer expiry (our hold 3,
    no KEEPALIVEs: NOTIFICATION 4/0 from ricochetd): routes withdrawn at the
    monitor each time;
  - max-prefixes: warning at the threshold, Cease/1 with RFC 4486 data when
    exceeded, routes withdrawn, and the restart hold-down for a passive peer
    (connections refused until then) and an active one (no connect before);
  - an active peer whose sessions keep failing is retried with exponential
    backoff;
  - a peer flapping every second for 20 s: nothing left at the monitor and
    ricochetd's RSS back near where it was;
  - RFC 9687 send hold timer: a client that stops reading (tiny receive
    buffer) while 200,000 routes arrive is dropped after its send-hold-time
    (5 s here) while the monitor still receives everything.
Single-threaded, every wait bounded; exits 77 when not root or not built.
Python 3 stdlib only.

  python3 tests/integration/test_resilience.py --build build [-k FILTER] [-v] [--keep]
"""

import os
import re
import socket
import stat
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402
from test_malformed import Daemon, RR, MON, LOCAL_AS  # noqa: E402

FEEDER, STUCK, MAXP, HOLD, FLAP, MIDMSG, RESET, ACTIVE, LATE = (
    "127.0.88.11", "127.0.88.12", "127.0.88.13", "127.0.88.14", "127.0.88.15",
    "127.0.88.17", "127.0.88.18", "127.0.88.19", "127.0.88.21")
BACKOFF = "127.0.88.22"
ACTIVE_RESTART = 5
PASSIVE_RESTART = 6


def v4_block(base, n, plen=24):
    """n distinct IPv4 prefixes /plen starting at base (an int, first octet)."""
    out = []
    for i in range(n):
        a = (base << 24) + (i << (32 - plen))
        out.append(f"{a >> 24 & 255}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{plen}")
    return out


def announce_msgs(prefixes, nh="192.0.2.7", max_msg=4096, asn=None):
    """UPDATEs announcing prefixes, packed up to max_msg."""
    attrs = B.a_origin(0) + B.a_aspath([asn] if asn else []) + B.a_nexthop(nh) + B.a_localpref(100)
    return B.packed_updates(attrs, prefixes, max_msg)


class Monitor:
    """The healthy client: counts what it holds (prefix set) cheaply."""

    def __init__(self):
        self.sp = B.Speaker(MON, RR, timeout=3)
        self.sp.establish(LOCAL_AS, bgp_id="10.0.0.10")
        self.routes = set()
        self.last_ka = time.monotonic()

    def pump(self, timeout=0.2):
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() - self.last_ka > 20:
                self.sp.send(B.keepalive())
                self.last_ka = time.monotonic()
            m = self.sp.recv_msg(max(0.0, min(0.2, deadline - time.monotonic())))
            if m is not None and m.type == B.UPDATE:
                u = B.Update(m.body)
                for p, _ in u.withdrawn:
                    self.routes.discard(p)
                for p, _ in u.announced:
                    self.routes.add(p)
            elif m is not None and m.type == B.NOTIFICATION:
                raise B.Closed(f"monitor got {B.Notification(m.body)}")
            if m is None and time.monotonic() >= deadline:
                return

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if pred(self.routes):
                return True
            if time.monotonic() >= deadline:
                return False
            self.pump(min(0.3, max(0.01, deadline - time.monotonic())))


class Suite:
    def __init__(self, d, checks, verbose, active_listener, backoff_listener):
        self.active_listener = active_listener
        self.backoff_listener = backoff_listener
        self.d = d
        self.verbose = verbose
        self.mon = None
        self.checks = checks
        self.figures = []

    def fig(self, s):
        self.figures.append(s)
        if self.verbose:
            print("   " + s, flush=True)

    def log_count(self, needle):
        return sum(1 for ln in self.d.log_lines() if needle in ln)

    def establish(self, addr, hold=90, caps=None):
        sp = B.Speaker(addr, RR, timeout=3)
        sp.establish(LOCAL_AS, hold=hold, bgp_id=f"10.0.1.{addr.split('.')[-1]}", caps=caps)
        return sp

    def announce_and_see(self, sp, prefixes):
        for m in announce_msgs(prefixes):
            sp.send(m)
        want = set(prefixes)
        if not self.mon.wait(lambda r: want <= r, 10):
            raise AssertionError(f"monitor did not receive the {len(prefixes)} routes")

    def withdrawn_at_monitor(self, prefixes, timeout=8):
        ps = set(prefixes)
        return self.mon.wait(lambda r: not (ps & r), timeout)

    # ---------------------------------------------------------------- checks
    def t_ctl_mode(self):
        m = stat.S_IMODE(os.stat(self.d.sock).st_mode)
        assert m == 0o600, f"control socket mode {m:o}, want 600"

    def t_unconfigured_refused(self):
        before = self.log_count("connection from 127.0.88.250 refused")
        s = socket.socket()
        s.settimeout(3)
        s.bind(("127.0.88.250", 0))
        s.connect((RR, 179))
        t0 = time.monotonic()
        try:
            d = s.recv(100)
        except ConnectionResetError:
            d = b""
        dt = time.monotonic() - t0
        s.close()
        assert d == b"", f"got {len(d)} octets from ricochetd on an unconfigured connection"
        assert dt < 1.0, f"closed only after {dt:.1f} s"
        deadline = time.monotonic() + 2
        while self.log_count("connection from 127.0.88.250 refused") <= before:
            assert time.monotonic() < deadline, "refusal not logged"
            time.sleep(0.05)
        self.fig(f"unconfigured connection closed after {dt * 1000:.0f} ms and logged")

    def t_flood(self):
        socks = []
        refused = 0
        t0 = time.monotonic()
        try:
            for i in range(300):
                s = socket.socket()
                s.setblocking(False)
                s.bind((f"127.0.88.{200 + i % 50}", 0))
                try:
                    s.connect((RR, 179))
                except BlockingIOError:
                    pass
                socks.append(s)
            for i in range(64):
                s = socket.socket()
                s.setblocking(False)
                s.bind((f"127.0.88.{128 + i}", 0))
                try:
                    s.connect((RR, 179))
                except BlockingIOError:
                    pass
                socks.append(s)
            tf = time.monotonic() - t0
            time.sleep(0.5)
            t1 = time.monotonic()
            sp = self.establish(LATE)
            dt = time.monotonic() - t1
            self.announce_and_see(sp, v4_block(31, 10))
            # the unconfigured ones were closed by ricochetd
            time.sleep(0.5)
            for s in socks[:300]:
                try:
                    if s.recv(10) == b"":
                        refused += 1
                except BlockingIOError:
                    pass
                except OSError:
                    refused += 1
            sp.close()
            self.fig(f"flood: 364 connections opened in {tf:.2f} s; configured peer Established "
                     f"in {dt * 1000:.0f} ms; {refused}/300 unconfigured connections closed by ricochetd")
            assert dt < 3.0, f"configured peer needed {dt:.1f} s to establish during the flood"
            assert refused == 300, f"only {refused}/300 unconfigured connections were closed"
        finally:
            for s in socks:
                s.close()
        assert self.withdrawn_at_monitor(v4_block(31, 10))

    def t_mid_message_close(self):
        sp = self.establish(MIDMSG)
        pf = v4_block(32, 50)
        self.announce_and_see(sp, pf)
        m = announce_msgs(v4_block(33, 20))[0]
        sp.send(m[:len(m) // 2])
        time.sleep(0.2)
        sp.close()
        assert self.withdrawn_at_monitor(pf), "routes of a peer that closed mid-message not withdrawn"
        st = self.d.wait_state(MIDMSG, lambda s: s != "Established")
        assert st != "Established", "session still Established"

    def t_tcp_reset(self):
        sp = self.establish(RESET)
        pf = v4_block(34, 50)
        self.announce_and_see(sp, pf)
        sp.close(reset=True)
        assert self.withdrawn_at_monitor(pf), "routes of a reset peer not withdrawn"
        st = self.d.wait_state(RESET, lambda s: s != "Established")
        assert st != "Established", "session still Established"

    def t_hold_expiry(self):
        sp = self.establish(HOLD, hold=3)
        pf = v4_block(35, 20)
        self.announce_and_see(sp, pf)
        t0 = time.monotonic()
        n = sp.expect_notification(8)           # we send no KEEPALIVE from now on
        dt = time.monotonic() - t0
        sp.close()
        assert n is not None, "no NOTIFICATION after the hold time"
        assert (n.code, n.subcode) == (4, 0), f"got {n}, want 4/0"
        assert 2.0 <= dt <= 5.5, f"hold timer fired after {dt:.1f} s, want about 3"
        assert self.withdrawn_at_monitor(pf), "routes not withdrawn after hold timer expiry"
        self.fig(f"hold 3 s: NOTIFICATION 4/0 after {dt:.1f} s")

    def t_max_prefixes_passive(self):
        sp = self.establish(MAXP)
        warn0 = self.log_count("warning threshold")
        pf = v4_block(36, 85)
        self.announce_and_see(sp, pf)
        deadline = time.monotonic() + 2
        while self.log_count("warning threshold") <= warn0:
            assert time.monotonic() < deadline, "no warning at 85 of 100 (80 %)"
            time.sleep(0.05)
        more = v4_block(37, 20)
        for m in announce_msgs(more):
            sp.send(m)
        n = sp.expect_notification(5)
        t_cease = time.monotonic()
        sp.close()
        assert n is not None and (n.code, n.subcode) == (6, 1), f"got {n}, want Cease/1"
        assert n.data == struct.pack("!HBI", 1, 1, 100), f"Cease/1 data {n.data.hex()}, want AFI 1 SAFI 1 limit 100"
        assert self.withdrawn_at_monitor(pf + more), "routes of the max-prefixes peer not withdrawn"
        # passive peer: reconnects refused during the hold-down
        tries = 0
        while time.monotonic() - t_cease < PASSIVE_RESTART - 1.5:
            tries += 1
            s = B.Speaker(MAXP, RR, timeout=2)
            try:
                s.establish(LOCAL_AS, bgp_id="10.0.1.13", timeout=2)
                raise AssertionError(f"re-established {time.monotonic() - t_cease:.1f} s after Cease/1, "
                                     f"before the {PASSIVE_RESTART} s restart time")
            except (B.Closed, ConnectionError, TimeoutError, OSError):
                pass
            finally:
                s.close()
            time.sleep(1.0)
        while time.monotonic() - t_cease < PASSIVE_RESTART + 0.3:
            time.sleep(0.1)
        s = B.Speaker(MAXP, RR, timeout=3)
        try:
            s.establish(LOCAL_AS, bgp_id="10.0.1.13", timeout=4)
        except (B.Closed, ConnectionError, TimeoutError, OSError) as e:
            raise AssertionError(f"not accepted after the restart time: {e}")
        finally:
            s.close()
        self.fig(f"max-prefixes passive: Cease/1 data {n.data.hex()}, {tries} reconnects refused, "
                 f"accepted after {PASSIVE_RESTART} s")

    def t_max_prefixes_active(self):
        ls = self.active_listener      # opened before ricochetd started (no connect backoff)
        ls.settimeout(15)
        try:
            c, _ = ls.accept()
            sp = B.Speaker(ACTIVE, RR, timeout=3)
            sp.sock = c
            sp.establish(LOCAL_AS, bgp_id="10.0.1.19")
            for m in announce_msgs(v4_block(38, 11)):
                sp.send(m)
            n = sp.expect_notification(5)
            t_cease = time.monotonic()
            sp.close()
            assert n is not None and (n.code, n.subcode) == (6, 1), f"got {n}, want Cease/1"
            ls.settimeout(ACTIVE_RESTART + 10)
            c2, _ = ls.accept()
            dt = time.monotonic() - t_cease
            c2.close()
            self.fig(f"max-prefixes active: reconnect {dt:.1f} s after Cease/1 (restart {ACTIVE_RESTART} s)")
            assert dt >= ACTIVE_RESTART - 0.5, f"reconnected after {dt:.1f} s, restart is {ACTIVE_RESTART} s"
        finally:
            ls.close()

    def t_backoff(self):
        """An active peer whose every session fails with a NOTIFICATION (we
        answer its OPEN with a wrong AS) is retried with growing delays."""
        ls = self.backoff_listener
        times = []
        deadline = time.monotonic() + 22
        while time.monotonic() < deadline and len(times) < 5:
            ls.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                c, _ = ls.accept()
            except socket.timeout:
                break
            times.append(time.monotonic())
            sp = B.Speaker(BACKOFF, RR, timeout=2)
            sp.sock = c
            try:
                sp.recv_msg(2)                       # its OPEN
                sp.send(B.open_msg(64999, caps=B.caps_default(64999)))
                sp.expect_notification(2)
            except B.Closed:
                pass
            sp.close()
        gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
        self.fig(f"reconnect backoff after failed sessions: gaps {gaps} s")
        assert len(gaps) >= 3, f"only {len(times)} connection attempts in 22 s"
        assert all(b >= a * 1.5 for a, b in zip(gaps, gaps[1:])), f"gaps {gaps} do not grow exponentially"

    def t_flapping(self):
        rss = [self.d.rss_kb()]
        pf = v4_block(40, 1000)
        msgs = announce_msgs(pf)
        t_end = time.monotonic() + 20
        flaps = 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                sp = self.establish(FLAP)
                for m in msgs:
                    sp.send(m)
                self.mon.pump(0.3)
                sp.close(reset=flaps % 2 == 1)
                flaps += 1
            except (B.Closed, ConnectionError, TimeoutError, OSError):
                pass   # refused while the last session was torn down: a flap too
            self.mon.pump(max(0.05, 1.0 - (time.monotonic() - t0)))
            if flaps == 3:
                rss.append(self.d.rss_kb())
        assert flaps >= 10, f"only {flaps} flaps in 20 s"
        assert self.withdrawn_at_monitor(pf, 10), "flapper's routes left at the monitor"
        time.sleep(3)       # deferred frees are reclaimed when idle
        self.mon.pump(0.5)
        rss.append(self.d.rss_kb())
        self.fig(f"flapping: {flaps} flaps in 20 s, RSS {rss[0]} kB before, {rss[1]} kB after 3 flaps, "
                 f"{rss[-1]} kB after")
        # under ASan the allocator's quarantine holds freed memory on purpose, so
        # RSS says nothing about leaks there (LeakSanitizer checks those instead)
        if not os.environ.get("RICOCHET_SANITIZED"):
            assert rss[-1] <= rss[1] + 4096, f"RSS grew from {rss[1]} to {rss[-1]} kB over the flaps"
        assert rss[-1] <= rss[0] * 1.5 + 8192, f"RSS {rss[-1]} kB not back near the baseline {rss[0]} kB"

    def t_send_hold(self):
        N = 200000
        stuck = B.Speaker(STUCK, RR, timeout=3, rcvbuf=4096)
        stuck.establish(LOCAL_AS, bgp_id="10.0.1.12")
        feeder = self.establish(FEEDER)
        pf = v4_block(60, N)
        # one attribute set per two routes (MED), so the output (about 7 MB)
        # exceeds what the socket buffers (4 MB send + 8 kB receive) absorb
        base = B.a_origin(0) + B.a_aspath([]) + B.a_nexthop("192.0.2.7") + B.a_localpref(100)
        msgs = [B.update(attrs=base + B.a_med(i), nlri=B.pfx(pf[2 * i]) + B.pfx(pf[2 * i + 1]))
                for i in range(N // 2)]
        msgs = [b"".join(msgs[i:i + 200]) for i in range(0, len(msgs), 200)]
        t0 = time.monotonic()
        for i, m in enumerate(msgs):
            feeder.send(m)
            if i % 20 == 0:
                self.mon.pump(0.0)
        t_fed = time.monotonic() - t0
        want = set(pf)
        drop_at = None
        deadline = time.monotonic() + 60
        conv_at = None
        while time.monotonic() < deadline and (conv_at is None or drop_at is None):
            self.mon.pump(0.3)
            if conv_at is None and want <= self.mon.routes:
                conv_at = time.monotonic() - t0
            if drop_at is None and self.d.state(STUCK) != "Established":
                drop_at = time.monotonic() - t0
        sent8 = self.log_count(f"peer {STUCK} AS{LOCAL_AS}: sending NOTIFICATION 8/0")
        # what reached the stuck client, read now
        got8 = False
        try:
            while True:
                m = stuck.recv_msg(1)
                if m is None:
                    break
                if m.type == B.NOTIFICATION and m.body[0] == 8:
                    got8 = True
        except B.Closed:
            pass
        stuck.close()
        self.fig(f"send hold: {N} routes fed in {t_fed:.1f} s; monitor complete after "
                 f"{conv_at if conv_at is None else round(conv_at, 1)} s; stuck client dropped after "
                 f"{drop_at if drop_at is None else round(drop_at, 1)} s; NOTIFICATION 8 logged {sent8}, "
                 f"received by the client: {got8}")
        assert conv_at is not None, "the monitor never received all routes"
        assert drop_at is not None, "the stuck client was never dropped"
        assert sent8 >= 1, "no NOTIFICATION 8 sent"
        assert drop_at >= 5.0, f"dropped after {drop_at:.1f} s, before its send-hold-time of 5 s"
        assert conv_at < drop_at, (f"the monitor converged only after {conv_at:.1f} s, once the stuck "
                                   f"client was gone ({drop_at:.1f} s)")
        feeder.close()
        assert self.withdrawn_at_monitor(pf, 30), "feeder's routes not withdrawn"

    def run(self, filt):
        self.mon = Monitor()
        tests = [
            ("control socket mode 0600", self.t_ctl_mode),
            ("connection from an unconfigured address closed and logged", self.t_unconfigured_refused),
            ("connection flood does not stop a configured peer", self.t_flood),
            ("peer closing mid-message", self.t_mid_message_close),
            ("TCP reset", self.t_tcp_reset),
            ("hold timer expiry: NOTIFICATION 4/0", self.t_hold_expiry),
            ("max-prefixes, passive peer: warning, Cease/1, restart hold-down", self.t_max_prefixes_passive),
            ("max-prefixes, active peer: no reconnect before restart", self.t_max_prefixes_active),
            ("reconnect backoff of an active peer", self.t_backoff),
            ("peer flapping every second for 20 s", self.t_flapping),
            ("send hold timer (RFC 9687) on a client that stops reading", self.t_send_hold),
        ]
        for name, fn in tests:
            if filt and not re.search(filt, name):
                continue
            t0 = time.monotonic()
            err = None
            try:
                fn()
            except AssertionError as e:
                err = str(e) or "assertion failed"
            except (B.Closed, ConnectionError, TimeoutError, OSError, ValueError) as e:
                err = f"{type(e).__name__}: {e}"
            if not self.d.alive():
                err = (err + "; " if err else "") + "ricochetd died"
            elif self.d.state(MON) != "Established":
                err = (err + "; " if err else "") + "monitor session lost"
                try:
                    self.mon.sp.close()
                    time.sleep(0.5)
                    self.mon = Monitor()
                except Exception:  # noqa: BLE001
                    pass
            self.checks.record(name, err)
            print(f"{'ok' if not err else 'FAIL':4} {name} ({time.monotonic() - t0:.1f} s)"
                  f"{': ' + err if err else ''}", flush=True)
            if not self.d.alive():
                print(self.d.tail())
                break


def main():
    ap = H.arg_parser(verbose=True)
    ap.add_argument("-k", dest="filter")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    H.require(root="port 179", programs=H.built(build, "io/ricochetd"))
    rr = f"asn: {LOCAL_AS}, role: rr-client"
    with H.Run("ricochet-resilience-", keep=a.keep) as run:
        d = Daemon(build, run.root)
        run.at_end(d.stop)
        ls = socket.socket()
        run.at_end(ls.close)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lb = socket.socket()
        run.at_end(lb.close)
        lb.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ACTIVE, 179))
        ls.listen(4)
        lb.bind((BACKOFF, 179))
        lb.listen(4)
        d.start(peers=[f"{{ address: {MON}, {rr}, passive: true }}",
                       f"{{ address: {FEEDER}, {rr}, passive: true }}",
                       f"{{ address: {STUCK}, {rr}, passive: true, send-hold-time: 5 }}",
                       f"{{ address: {MAXP}, {rr}, passive: true, max-prefixes: "
                       f"{{ limit: 100, warning-pct: 80, restart: {PASSIVE_RESTART} }} }}",
                       f"{{ address: {HOLD}, {rr}, passive: true, timers: {{ hold: 3, keepalive: 1 }} }}",
                       f"{{ address: {FLAP}, {rr}, passive: true }}",
                       f"{{ address: {MIDMSG}, {rr}, passive: true }}",
                       f"{{ address: {RESET}, {rr}, passive: true }}",
                       f"{{ address: {ACTIVE}, {rr}, passive: false, max-prefixes: "
                       f"{{ limit: 10, restart: {ACTIVE_RESTART} }}, timers: {{ connect-retry: 1 }} }}",
                       f"{{ address: {LATE}, {rr}, passive: true }}",
                       f"{{ address: {BACKOFF}, {rr}, passive: false, timers: {{ connect-retry: 1 }} }}"],
                ranges=[f"{{ prefix: 127.0.88.128/26, {rr} }}"])
        s = Suite(d, run.checks, a.verbose, ls, lb)
        s.run(a.filter)
        for f in s.figures:
            print("  " + f)
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
