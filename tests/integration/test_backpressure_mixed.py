#!/usr/bin/env python3
"""Backpressure of an update group that mixes an ADD-PATH family (IPv4) and
a family without ADD-PATH (IPv6), with a member that stops reading.

Owns: its own ricochetd on 127.0.34.1 (peers from the range 127.0.34.0/24,
all route-reflector clients, sent 2 paths per prefix where ADD-PATH is
negotiated), two raw feeders (127.0.34.10, .11; bgpspeaker.py) and two raw
monitors (127.0.34.100 stalled, .101 healthy) that ask for ADD-PATH receive
for IPv4 only, so both monitors are one group with ADD-PATH on IPv4 and not
on IPv6.

When such a group pauses (io/reflect.c, "slow readers") the IPv6 changes are
deferred with the IPv4 ones and later sent as a resync sends them (the
current best: announced, or withdrawn).  Steps:
  1. both feeders announce V4 IPv4 and V6 IPv6 prefixes, every path with its
     own MED (so its own UPDATE: enough output to pass the 16 MiB pause
     threshold); feeder 0 is the IPv6 best (LOCAL_PREF 200 against 100);
  2. the stalled monitor reads nothing (a small receive buffer) until the
     group is paused; meanwhile the healthy one reads;
  3. while the group is paused the feeders change a slice of each kind:
     feeder 0 withdraws IPv4 and IPv6 prefixes (the IPv6 best moves to
     feeder 1), feeder 1 re-announces IPv4 prefixes with a new MED and takes
     the IPv6 best of others (LOCAL_PREF 300), and feeder 0 withdraws and
     re-announces some with a new MED (two changes of one prefix while
     deferred);
  4. the stalled monitor reads again.
Checks: the group was paused and took prefixes from its deferred set, nobody
was reset, and both monitors end with exactly the expected table, prefix by
prefix: IPv4 the set of MEDs of the feeders' current paths (each under its
own path id), IPv6 the MED of the current best (nothing stale, nothing
missing, no path for a withdrawn prefix), then stay so.
Single-threaded, every wait bounded; exits 77 when not root or not built.

  python3 tests/integration/test_backpressure_mixed.py --build build [-v] [--keep]
"""

import ipaddress
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402

ADDR = "127.0.34.1"
FEEDERS = ("127.0.34.10", "127.0.34.11")
STALLED, HEALTHY = "127.0.34.100", "127.0.34.101"
AS = 65000
V4, V6 = 150000, 40000              # prefixes per family
K = 5000                            # prefixes per kind of change while paused
NH6 = ("2001:db8:ff::10", "2001:db8:ff::11")


def p4(i):
    return f"{10 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24"


def p6(i):
    return str(ipaddress.IPv6Network(f"2001:db8:1:{i:x}::/64"))


def med_of(f, i, gen=0):
    return (gen * 2 + f) * 1000000 + i


def ann4(f, i, med):
    attrs = B.a_origin() + B.a_aspath() + B.a_nexthop(FEEDERS[f]) + B.a_med(med) + B.a_localpref(100)
    return B.update(attrs=attrs, nlri=B.pfx(p4(i)))


def ann6(f, i, med, lp):
    attrs = (B.a_origin() + B.a_aspath() + B.a_med(med) + B.a_localpref(lp)
             + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, NH6[f], B.pfx(p6(i))))
    return B.update(attrs=attrs)


def wdr4(i):
    return B.update(withdrawn=B.pfx(p4(i)))


def wdr6(i):
    return B.update(attrs=B.a_mp_unreach(B.AFI_IPV6, B.SAFI_UNICAST, B.pfx(p6(i))))


class Table:
    """What a monitor was told: IPv4 (prefix, path id) -> MED, IPv6 prefix -> MED."""

    def __init__(self, sp):
        self.sp = sp
        self.v4 = {}
        self.v6 = {}
        self.updates = 0

    def apply(self, u):
        self.updates += 1
        med = struct.unpack("!I", u.attrs[B.MED][1])[0] if B.MED in u.attrs else None
        for p, pid in u.withdrawn:
            if ":" in p:
                self.v6.pop(p, None)
            else:
                self.v4.pop((p, pid), None)
        for p, pid in u.announced:
            if ":" in p:
                self.v6[p] = med
            else:
                self.v4[(p, pid)] = med

    def pump(self, seconds):
        """Read for up to `seconds` (less when nothing comes)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            m = self.sp.recv_msg(0.05)
            if m is None:
                return
            if m.type == B.UPDATE:
                self.apply(B.Update(m.body, self.sp.addpath_rx))
            elif m.type == B.NOTIFICATION:
                raise B.Closed(f"notification {B.Notification(m.body)}")
            self.sp.received.clear()

    def view(self):
        v4 = {}
        for (p, _), med in self.v4.items():
            v4.setdefault(p, []).append(med)
        return {p: sorted(m) for p, m in v4.items()}, dict(self.v6)


def diff(got, want, what, limit=5):
    bad = [k for k in set(got) | set(want) if got.get(k) != want.get(k)]
    return [f"{what} {k}: got {got.get(k)} want {want.get(k)}" for k in sorted(bad)[:limit]], len(bad)


def drain(sock):
    """Throw away what a feeder was sent (it is a client too), without waiting."""
    t = sock.gettimeout()
    sock.settimeout(0)
    try:
        while sock.recv(1 << 20):
            pass
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        pass
    finally:
        sock.settimeout(t)


def main():
    ap = H.arg_parser(verbose=True)
    a = ap.parse_args()
    d = os.path.abspath(a.build)
    rd, cli = H.built(d, "io/ricochetd", "io/ricochet")
    H.require(root="port 179", programs=(rd, cli))
    with H.Run("ricochet-bp-mixed-", keep=a.keep, verbose=a.verbose) as run:
        sock = os.path.join(run.root, "ctl.sock")
        cfg = os.path.join(run.root, "r.yaml")
        with open(cfg, "w") as f:
            f.write(f"""router-id: {ADDR}
asn: {AS}
listen: [{{ address: {ADDR}, port: 179 }}]
control-socket: {sock}
io-threads: 2
log-level: info
peer-ranges:
  - {{ prefix: 127.0.34.0/24, asn: {AS}, role: rr-client, add-path: {{ send: 2, receive: true }} }}
""")
        proc = run.popen([rd, "-c", cfg], log="ricochetd.log")
        checks = run.checks

        def ctl(*args):
            return H.ricochet_json(cli, sock, *args) or {}

        H.wait_until(lambda: os.path.exists(sock) and ctl("show", "summary"), 10,
                     "ricochetd's control socket")
        mcaps = B.caps_default(AS, addpath=[(B.AFI_IPV4, B.SAFI_UNICAST, 1)])
        stalled = B.Speaker(STALLED, ADDR, rcvbuf=65536)
        healthy = B.Speaker(HEALTHY, ADDR)
        speakers = []
        for i, sp in enumerate((stalled, healthy)):
            speakers.append(sp)
            run.at_end(sp.close)
            sp.establish(AS, hold=240, bgp_id=f"10.0.34.{100 + i}", caps=mcaps)
            sp.addpath_rx = (True, False)
        feeders = []
        for i, addr in enumerate(FEEDERS):
            sp = B.Speaker(addr, ADDR)
            speakers.append(sp)
            run.at_end(sp.close)
            sp.establish(AS, hold=240, bgp_id=f"10.0.34.{10 + i}", caps=B.caps_default(AS))
            feeders.append(sp)
        ts, th = Table(stalled), Table(healthy)
        last_ka = time.monotonic()

        def keepalives(force=False):
            nonlocal last_ka
            if force or time.monotonic() - last_ka > 20:
                for sp in speakers:
                    sp.send(B.keepalive())
                last_ka = time.monotonic()

        def send(f, msgs):
            """Feeder f sends msgs in pieces; the healthy monitor reads meanwhile."""
            for k in range(0, len(msgs), 4000):
                feeders[f].send(b"".join(msgs[k:k + 4000]))
                th.pump(0.01)
                for fd in feeders:
                    drain(fd.sock)
                keepalives()

        # 1. the table; feeder 0 is the IPv6 best
        t0 = time.monotonic()
        for f in (0, 1):
            send(f, [ann4(f, i, med_of(f, i)) for i in range(V4)]
                 + [ann6(f, i, med_of(f, i), 200 if f == 0 else 100) for i in range(V6)])
        # 2. wait for the pause (the stalled monitor reads nothing)
        paused = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            th.pump(0.2)
            for fd in feeders:
                drain(fd.sock)
            keepalives()
            if (ctl("show", "summary").get("addpath_group_pauses") or 0) >= 1:
                paused = True
                break
        summ = ctl("show", "summary")
        print(f"   paused {paused} after {time.monotonic() - t0:.1f} s; deferred now "
              f"{summ.get('addpath_deferred')}", flush=True)
        checks.check("the mixed group pauses while a member does not read", paused, str(summ))

        # 3. changes while paused: withdrawals, new attributes, best moves,
        # two changes of one prefix
        w4 = range(0, K)                 # feeder 0 withdraws (IPv4: feeder 1's path stays)
        m4 = range(K, 2 * K)             # feeder 1, new MED
        r4 = range(2 * K, 3 * K)         # feeder 0: withdrawn, then back with a new MED
        w6 = range(0, K)                 # feeder 0 (the best) withdraws: feeder 1's is best
        b6 = range(K, 2 * K)             # feeder 1 takes the best (LOCAL_PREF 300)
        r6 = range(2 * K, 3 * K)         # feeder 0: withdrawn, then back with a new MED
        send(0, [wdr4(i) for i in w4] + [wdr6(i) for i in w6]
             + [wdr4(i) for i in r4] + [wdr6(i) for i in r6])
        send(1, [ann4(1, i, med_of(1, i, 1)) for i in m4] + [ann6(1, i, med_of(1, i, 1), 300) for i in b6])
        time.sleep(0.5)
        send(0, [ann4(0, i, med_of(0, i, 1)) for i in r4] + [ann6(0, i, med_of(0, i, 1), 200) for i in r6])
        time.sleep(1)
        summ = ctl("show", "summary")
        print(f"   changes sent; still paused: deferred now {summ.get('addpath_deferred')}", flush=True)

        want4 = {}
        for i in range(V4):
            meds = []
            if i not in w4:
                meds.append(med_of(0, i, 1 if i in r4 else 0))
            meds.append(med_of(1, i, 1 if i in m4 else 0))
            want4[p4(i)] = sorted(meds)
        want6 = {}
        for i in range(V6):
            if i in w6:
                want6[p6(i)] = med_of(1, i)
            elif i in b6:
                want6[p6(i)] = med_of(1, i, 1)
            else:
                want6[p6(i)] = med_of(0, i, 1 if i in r6 else 0)

        # 4. the stalled monitor reads again
        def exact(t):
            v4, v6 = t.view()
            return v4 == want4 and v6 == want6

        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not (exact(ts) and exact(th)):
            ts.pump(0.5)
            th.pump(0.2)
            for fd in feeders:
                drain(fd.sock)
            keepalives()
        done = time.monotonic() - t0
        for _ in range(10):              # and it stays so: nothing late, nothing stale
            ts.pump(0.2)
            th.pump(0.1)
            keepalives()
        summ = ctl("show", "summary")
        print(f"   both monitors exact after {done:.1f} s (UPDATEs read {ts.updates} / {th.updates}); "
              f"group pauses {summ.get('addpath_group_pauses')}, deferred entries taken "
              f"{summ.get('addpath_deferred_sent')}, reset {summ.get('addpath_laggards_reset')}",
              flush=True)
        for name, t in (("stalled", ts), ("healthy", th)):
            v4, v6 = t.view()
            e4, n4 = diff(v4, want4, "IPv4")
            e6, n6 = diff(v6, want6, "IPv6")
            checks.check(f"the {name} monitor holds exactly the IPv4 paths (ADD-PATH) of every prefix",
                         n4 == 0, f"{n4} prefixes differ: " + "; ".join(e4))
            checks.check(f"the {name} monitor holds exactly the IPv6 best of every prefix",
                         n6 == 0, f"{n6} prefixes differ: " + "; ".join(e6))
        checks.check("the deferred set was used and is empty, nobody was reset",
                     (summ.get("addpath_deferred_sent") or 0) > 0 and summ.get("addpath_deferred") == 0
                     and summ.get("addpath_laggards_reset") == 0, str(summ))
        checks.check("ricochetd still running", proc.poll() is None)
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
