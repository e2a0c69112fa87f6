#!/usr/bin/env python3
"""Hostile and malformed input against a running ricochetd, end to end.

Owns: starting its own ricochetd (on 127.0.88.1, clients in 127.0.88.0/24),
a healthy monitor client (iBGP rr-client 127.0.88.10), and one fresh
attacker session per case.  For each case the attacker (iBGP rr-client from
127.0.88.64/26, or eBGP rs-client: the configured peer 127.0.88.20 or the
range 127.0.88.128/26) first announces a valid route P (next hop
192.0.2.1), waits until the monitor has it, then sends the malformed
message.  The case then checks:
  - the NOTIFICATION code/subcode (and data where RFC 4271 s6 defines it),
    or that none came;
  - the session state afterwards (`ricochet --json show peers`);
  - P at the monitor: absent (withdrawn by treat-as-withdraw or by the
    session reset), the new version (next hop 192.0.2.2) with or without
    some attribute, or still the old one;
  - the daemon still runs and the monitor is still Established.
Expected outcomes are RFC 4271 s6 and RFC 7606; where the parser had a
choice the choice documented at the top of core/update.c / core/msg.c is
what the case expects (and says so in its note).

Single-threaded; every wait bounded.  Skips (77) when not root or when
ricochetd is not built.  Python 3 stdlib only.

  python3 tests/integration/test_malformed.py --build build [-k FILTER] [-v] [--keep]
"""

import os
import re
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402

RR = "127.0.88.1"
MON = "127.0.88.10"
EBGP_PEER = "127.0.88.20"
LOCAL_AS, PEER_AS = 65000, 65001
NH_OLD, NH_NEW = "192.0.2.1", "192.0.2.2"
NH6_OLD, NH6_NEW = "2001:db8::1", "2001:db8::2"


# ------------------------------------------------------------------ daemon

class Daemon:
    def __init__(self, build, root, extra_yaml="", io_threads=2, addr=RR):
        self.bin = os.path.join(build, "io", "ricochetd")
        self.cli = os.path.join(build, "io", "ricochet")
        self.root = root
        self.sock = os.path.join(root, "ricochet.sock")
        self.conf = os.path.join(root, "ricochet.yaml")
        self.log = os.path.join(root, "ricochetd.log")
        self.extra_yaml = extra_yaml
        self.io_threads = io_threads
        self.addr = addr
        self.proc = None

    def start(self, peers, ranges):
        lines = [f"router-id: {self.addr}", f"asn: {LOCAL_AS}", f"cluster-id: {self.addr}",
                 f"listen: [{{ address: {self.addr}, port: 179 }}]",
                 f"control-socket: {self.sock}", f"io-threads: {self.io_threads}"]
        if self.extra_yaml:
            lines.append(self.extra_yaml)
        lines.append("peers:")
        lines += ["  - " + p for p in peers]
        lines.append("peer-ranges:")
        lines += ["  - " + r for r in ranges]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ricochetd exited at start:\n" + self.tail())
            if os.path.exists(self.sock) and self.peers() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("ricochetd did not come up:\n" + self.tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.logf.close()

    def peers(self):
        ps = H.ricochet_json(self.cli, self.sock, "show", "peers")
        try:
            return {e["address"]: e for e in ps} if ps is not None else None
        except (KeyError, TypeError):
            return None

    def peer(self, addr):
        """addr's `show peers` entry ({} when not there)."""
        return (self.peers() or {}).get(addr) or {}

    def state(self, addr):
        ps = self.peers() or {}
        e = ps.get(addr)
        return e["state"] if e else None

    def wait_state(self, addr, pred, timeout=3.0):
        deadline = time.monotonic() + timeout
        st = None
        while True:
            st = self.state(addr)
            if pred(st):
                return st
            if time.monotonic() >= deadline:
                return st
            time.sleep(0.05)

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def tail(self, n=20):
        return H.tail_file(self.log, n)

    def log_lines(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace").splitlines()


# ------------------------------------------------------------------ case context

class Ctx:
    """What a case's message builder sees."""

    def __init__(self, kind, idx, as4=True):
        self.kind = kind
        self.ebgp = kind == "ebgp"
        self.asn = PEER_AS if self.ebgp else LOCAL_AS
        self.as4 = as4
        self.idx = idx
        self.P = f"10.{1 + idx // 250}.{idx % 250}.0/24"
        self.S = f"10.{100 + idx // 250}.{idx % 250}.0/24"     # sentinel
        self.P6 = f"2001:db8:{idx:x}::/48"

    def aspath_list(self):
        return [self.asn] if self.ebgp else []

    def attrs(self, over=None, extra=(), nh=NH_NEW, v6=False):
        """The base attributes of a valid UPDATE with some replaced (type ->
        raw attribute bytes, or None to drop it) and extra ones appended."""
        over = over or {}
        asz = 4 if self.as4 else 2
        base = [(B.ORIGIN, B.a_origin(0)),
                (B.AS_PATH, B.a_aspath(self.aspath_list(), asz)),
                (B.NEXT_HOP, None if v6 else B.a_nexthop(nh))]
        if not self.ebgp:
            base.append((B.LOCAL_PREF, B.a_localpref(100)))
        out = b""
        for t, a in base:
            a = over.get(t, a)
            if a is not None:
                out += a
        for t, a in over.items():
            if t not in (x[0] for x in base) and a is not None:
                out += a
        return out + b"".join(extra)

    def upd(self, over=None, extra=(), nlri=None, nh=NH_NEW, withdrawn=b"", **kw):
        return B.update(withdrawn=withdrawn, attrs=self.attrs(over, extra, nh),
                        nlri=B.pfx(self.P) if nlri is None else nlri, **kw)

    def mp6(self, nh=NH6_NEW, nlri=None):
        return B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, nh, B.pfx(self.P6) if nlri is None else nlri)

    def upd6(self, over=None, extra=(), mp=None, nh=NH6_NEW):
        a = self.attrs(over, extra, v6=True) + (mp if mp is not None else self.mp6(nh))
        return B.update(attrs=a)


class Case:
    def __init__(self, name, build, kinds=("ibgp", "ebgp"), phase="est", notif=None, data=None,
                 route=None, check=None, closed=None, caps=None, open_bytes=None, fam=4,
                 as4=True, note="", hold=90):
        self.name = name
        # ctx -> bytes or [bytes]; default: the valid UPDATE with the new next hop
        self.build = build if build is not None else (lambda c: c.upd())
        self.kinds = kinds
        self.phase = phase          # est | pre (first bytes on the wire) | confirm (after OPEN)
        self.notif = notif          # (code, subcode) | None
        self.data = data            # bytes | ctx -> bytes | callable(ctx, data) -> bool | None
        self.route = route          # None | absent | new | old
        self.check = check          # (ctx, Update) -> str|None  (error text)
        self.closed = closed        # session closed? default: notif is not None
        self.caps = caps            # ctx -> caps list
        self.open_bytes = open_bytes  # ctx -> OPEN bytes (est phase)
        self.fam = fam
        self.as4 = as4
        self.note = note
        self.hold = hold


def upd_err_data(attr_bytes):
    """RFC 4271 s6.3: the data of most UPDATE errors is the erroneous attribute."""
    return lambda ctx: attr_bytes(ctx)


def has_attr(t, flags=None):
    def chk(ctx, u):
        if t not in u.attrs:
            return f"attribute {t} missing at the monitor"
        if flags is not None and u.attrs[t][0] & 0xF0 & ~B.F_EXT != flags:
            return f"attribute {t} flags {u.attrs[t][0]:#x}, want {flags:#x}"
        return None
    return chk


def lacks_attr(t):
    return lambda ctx, u: f"attribute {t} should have been stripped" if t in u.attrs else None


def attr_value(t, want):
    def chk(ctx, u):
        if t not in u.attrs:
            return f"attribute {t} missing"
        w = want(ctx) if callable(want) else want
        return None if u.attrs[t][1] == w else f"attribute {t} = {u.attrs[t][1][:16].hex()}, want {w[:16].hex()}"
    return chk


def all_of(*chks):
    def chk(ctx, u):
        for c in chks:
            e = c(ctx, u)
            if e:
                return e
        return None
    return chk


# ------------------------------------------------------------------ the cases

def build_cases():
    C = []
    add = C.append
    K = B.KEEPALIVE
    ibgp, ebgp = ("ibgp",), ("ebgp",)

    # ---- message header (RFC 4271 s6.1)
    add(Case("hdr: marker not all ones", lambda c: b"\x00" * 16 + struct.pack("!HB", 19, K),
             notif=(1, 1), data=b""))
    add(Case("hdr: marker one bit off", lambda c: b"\xff" * 15 + b"\xfe" + struct.pack("!HB", 19, K),
             kinds=ibgp, notif=(1, 1), data=b""))
    add(Case("hdr: marker bad in OpenSent", lambda c: b"\x00" * 16 + struct.pack("!HB", 19, K),
             kinds=ibgp, phase="pre", notif=(1, 1), data=b""))
    add(Case("hdr: length 18", lambda c: B.keepalive(length=18), notif=(1, 2), data=b"\x00\x12"))
    add(Case("hdr: length 0", lambda c: B.keepalive(length=0), kinds=ibgp, notif=(1, 2), data=b"\x00\x00"))
    add(Case("hdr: length 4097 without extended messages",
             lambda c: B.header(B.UPDATE, b"\x00" * 4078), notif=(1, 2), data=b"\x10\x01"))
    add(Case("hdr: length 65535 without extended messages",
             lambda c: B.header(B.UPDATE, b"", length=65535), kinds=ibgp, notif=(1, 2), data=b"\xff\xff"))
    add(Case("hdr: KEEPALIVE of 20 octets", lambda c: B.header(K, b"\x00"), notif=(1, 2), data=b"\x00\x14"))
    add(Case("hdr: UPDATE of 22 octets", lambda c: B.header(B.UPDATE, b"\x00\x00\x00"), notif=(1, 2),
             data=b"\x00\x16"))
    add(Case("hdr: OPEN of 28 octets", lambda c: B.header(B.OPEN, b"\x04" + b"\x00" * 8), kinds=ibgp,
             notif=(1, 2), data=b"\x00\x1c"))
    add(Case("hdr: NOTIFICATION of 20 octets", lambda c: B.header(B.NOTIFICATION, b"\x06"), kinds=ibgp,
             notif=(1, 2), data=b"\x00\x14"))
    add(Case("hdr: ROUTE-REFRESH of 22 octets", lambda c: B.header(B.ROUTE_REFRESH, b"\x00\x01\x00"),
             kinds=ibgp, notif=(1, 2), data=b"\x00\x16"))
    add(Case("hdr: OPEN longer than 4096 in OpenSent", lambda c: B.header(B.OPEN, b"\x04" + b"\x00" * 4200),
             kinds=ibgp, phase="pre", notif=(1, 2), data=struct.pack("!H", 19 + 4201)))
    add(Case("hdr: type 0", lambda c: B.header(0, b""), notif=(1, 3), data=b"\x00"))
    add(Case("hdr: type 6", lambda c: B.header(6, b""), kinds=ibgp, notif=(1, 3), data=b"\x06"))
    add(Case("hdr: type 255", lambda c: B.header(255, b"\x00" * 10), kinds=ebgp, notif=(1, 3), data=b"\xff"))
    add(Case("hdr: UPDATE dribbled one octet per segment", lambda c: [bytes([x]) for x in c.upd()],
             route="new", note="valid; framing across 50+ reads"))
    add(Case("hdr: three messages in one segment", lambda c: [B.keepalive() + c.upd() + B.keepalive()],
             kinds=ibgp, route="new"))

    # ---- OPEN (RFC 4271 s6.2, RFC 5492, RFC 9072), our OPEN replaced
    def op(**kw):
        def f(c):
            kw2 = dict(kw)
            asn = kw2.pop("asn", c.asn)
            caps = kw2.pop("caps", None)
            return B.open_msg(asn, caps=B.caps_default(c.asn) if caps is None else caps(c), **kw2)
        return f
    add(Case("open: version 3", op(version=3), phase="pre", notif=(2, 1), data=b"\x00\x04"))
    add(Case("open: version 5", op(version=5), kinds=ebgp, phase="pre", notif=(2, 1), data=b"\x00\x04"))
    add(Case("open: my AS 0", op(asn=0, caps=lambda c: [B.cap_mp(1)]), phase="pre", notif=(2, 2), data=b""))
    add(Case("open: AS not the configured one", op(asn=64999, caps=lambda c: B.caps_default(64999)),
             phase="pre", notif=(2, 2), data=b""))
    add(Case("open: AS4 capability carries AS 0", op(caps=lambda c: [B.cap_mp(1), B.cap_as4(0)]),
             kinds=ibgp, phase="pre", notif=(2, 2)))
    add(Case("open: AS4 capability disagrees with configured AS",
             op(caps=lambda c: [B.cap_mp(1), B.cap_as4(4200000000)]), kinds=ebgp, phase="pre", notif=(2, 2)))
    add(Case("open: hold time 1", op(hold=1), phase="pre", notif=(2, 6), data=b""))
    add(Case("open: hold time 2", op(hold=2), kinds=ibgp, phase="pre", notif=(2, 6), data=b""))
    add(Case("open: hold time 0 (no keepalives) accepted", None, kinds=ibgp, hold=0, route="new"))
    add(Case("open: hold time 3 accepted", None, kinds=ebgp, hold=3, route="new"))
    add(Case("open: BGP identifier 0", op(bgp_id="0.0.0.0"), phase="pre", notif=(2, 3), data=b""))
    add(Case("open: BGP identifier equal to ours (iBGP)", op(bgp_id=RR), kinds=ibgp, phase="pre",
             notif=(2, 3), data=b""))
    add(Case("open: unsupported optional parameter type 1", op(opt_params=b"\x01\x02\x00\x00"),
             phase="pre", notif=(2, 4), data=b""))
    add(Case("open: optional parameter overruns the parameters",
             op(opt_params=bytes([2, 10]) + B.cap_mp(1)), kinds=ibgp, phase="pre", notif=(2, 0),
             note="RFC 4271 names no subcode; msg.c sends 2/0"))
    add(Case("open: Optional Parameters Length beyond the message",
             op(opt_params=bytes([2, 6]) + B.cap_mp(1), optlen=20), phase="pre", notif=(2, 0)))
    add(Case("open: Optional Parameters Length short of the message",
             op(opt_params=bytes([2, 6]) + B.cap_mp(1) + b"\x00\x00", optlen=8), kinds=ibgp, phase="pre",
             notif=(2, 0)))
    add(Case("open: optional parameter header truncated", op(opt_params=b"\x02"), kinds=ibgp, phase="pre",
             notif=(2, 0)))
    add(Case("open: capability overruns its parameter",
             op(opt_params=bytes([2, 4, 1, 20, 0, 1])), phase="pre", notif=(2, 0)))
    add(Case("open: capability header truncated", op(opt_params=bytes([2, 1, 1])), kinds=ibgp,
             phase="pre", notif=(2, 0)))
    add(Case("open: MP capability of length 3", op(caps=lambda c: [B.cap(B.CAP_MP, b"\x00\x01\x01")]),
             kinds=ibgp, phase="pre", notif=(2, 0)))
    add(Case("open: AS4 capability of length 2", op(caps=lambda c: [B.cap_mp(1), B.cap(B.CAP_AS4, b"\xfd\xe8")]),
             kinds=ibgp, phase="pre", notif=(2, 0)))
    add(Case("open: ADD-PATH capability of length 5",
             op(caps=lambda c: [B.cap_mp(1), B.cap(B.CAP_ADDPATH, b"\x00\x01\x01\x03\x00")]),
             kinds=ibgp, phase="pre", notif=(2, 0)))
    add(Case("open: graceful restart capability of length 1",
             op(caps=lambda c: [B.cap_mp(1), B.cap(B.CAP_GR, b"\x00")]), kinds=ibgp, phase="pre",
             notif=(2, 0)))
    add(Case("open: no address family in common",
             op(caps=lambda c: [B.cap_mp(25, 70), B.cap_as4(c.asn)]), phase="pre", notif=(2, 7),
             note="RFC 5492 s3: Unsupported Capability"))
    add(Case("open: unknown capability 200 accepted", None, kinds=ibgp, route="new",
             open_bytes=lambda c: B.open_msg(c.asn, caps=B.caps_default(c.asn) + [B.cap(200, b"xyz")])))
    add(Case("open: 255 octets of optional parameters (non-extended) accepted", None, kinds=ebgp,
             route="new", open_bytes=lambda c: B.open_msg(
                 c.asn, opt_params=bytes([2, 253]) + b"".join(B.caps_default(c.asn))
                 + B.cap(201, b"\x00" * (253 - len(b"".join(B.caps_default(c.asn))) - 2)))))
    add(Case("open: RFC 9072 extended optional parameters accepted", None, route="new",
             open_bytes=lambda c: B.open_msg(c.asn, caps=B.caps_default(c.asn), extended=True)))
    add(Case("open: RFC 9072 extended, 600 octets of capabilities accepted", None, kinds=ibgp, route="new",
             open_bytes=lambda c: B.open_msg(c.asn, extended=True, caps=B.caps_default(c.asn)
                                             + [B.cap(202, b"\x00" * 250)] * 2 + [B.cap(203, b"\x01" * 90)])))
    add(Case("open: RFC 9072 extended length truncated",
             lambda c: B.header(B.OPEN, struct.pack("!BHH4s", 4, c.asn, 90, bytes([10, 0, 0, 9])) + b"\xff\xff"),
             phase="pre", notif=(2, 0)))
    add(Case("open: RFC 9072 extended length disagrees with the message",
             lambda c: B.header(B.OPEN, struct.pack("!BHH4s", 4, c.asn, 90, bytes([10, 0, 0, 9]))
                                + b"\xff\xff\x00\x40" + b"\x02\x00\x06" + B.cap_mp(1)),
             kinds=ibgp, phase="pre", notif=(2, 0)))
    add(Case("open: RFC 9072 parameter length overruns",
             lambda c: B.header(B.OPEN, struct.pack("!BHH4s", 4, c.asn, 90, bytes([10, 0, 0, 9]))
                                + b"\xff\xff\x00\x09" + b"\x02\x01\x00" + B.cap_mp(1)),
             phase="pre", notif=(2, 0)))
    add(Case("open: RFC 9072 parameter header truncated",
             lambda c: B.header(B.OPEN, struct.pack("!BHH4s", 4, c.asn, 90, bytes([10, 0, 0, 9]))
                                + b"\xff\xff\x00\x02" + b"\x02\x00"),
             kinds=ibgp, phase="pre", notif=(2, 0)))
    add(Case("open: RFC 9072 capability overruns the 16-bit parameter",
             lambda c: B.header(B.OPEN, struct.pack("!BHH4s", 4, c.asn, 90, bytes([10, 0, 0, 9]))
                                + b"\xff\xff\x00\x07" + b"\x02\x00\x04" + bytes([1, 9, 0, 1])),
             kinds=ebgp, phase="pre", notif=(2, 0)))

    # ---- messages in the wrong FSM state (RFC 4271 s8, RFC 6608 subcodes)
    add(Case("fsm: UPDATE in OpenSent", lambda c: c.upd(), phase="pre", notif=(5, 1)))
    add(Case("fsm: KEEPALIVE in OpenSent", lambda c: B.keepalive(), kinds=ibgp, phase="pre", notif=(5, 1)))
    add(Case("fsm: ROUTE-REFRESH in OpenSent", lambda c: B.route_refresh(), kinds=ibgp, phase="pre",
             notif=(5, 1)))
    add(Case("fsm: UPDATE in OpenConfirm", lambda c: c.upd(), phase="confirm", notif=(5, 2)))
    add(Case("fsm: second OPEN in OpenConfirm", lambda c: B.open_msg(c.asn, caps=B.caps_default(c.asn)),
             kinds=ibgp, phase="confirm", notif=(5, 2)))
    add(Case("fsm: OPEN in Established", lambda c: B.open_msg(c.asn, caps=B.caps_default(c.asn)),
             notif=(5, 3), route="absent"))
    add(Case("fsm: NOTIFICATION in OpenSent closes silently", lambda c: B.notification(6, 2), kinds=ibgp,
             phase="pre", notif=None, closed=True))
    add(Case("fsm: NOTIFICATION in OpenConfirm closes silently", lambda c: B.notification(6, 2), kinds=ebgp,
             phase="confirm", notif=None, closed=True))

    # ---- ROUTE-REFRESH (RFC 7313 s5)
    add(Case("rr: bad length (extra octets)", lambda c: B.route_refresh(extra=b"\x00\x00\x00"), kinds=ibgp,
             notif=(7, 1), data=lambda c: B.route_refresh(extra=b"\x00\x00\x00"), route="absent"))
    add(Case("rr: family not negotiated ignored", lambda c: B.route_refresh(afi=25, safi=70), kinds=ebgp,
             route="old"))
    add(Case("rr: unknown subtype ignored", lambda c: B.route_refresh(subtype=7), kinds=ibgp, route="old"))

    # ---- NOTIFICATION with odd data: session closed, no answer, routes withdrawn
    add(Case("notif: Cease without data", lambda c: B.notification(6, 2), notif=None, closed=True,
             route="absent"))
    add(Case("notif: 4000 octets of data", lambda c: B.notification(6, 4, b"\xaa" * 4000), kinds=ibgp,
             notif=None, closed=True, route="absent"))
    add(Case("notif: unknown code 0 and 99", lambda c: B.notification(99, 200, b"\x01"), kinds=ebgp,
             notif=None, closed=True, route="absent"))
    add(Case("notif: shutdown communication length overruns (RFC 9003)",
             lambda c: B.notification(6, 2, b"\xc8abc"), kinds=ibgp, notif=None, closed=True, route="absent"))
    add(Case("notif: shutdown communication not UTF-8",
             lambda c: B.notification(6, 4, b"\x04\xff\xfe\xc0\x80"), kinds=ebgp, notif=None, closed=True,
             route="absent"))
    add(Case("notif: version error with odd data", lambda c: B.notification(2, 1, b"\x00"), kinds=ibgp,
             notif=None, closed=True, route="absent"))

    # ---- UPDATE length arithmetic (RFC 4271 s6.3 / RFC 7606 s5)
    def raw_upd(wl, wd, al, at, nl=b""):
        return B.header(B.UPDATE, struct.pack("!H", wl) + wd + struct.pack("!H", al) + at + nl)
    add(Case("upd: Withdrawn Routes Length overruns the message", lambda c: raw_upd(40, b"", 0, b""),
             notif=(3, 1), data=b"", route="absent"))
    add(Case("upd: Withdrawn Routes Length 65535", lambda c: raw_upd(0xFFFF, b"\x00" * 6, 0, b""),
             kinds=ibgp, notif=(3, 1), route="absent"))
    add(Case("upd: Total Path Attribute Length overruns the message",
             lambda c: raw_upd(0, b"", 200, c.attrs()), notif=(3, 1), data=b"", route="absent"))
    add(Case("upd: Total Path Attribute Length 1 short (attribute framing lost)",
             lambda c: raw_upd(0, b"", len(c.attrs()) - 1, c.attrs(), B.pfx(c.P)), kinds=ibgp,
             notif=(3, 10), route="absent",
             note="the last attribute octet becomes NLRI: 3/10 wins over treat-as-withdraw (RFC 7606 s3 j)"))
    add(Case("upd: Total Path Attribute Length 0 with NLRI (no attributes at all)",
             lambda c: raw_upd(0, b"", 0, b"", B.pfx(c.P)), route="absent",
             note="RFC 7606 s3 d: missing mandatory attributes, treat-as-withdraw"))
    add(Case("upd: attribute length overruns the attribute field",
             lambda c: c.upd(extra=[bytes([B.F_OT, B.COMMUNITIES, 40]) + b"\x00" * 8]), route="absent",
             note="RFC 7606 s4: treat-as-withdraw"))
    add(Case("upd: attribute header truncated (2 octets left)",
             lambda c: c.upd(extra=[bytes([B.F_OT, B.COMMUNITIES])]), kinds=ibgp, route="absent"))
    add(Case("upd: extended-length attribute header truncated",
             lambda c: c.upd(extra=[bytes([B.F_OT | B.F_EXT, B.COMMUNITIES, 0])]), kinds=ebgp, route="absent"))
    add(Case("upd: Withdrawn Routes prefix length 33", lambda c: c.upd(withdrawn=b"\x21\x0a\x00\x00\x00\x00"),
             notif=(3, 10), data=b"", route="absent"))
    add(Case("upd: Withdrawn Routes prefix overruns the field", lambda c: c.upd(withdrawn=b"\x18\x0a\x00"),
             kinds=ibgp, notif=(3, 10), route="absent"))
    add(Case("upd: NLRI prefix length 33", lambda c: c.upd(nlri=b"\x21" + b"\x0a" * 5), notif=(3, 10),
             data=b"", route="absent"))
    add(Case("upd: NLRI last prefix truncated", lambda c: c.upd(nlri=B.pfx(c.P) + b"\x18\x0a"), kinds=ebgp,
             notif=(3, 10), route="absent"))
    add(Case("upd: NLRI prefix length 255", lambda c: c.upd(nlri=B.pfx(c.P) + b"\xff"), kinds=ibgp,
             notif=(3, 10), route="absent"))
    add(Case("upd: End-of-RIB (23-octet UPDATE) changes nothing", lambda c: B.update(), kinds=ebgp,
             route="old"))
    add(Case("upd: withdraw of never-announced prefixes (4000 octets)",
             lambda c: B.update(withdrawn=b"".join(B.pfx(f"10.250.{i // 256}.{i % 256}/32") for i in range(800))),
             kinds=ibgp, route="old"))

    # ---- ORIGIN (RFC 7606 s7.1)
    add(Case("ORIGIN: optional flag set", lambda c: c.upd({B.ORIGIN: B.a_origin(0, B.F_OT)}), route="absent"))
    add(Case("ORIGIN: length 2", lambda c: c.upd({B.ORIGIN: B.attr(B.F_WK, B.ORIGIN, b"\x00\x00")}),
             route="absent"))
    add(Case("ORIGIN: length 0", lambda c: c.upd({B.ORIGIN: B.attr(B.F_WK, B.ORIGIN, b"")}), kinds=ibgp,
             route="absent"))
    add(Case("ORIGIN: undefined value 3", lambda c: c.upd({B.ORIGIN: B.a_origin(3)}), route="absent"))
    add(Case("ORIGIN: missing", lambda c: c.upd({B.ORIGIN: None}), route="absent"))
    add(Case("ORIGIN: extended-length encoding accepted",
             lambda c: c.upd({B.ORIGIN: B.attr(B.F_WK | B.F_EXT, B.ORIGIN, b"\x01")}), kinds=ibgp,
             route="new", check=attr_value(B.ORIGIN, b"\x01")))
    add(Case("ORIGIN: Partial bit on a well-known attribute tolerated",
             lambda c: c.upd({B.ORIGIN: B.a_origin(2, B.F_WK | B.F_PART)}), kinds=ebgp, route="new",
             check=attr_value(B.ORIGIN, b"\x02"), note="RFC 7606 s3 c looks at O and T only"))
    add(Case("ORIGIN: duplicate, first kept",
             lambda c: c.upd({B.ORIGIN: B.a_origin(1) + B.a_origin(2)}), route="new",
             check=attr_value(B.ORIGIN, b"\x01"), note="RFC 7606 s3 g"))

    # ---- AS_PATH (RFC 7606 s7.2, RFC 4271 s6.3)
    def asp(raw, flags=B.F_WK):
        return lambda c: c.upd({B.AS_PATH: B.attr(flags, B.AS_PATH, raw(c) if callable(raw) else raw)})
    add(Case("AS_PATH: optional flag set", asp(lambda c: B.as_path_value(c.aspath_list()), B.F_OT),
             route="absent"))
    add(Case("AS_PATH: segment type 0", asp(lambda c: bytes([0, 1]) + struct.pack("!I", c.asn)),
             route="absent"))
    add(Case("AS_PATH: segment type 5", asp(lambda c: bytes([5, 1]) + struct.pack("!I", c.asn)), kinds=ibgp,
             route="absent"))
    add(Case("AS_PATH: zero-length segment", asp(lambda c: B.as_path_value([c.asn]) + bytes([2, 0])),
             route="absent"))
    add(Case("AS_PATH: segment overruns the attribute", asp(lambda c: bytes([2, 3]) + struct.pack("!I", c.asn)),
             route="absent"))
    add(Case("AS_PATH: one trailing octet", asp(lambda c: B.as_path_value([c.asn]) + b"\x02"), kinds=ebgp,
             route="absent"))
    add(Case("AS_PATH: 2-octet encoding on a 4-octet session",
             asp(lambda c: bytes([2, 3]) + struct.pack("!HHH", c.asn, 1, 2)), kinds=ibgp, route="absent"))
    add(Case("AS_PATH: confederation segment from an external peer",
             asp(lambda c: bytes([3, 1]) + struct.pack("!I", 64512) + B.as_path_value([c.asn])), kinds=ebgp,
             route="absent"))
    add(Case("AS_PATH: confederation segment from an internal peer accepted",
             asp(lambda c: bytes([3, 1]) + struct.pack("!I", 64512)), kinds=ibgp, route="new"))
    add(Case("AS_PATH: missing", lambda c: c.upd({B.AS_PATH: None}), route="absent"))
    add(Case("AS_PATH: first AS not the peer's accepted from a route-server client",
             asp(lambda c: B.as_path_value([64999, c.asn])), kinds=ebgp, route="new",
             note="RFC 7947 s2.2: route servers skip the first-AS check"))
    add(Case("AS_PATH: 1000 ASes (4 segments) in a 4096-octet UPDATE",
             asp(lambda c: B.as_path_value(c.aspath_list() + list(range(1, 1000)))), route="new",
             check=lambda c, u: None if len(u.as_path()) >= 999 else f"AS_PATH length {len(u.as_path())}"))
    add(Case("AS_PATH: 600 one-AS segments", asp(lambda c: b"".join(B.as_path_value([64000 + i % 100])
                                                                   for i in range(600))),
             kinds=ibgp, route="new"))

    # ---- NEXT_HOP (RFC 7606 s7.3, RFC 4271 s6.3)
    add(Case("NEXT_HOP: optional flag set", lambda c: c.upd({B.NEXT_HOP: B.a_nexthop(NH_NEW, B.F_OT)}),
             route="absent"))
    add(Case("NEXT_HOP: length 3", lambda c: c.upd({B.NEXT_HOP: B.attr(B.F_WK, B.NEXT_HOP, b"\xc0\x00\x02")}),
             route="absent"))
    add(Case("NEXT_HOP: length 16", lambda c: c.upd({B.NEXT_HOP: B.attr(B.F_WK, B.NEXT_HOP, b"\x20" * 16)}),
             kinds=ebgp, route="absent"))
    add(Case("NEXT_HOP: 0.0.0.0", lambda c: c.upd({B.NEXT_HOP: B.a_nexthop("0.0.0.0")}), route="absent"))
    add(Case("NEXT_HOP: 255.255.255.255", lambda c: c.upd({B.NEXT_HOP: B.a_nexthop("255.255.255.255")}),
             kinds=ibgp, route="absent"))
    add(Case("NEXT_HOP: multicast 224.0.0.5", lambda c: c.upd({B.NEXT_HOP: B.a_nexthop("224.0.0.5")}),
             kinds=ebgp, route="absent"))
    add(Case("NEXT_HOP: missing with IPv4 NLRI", lambda c: c.upd({B.NEXT_HOP: None}), route="absent"))

    # ---- MULTI_EXIT_DISC (s7.4), LOCAL_PREF (s7.5)
    add(Case("MED: well-known flags", lambda c: c.upd(extra=[B.a_med(5, B.F_WK)]), route="absent"))
    add(Case("MED: length 3", lambda c: c.upd(extra=[B.attr(B.F_ON, B.MED, b"\x00\x00\x05")]), route="absent"))
    add(Case("MED: carried unchanged", lambda c: c.upd(extra=[B.a_med(77)]), kinds=ibgp, route="new",
             check=attr_value(B.MED, struct.pack("!I", 77))))
    add(Case("LOCAL_PREF: optional flags", lambda c: c.upd({B.LOCAL_PREF: B.a_localpref(100, B.F_OT)}),
             kinds=ibgp, route="absent"))
    add(Case("LOCAL_PREF: length 5", lambda c: c.upd({B.LOCAL_PREF: B.attr(B.F_WK, B.LOCAL_PREF, b"\x00" * 5)}),
             kinds=ibgp, route="absent"))
    add(Case("LOCAL_PREF: from an external peer is discarded",
             lambda c: c.upd({B.LOCAL_PREF: B.a_localpref(555)}), kinds=ebgp, route="new",
             check=lambda c, u: None if u.attrs.get(B.LOCAL_PREF, (0, b""))[1] != struct.pack("!I", 555)
             else "eBGP LOCAL_PREF 555 reached the monitor"))
    add(Case("LOCAL_PREF: malformed from an external peer is discarded",
             lambda c: c.upd({B.LOCAL_PREF: B.attr(B.F_WK, B.LOCAL_PREF, b"\x00")}), kinds=ebgp, route="new"))

    # ---- ATOMIC_AGGREGATE (s7.6), AGGREGATOR (s7.7)
    add(Case("ATOMIC_AGGREGATE: length 1 discarded",
             lambda c: c.upd(extra=[B.attr(B.F_WK, B.ATOMIC_AGGREGATE, b"\x00")]), route="new",
             check=lacks_attr(B.ATOMIC_AGGREGATE)))
    add(Case("ATOMIC_AGGREGATE: optional flags discarded",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.ATOMIC_AGGREGATE, b"")]), kinds=ibgp, route="new",
             check=lacks_attr(B.ATOMIC_AGGREGATE)))
    add(Case("AGGREGATOR: length 7 discarded",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.AGGREGATOR, b"\x00" * 7)]), route="new",
             check=lacks_attr(B.AGGREGATOR)))
    add(Case("AGGREGATOR: well-known flags discarded",
             lambda c: c.upd(extra=[B.attr(B.F_WK, B.AGGREGATOR, struct.pack("!I4s", c.asn, b"\x0a\0\0\1"))]),
             kinds=ebgp, route="new", check=lacks_attr(B.AGGREGATOR)))
    add(Case("AGGREGATOR: valid, carried",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.AGGREGATOR, struct.pack("!I4s", c.asn, b"\x0a\0\0\1"))]),
             kinds=ibgp, route="new", check=has_attr(B.AGGREGATOR)))

    # ---- COMMUNITIES (s7.8)
    add(Case("COMMUNITIES: length 3", lambda c: c.upd(extra=[B.attr(B.F_OT, B.COMMUNITIES, b"\x00\x01\x02")]),
             route="absent"))
    add(Case("COMMUNITIES: length 0", lambda c: c.upd(extra=[B.attr(B.F_OT, B.COMMUNITIES, b"")]),
             kinds=ibgp, route="absent"))
    add(Case("COMMUNITIES: well-known flags", lambda c: c.upd(extra=[B.a_communities([0x10001], B.F_WK)]),
             kinds=ebgp, route="absent"))
    add(Case("COMMUNITIES: duplicate, first kept",
             lambda c: c.upd(extra=[B.a_communities([0x10001]), B.a_communities([0x20002])]), kinds=ibgp,
             route="new", check=attr_value(B.COMMUNITIES, struct.pack("!I", 0x10001))))
    add(Case("COMMUNITIES: 1000 communities in a 4096-octet UPDATE",
             lambda c: c.upd(extra=[B.a_communities(list(range(1, 1001)))]), route="new",
             check=lambda c, u: None if len(u.attrs.get(B.COMMUNITIES, (0, b""))[1]) == 4000
             else "communities truncated"))
    add(Case("COMMUNITIES: NO_ADVERTISE keeps the route from the monitor",
             lambda c: c.upd(extra=[B.a_communities([0xFFFFFF02])]), kinds=ibgp, route="absent"))

    # ---- ORIGINATOR_ID (s7.9), CLUSTER_LIST (s7.10)
    add(Case("ORIGINATOR_ID: length 5", lambda c: c.upd(extra=[B.attr(B.F_ON, B.ORIGINATOR_ID, b"\x0a" * 5)]),
             kinds=ibgp, route="absent"))
    add(Case("ORIGINATOR_ID: transitive flags", lambda c: c.upd(extra=[B.attr(B.F_OT, B.ORIGINATOR_ID, b"\x0a\0\0\7")]),
             kinds=ibgp, route="absent"))
    add(Case("ORIGINATOR_ID: ours (loop)",
             lambda c: c.upd(extra=[B.attr(B.F_ON, B.ORIGINATOR_ID, bytes([127, 0, 88, 1]))]), kinds=ibgp,
             route="absent", note="RFC 4456 s8"))
    add(Case("ORIGINATOR_ID: from an external peer discarded",
             lambda c: c.upd(extra=[B.attr(B.F_ON, B.ORIGINATOR_ID, b"\x0a\0\0\7")]), kinds=ebgp, route="new",
             check=lambda c, u: None if u.attrs.get(B.ORIGINATOR_ID, (0, b""))[1] != b"\x0a\0\0\7"
             else "eBGP ORIGINATOR_ID reached the monitor"))
    add(Case("CLUSTER_LIST: length 6", lambda c: c.upd(extra=[B.attr(B.F_ON, B.CLUSTER_LIST, b"\x0a" * 6)]),
             kinds=ibgp, route="absent"))
    add(Case("CLUSTER_LIST: length 0", lambda c: c.upd(extra=[B.attr(B.F_ON, B.CLUSTER_LIST, b"")]),
             kinds=ibgp, route="absent"))
    add(Case("CLUSTER_LIST: contains our cluster id (loop)",
             lambda c: c.upd(extra=[B.attr(B.F_ON, B.CLUSTER_LIST, b"\x0a\0\0\5" + bytes([127, 0, 88, 1]))]),
             kinds=ibgp, route="absent"))
    add(Case("CLUSTER_LIST: from an external peer discarded",
             lambda c: c.upd(extra=[B.attr(B.F_ON, B.CLUSTER_LIST, b"\x0a\0\0\5")]), kinds=ebgp, route="new",
             check=lambda c, u: None if b"\x0a\0\0\5" not in u.attrs.get(B.CLUSTER_LIST, (0, b""))[1]
             else "eBGP CLUSTER_LIST reached the monitor"))
    add(Case("CLUSTER_LIST: 900 entries, ours prepended",
             lambda c: c.upd(extra=[B.attr(B.F_ON, B.CLUSTER_LIST, b"".join(struct.pack("!I", 0x0b000000 + i)
                                                                            for i in range(900)))]),
             kinds=ibgp, route="new",
             check=lambda c, u: None if u.attrs.get(B.CLUSTER_LIST, (0, b""))[1][:4] == bytes([127, 0, 88, 1])
             and len(u.attrs[B.CLUSTER_LIST][1]) == 901 * 4 else "CLUSTER_LIST not prepended"))

    # ---- EXTENDED_COMMUNITIES, LARGE_COMMUNITY
    add(Case("EXT_COMMUNITIES: length 7", lambda c: c.upd(extra=[B.attr(B.F_OT, B.EXT_COMMUNITIES, b"\x00" * 7)]),
             route="absent"))
    add(Case("EXT_COMMUNITIES: well-known flags",
             lambda c: c.upd(extra=[B.attr(B.F_WK, B.EXT_COMMUNITIES, b"\x00\x02" + b"\x00" * 6)]), kinds=ibgp,
             route="absent"))
    add(Case("LARGE_COMMUNITY: length 11",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.LARGE_COMMUNITY, b"\x00" * 11)]), route="absent"))
    add(Case("LARGE_COMMUNITY: non-transitive flags",
             lambda c: c.upd(extra=[B.attr(B.F_ON, B.LARGE_COMMUNITY, b"\x00" * 12)]), kinds=ebgp,
             route="absent"))
    add(Case("LARGE_COMMUNITY: valid, carried with its flags",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.LARGE_COMMUNITY, struct.pack("!III", c.asn, 1, 2))]),
             kinds=ibgp, route="new", check=has_attr(B.LARGE_COMMUNITY, B.F_OT)))

    # ---- AS4_PATH / AS4_AGGREGATOR (RFC 6793, RFC 7606 s7.15); 2-octet sessions
    add(Case("AS4_PATH: from a 4-octet speaker ignored",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.AS4_PATH, B.as_path_value([1, 2, 3]))]), route="new",
             check=lacks_attr(B.AS4_PATH)))
    add(Case("AS4_PATH: malformed from a 2-octet speaker discarded",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.AS4_PATH, b"\x02\x05\x00\x00")]), kinds=ebgp, as4=False,
             route="new", check=lambda c, u: None if u.as_path() == [PEER_AS] else f"AS_PATH {u.as_path()}"))
    add(Case("AS4_PATH: merged into the 2-octet AS_PATH",
             lambda c: c.upd({B.AS_PATH: B.a_aspath([c.asn, 23456], 2)},
                             extra=[B.attr(B.F_OT, B.AS4_PATH, B.as_path_value([4200000001]))]),
             kinds=ebgp, as4=False, route="new",
             check=lambda c, u: None if u.as_path() == [PEER_AS, 4200000001] else f"AS_PATH {u.as_path()}"))
    add(Case("AS4_AGGREGATOR: length 7 from a 2-octet speaker discarded",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.AS4_AGGREGATOR, b"\x00" * 7)]), kinds=ebgp, as4=False,
             route="new", check=lacks_attr(B.AS4_AGGREGATOR)))
    add(Case("AS_PATH: 2-octet session, overrun in 2-octet units",
             lambda c: c.upd({B.AS_PATH: B.attr(B.F_WK, B.AS_PATH, bytes([2, 2]) + struct.pack("!H", c.asn))}),
             kinds=ebgp, as4=False, route="absent"))

    # ---- unknown attributes
    add(Case("unknown well-known attribute", lambda c: c.upd(extra=[B.attr(B.F_WK, 100, b"abc")]),
             notif=(3, 2), data=B.attr(B.F_WK, 100, b"abc"), route="absent"))
    add(Case("unknown optional transitive: passed on with Partial",
             lambda c: c.upd(extra=[B.attr(B.F_OT, 100, b"abc")]), route="new", check=has_attr(100, 0xE0)))
    add(Case("unknown optional non-transitive: dropped",
             lambda c: c.upd(extra=[B.attr(B.F_ON, 101, b"abc")]), kinds=ibgp, route="new",
             check=lacks_attr(101)))

    # ---- MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760, RFC 7606 s7.11)
    def mpr(v, flags=B.F_ON):
        return lambda c: c.upd6(mp=B.attr(flags, B.MP_REACH, v(c) if callable(v) else v))
    add(Case("MP_REACH: IPv6 route accepted", lambda c: c.upd6(), fam=6, route="new"))
    add(Case("MP_REACH: global + link-local next hop accepted",
             lambda c: c.upd6(mp=c.mp6(nh=[NH6_NEW, "fe80::1"])), kinds=ibgp, fam=6, route="new"))
    add(Case("MP_REACH: IPv4 unicast over MP_REACH accepted",
             lambda c: B.update(attrs=c.attrs(v6=True) + B.a_mp_reach(1, 1, NH_NEW, B.pfx(c.P))), kinds=ibgp,
             route="new"))
    add(Case("MP_REACH: transitive flags", mpr(lambda c: B.mp_reach_value(2, 1, NH6_NEW, B.pfx(c.P6)), B.F_OT),
             fam=6, notif=(3, 4), route="absent"))
    add(Case("MP_REACH: length 2", mpr(b"\x00\x02"), fam=6, notif=(3, 9), route="absent"))
    add(Case("MP_REACH: truncated after AFI/SAFI", mpr(b"\x00\x02\x01\x10"), kinds=ibgp, fam=6, notif=(3, 9),
             route="absent"))
    add(Case("MP_REACH: next-hop length 5", mpr(lambda c: B.mp_reach_value(2, 1, b"\x20" * 5, B.pfx(c.P6))),
             fam=6, notif=(3, 9), route="absent"))
    add(Case("MP_REACH: next hop overruns", mpr(b"\x00\x02\x01\x20" + b"\x20" * 8), kinds=ebgp, fam=6,
             notif=(3, 9), route="absent"))
    add(Case("MP_REACH: IPv4 next hop of 16 octets",
             lambda c: B.update(attrs=c.attrs(v6=True) + B.a_mp_reach(1, 1, NH6_NEW, B.pfx(c.P))), kinds=ibgp,
             notif=(3, 9), route="absent"))
    add(Case("MP_REACH: IPv6 prefix length 129",
             mpr(lambda c: B.mp_reach_value(2, 1, NH6_NEW, b"\x81" + b"\x20" * 17)), fam=6, notif=(3, 9),
             route="absent"))
    add(Case("MP_REACH: NLRI truncated", mpr(lambda c: B.mp_reach_value(2, 1, NH6_NEW, B.pfx(c.P6) + b"\x40\x20")),
             kinds=ibgp, fam=6, notif=(3, 9), route="absent"))
    add(Case("MP_REACH: AFI/SAFI not negotiated ignored",
             lambda c: c.upd6(mp=B.a_mp_reach(25, 70, NH6_NEW, B.pfx(c.P6))), kinds=ebgp, fam=6, route="old"))
    add(Case("MP_REACH: twice", lambda c: c.upd6(mp=c.mp6() + c.mp6()), fam=6, notif=(3, 1), route="absent"))
    add(Case("MP_REACH: missing ORIGIN treat-as-withdraw", lambda c: c.upd6(over={B.ORIGIN: None}), fam=6,
             kinds=ibgp, route="absent"))
    add(Case("MP_UNREACH: withdraws", lambda c: B.update(attrs=B.a_mp_unreach(2, 1, B.pfx(c.P6))), fam=6,
             kinds=ebgp, route="absent"))
    add(Case("MP_UNREACH: length 1", lambda c: B.update(attrs=B.attr(B.F_ON, B.MP_UNREACH, b"\x00")), fam=6,
             notif=(3, 9), route="absent"))
    add(Case("MP_UNREACH: prefix length 129", lambda c: B.update(attrs=B.a_mp_unreach(2, 1, b"\x81" + b"\0" * 17)),
             fam=6, kinds=ibgp, notif=(3, 9), route="absent"))
    add(Case("MP_UNREACH: twice",
             lambda c: B.update(attrs=B.a_mp_unreach(2, 1, B.pfx(c.P6)) * 2), fam=6, kinds=ibgp,
             notif=(3, 1), route="absent"))
    add(Case("MP_UNREACH: transitive flags",
             lambda c: B.update(attrs=B.a_mp_unreach(2, 1, B.pfx(c.P6), flags=B.F_OT)), fam=6, kinds=ebgp,
             notif=(3, 4), route="absent"))

    # ---- ADD-PATH NLRI (RFC 7911); the iBGP range receives path ids
    ap_caps = lambda c: B.caps_default(c.asn, addpath=[(1, 1, 2), (2, 1, 2)])  # noqa: E731
    add(Case("ADD-PATH: NLRI with a path id accepted",
             lambda c: c.upd(nlri=B.pfx(c.P, path_id=7)), kinds=ibgp, caps=ap_caps, route="new"))
    add(Case("ADD-PATH: NLRI shorter than a path id",
             lambda c: c.upd(nlri=B.pfx(c.P, path_id=7) + b"\x00\x00\x01"), kinds=ibgp, caps=ap_caps,
             notif=(3, 10), route="absent"))
    add(Case("ADD-PATH: withdrawn without path ids",
             lambda c: c.upd(withdrawn=B.pfx(c.P)), kinds=ibgp, caps=ap_caps, notif=(3, 10), route="absent",
             note="a plain /24 read as path id + length 255"))

    # ---- extreme sizes with extended messages (RFC 8654): bounded memory and stack
    xm_caps = lambda c: B.caps_default(c.asn, ext_msg=True)  # noqa: E731
    add(Case("extmsg: AS_PATH of 15000 ASes (60 kB)",
             asp(lambda c: B.as_path_value(c.aspath_list() + [64000 + i % 1000 for i in range(15000)])),
             caps=xm_caps, route="new",
             check=lambda c, u: None if len(u.as_path()) >= 15000 else f"AS_PATH length {len(u.as_path())}"))
    add(Case("extmsg: AS_PATH of 10000 one-AS segments",
             asp(lambda c: b"".join(B.as_path_value([64000 + i % 1000]) for i in range(10000))), kinds=ibgp,
             caps=xm_caps, route="new"))
    add(Case("extmsg: 16000 communities", lambda c: c.upd(extra=[B.a_communities(list(range(1, 16001)))]),
             caps=xm_caps, route="new"))
    add(Case("extmsg: 5400 large communities",
             lambda c: c.upd(extra=[B.attr(B.F_OT, B.LARGE_COMMUNITY, struct.pack("!III", 1, 2, 3) * 5400)]),
             kinds=ibgp, caps=xm_caps, route="new"))
    add(Case("extmsg: 15000 /32 NLRI in one UPDATE",
             lambda c: c.upd(nlri=B.pfx(c.P) + b"".join(B.pfx(f"10.251.{i // 256 % 256}.{i % 256}/32")
                                                       for i in range(1, 12000))),
             kinds=ibgp, caps=xm_caps, route="new"))
    def big_unknown(total):
        def f(c):
            pad = total - 19 - 4 - 4 - len(c.attrs()) - len(B.pfx(c.P))
            return c.upd(extra=[B.attr(B.F_OT, 150, b"\x5a" * pad)])
        return f
    add(Case("extmsg: 65000-octet UPDATE of one unknown optional transitive attribute",
             big_unknown(65000), caps=xm_caps, route="new",
             check=lambda c, u: None if len(u.attrs.get(150, (0, b""))[1]) > 64000 else "attribute 150 lost"))
    add(Case("extmsg: 65535-octet UPDATE that cannot be sent on once rewritten is withdrawn",
             big_unknown(65535), caps=xm_caps, route="absent",
             note="LOCAL_PREF (from eBGP) or ORIGINATOR_ID/CLUSTER_LIST (reflected) make it exceed 65535: "
                  "the monitor must not keep the old version"))
    add(Case("extmsg: 65535 length without the capability", lambda c: c.upd(extra=[
        B.attr(B.F_OT, 150, b"\x5a" * 6000)]), kinds=ibgp, notif=(1, 2), data=lambda c: struct.pack(
            "!H", len(c.upd(extra=[B.attr(B.F_OT, 150, b"\x5a" * 6000)]))), route="absent"))
    return C


# ------------------------------------------------------------------ runner

class Runner:
    def __init__(self, d, checks, verbose=False):
        self.d = d
        self.verbose = verbose
        self.pools = {"ibgp": [f"127.0.88.{i}" for i in range(64, 128)],
                      "ebgp": [EBGP_PEER] + [f"127.0.88.{i}" for i in range(128, 192)]}
        self.next = {"ibgp": 0, "ebgp": 0}
        self.mon = None
        self.rib = None
        self.checks = checks

    def pick(self, kind):
        pool = self.pools[kind]
        for _ in range(len(pool)):
            a = pool[self.next[kind] % len(pool)]
            self.next[kind] += 1
            st = self.d.state(a)
            if st in (None, "Idle", "Active", "Connect"):
                return a
        return pool[self.next[kind] % len(pool)]

    def start_monitor(self):
        self.mon = B.Speaker(MON, RR, timeout=3)
        self.mon.establish(LOCAL_AS, bgp_id="10.0.0.10", caps=B.caps_default(LOCAL_AS, ext_msg=True))
        self.rib = B.RibView(self.mon)
        self.rib.pump(1.0)

    def mon_route(self, prefix):
        return self.rib.routes.get(prefix)

    def mon_wait(self, pred, timeout=4.0):
        self.rib.keepalive()
        return self.rib.wait(pred, timeout)

    def run_case(self, idx, case, kind):
        c = Ctx(kind, idx, case.as4)
        addr = self.pick(kind)
        errors = []
        notif = None
        sp = B.Speaker(addr, RR, timeout=3)
        caps = case.caps(c) if case.caps else B.caps_default(c.asn, as4=case.as4)
        pfx = c.P6 if case.fam == 6 else c.P
        old_nh = NH6_OLD if case.fam == 6 else NH_OLD
        new_nh = NH6_NEW if case.fam == 6 else NH_NEW
        if case.as4 is False:
            caps = [x for x in caps if x[0] != B.CAP_AS4]
        try:
            sp.connect()
            if case.phase == "pre":
                payload = case.build(c)
            elif case.phase == "confirm":
                sp.send(B.open_msg(c.asn, hold=case.hold, caps=caps))
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    m = sp.recv_msg(1)
                    if m is not None and m.type == B.OPEN:
                        break
                payload = case.build(c)
            else:
                ob = case.open_bytes(c) if case.open_bytes else B.open_msg(c.asn, hold=case.hold, caps=caps)
                sp.establish(c.asn, open_bytes=ob)
                sp.addpath_rx = (False, False)
                # announce P (old next hop) and wait for it at the monitor
                if case.fam == 6:
                    pre = c.upd6(nh=NH6_OLD)
                else:
                    pre = c.upd(nh=NH_OLD)
                    if case.caps is not None and B.CAP_ADDPATH in [x[0] for x in caps]:
                        pre = c.upd(nh=NH_OLD, nlri=B.pfx(c.P, path_id=7))
                sp.send(pre)
                if not self.mon_wait(lambda r: r.get(pfx) is not None and r[pfx].nexthop == old_nh):
                    raise RuntimeError(f"pre-announced {pfx} never reached the monitor")
                payload = case.build(c) if case.build else b""
            if isinstance(payload, (bytes, bytearray)):
                payload = [payload]
            for chunk in payload:
                if not sp.send(chunk):
                    break
                if len(payload) > 1:
                    time.sleep(0.002)
            # ---- the NOTIFICATION (or its absence)
            want_closed = case.closed if case.closed is not None else case.notif is not None
            if case.notif is not None:
                notif = sp.expect_notification(4)
                if notif is None:
                    errors.append(f"no NOTIFICATION, want {case.notif[0]}/{case.notif[1]}")
                elif (notif.code, notif.subcode) != case.notif:
                    errors.append(f"got {notif}, want {case.notif[0]}/{case.notif[1]}")
                elif case.data is not None:
                    want = case.data(c) if callable(case.data) else case.data
                    if notif.data != want:
                        errors.append(f"NOTIFICATION data {notif.data[:24].hex()}, want {want[:24].hex()}")
                if not sp.wait_closed(3):
                    errors.append("connection not closed after the NOTIFICATION")
            elif want_closed:
                if not sp.wait_closed(3):
                    errors.append("connection not closed")
                n = [m for m in sp.received if m.type == B.NOTIFICATION]
                if n:
                    errors.append(f"unexpected {B.Notification(n[-1].body)}")
            # ---- the route at the monitor
            if case.route == "absent":
                if not self.mon_wait(lambda r: pfx not in r):
                    u = self.mon_route(pfx)
                    errors.append(f"{pfx} still at the monitor (next hop {u.nexthop if u else '?'})")
            elif case.route == "new":
                if not self.mon_wait(lambda r: r.get(pfx) is not None and r[pfx].nexthop == new_nh):
                    u = self.mon_route(pfx)
                    errors.append(f"new {pfx} not at the monitor (has {u.nexthop if u else 'nothing'})")
                elif case.check:
                    e = case.check(c, self.mon_route(pfx))
                    if e:
                        errors.append(e)
            elif case.route == "old":
                sp.send(B.update(attrs=c.attrs(nh=NH_NEW), nlri=B.pfx(c.S)))
                if not self.mon_wait(lambda r: c.S in r):
                    errors.append("sentinel route never reached the monitor")
                u = self.mon_route(pfx)
                if u is None or u.nexthop != old_nh:
                    errors.append(f"old {pfx} changed at the monitor ({u.nexthop if u else 'absent'})")
            # ---- no NOTIFICATION when none is expected; session state
            if case.notif is None and not want_closed:
                try:
                    m = sp.recv_msg(0.2)
                    while m is not None:
                        if m.type == B.NOTIFICATION:
                            errors.append(f"unexpected {B.Notification(m.body)}")
                            break
                        m = sp.recv_msg(0.05)
                except B.Closed:
                    errors.append("session closed")
                st = self.d.state(addr)
                if st != "Established":
                    errors.append(f"session state {st}, want Established")
            else:
                st = self.d.wait_state(addr, lambda s: s != "Established" and s not in ("OpenSent", "OpenConfirm"))
                if st in ("Established", "OpenSent", "OpenConfirm"):
                    errors.append(f"session state {st} after the error")
        except (B.Closed, ConnectionError, TimeoutError, RuntimeError, OSError, ValueError) as e:
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            sp.close()
        # ---- the daemon and the monitor
        if not self.d.alive():
            errors.append("ricochetd died")
        else:
            if self.d.state(MON) != "Established":
                errors.append("monitor session lost")
            try:
                self.rib.pump(0.05)
            except B.Closed as e:
                errors.append(f"monitor session closed: {e}")
        return errors

    def run(self, cases, filt=None):
        idx = 0
        for case in cases:
            for kind in case.kinds:
                idx += 1
                name = f"[{kind}] {case.name}"
                if filt and not re.search(filt, name):
                    continue
                t0 = time.monotonic()
                errs = self.run_case(idx, case, kind)
                dt = time.monotonic() - t0
                self.checks.record(name, "; ".join(errs))
                status = "ok" if not errs else "FAIL"
                if errs or self.verbose:
                    print(f"{status:4} {name} ({dt:.1f} s){': ' + '; '.join(errs) if errs else ''}", flush=True)
                if not self.d.alive():
                    print("ricochetd died; log tail:\n" + self.d.tail(), flush=True)
                    return
                if self.d.state(MON) != "Established":
                    # keep going with a new monitor so one failure does not hide the rest
                    try:
                        self.mon.close()
                        time.sleep(0.5)
                        self.start_monitor()
                    except Exception as e:  # noqa: BLE001
                        print(f"cannot restart the monitor: {e}")
                        return


def log_ratelimit_check(d, runner):
    """50 treat-as-withdraw UPDATEs from one peer within a second produce one
    log line for that peer (io/peer.c: 10 s per peer)."""
    errs = []
    addr = runner.pick("ibgp")
    c = Ctx("ibgp", 999)
    sp = B.Speaker(addr, RR, timeout=3)
    try:
        sp.establish(LOCAL_AS)
        before = sum(1 for ln in d.log_lines() if f"peer {addr} " in ln and "malformed UPDATE" in ln)
        for i in range(50):
            sp.send(c.upd({B.ORIGIN: B.a_origin(9)}, nlri=B.pfx(f"10.252.{i}.0/24")))
        for i in range(50):
            sp.send(c.upd(extra=[B.attr(B.F_OT, B.AGGREGATOR, b"\x00")], nlri=B.pfx(f"10.253.{i}.0/24")))
        sp.send(c.upd(nlri=B.pfx(c.S)))
        if not runner.mon_wait(lambda r: c.S in r):
            errs.append("sentinel not seen")
        lines = [ln for ln in d.log_lines() if f"peer {addr} " in ln and "malformed UPDATE" in ln]
        n = len(lines) - before
        kinds = {("treat-as-withdraw" in ln) for ln in lines}
        if n < 1:
            errs.append("no malformed-UPDATE log line at all")
        elif n > 2:
            errs.append(f"{n} log lines for 100 bad UPDATEs (rate limit not applied)")
        elif len(kinds) < 2:
            errs.append(f"{n} log line(s): the second kind (attribute discard) was suppressed with the "
                        f"first (limit is per peer, not per peer and kind)")
    except (B.Closed, ConnectionError, TimeoutError, OSError) as e:
        errs.append(f"{type(e).__name__}: {e}")
    finally:
        sp.close()
    return errs


def shutdown_comm_check(d, runner):
    """RFC 9003: the Shutdown Communication of a Cease/Administrative Shutdown
    or Reset is shown in `show peers` (last_error) and logged, made safe to
    print (invalid UTF-8 and control characters -> '?'); one whose length
    runs past the data is logged as malformed and not shown.  The JSON must
    stay valid UTF-8 whatever the peer sent."""
    errs = []
    text = "maintenance \u2713 back at 10:00".encode()
    cases = [
        ("text", 2, bytes([len(text)]) + text,
         'received Cease/Administrative Shutdown: "maintenance \u2713 back at 10:00"'),
        ("hostile", 4, bytes([10]) + b"\x1b[2J\xff\xc0\x80ok\n",
         'received Cease/Administrative Reset: "?[2J???ok?"'),
        ("length-past-data", 2, bytes([200]) + b"short", "received Cease/Administrative Shutdown"),
        ("too-long-for-the-column", 2, bytes([255]) + "\u00e9".encode() * 127 + b"x", None),
    ]
    for name, sub, data, want in cases:
        addr = runner.pick("ebgp")
        sp = B.Speaker(addr, RR, timeout=3)
        try:
            sp.establish(PEER_AS)
            sp.send(B.notification(6, sub, data))
            sp.expect_notification(timeout=2)     # returns at the close
        except (B.Closed, ConnectionError, TimeoutError, OSError):
            pass
        finally:
            sp.close()
        le = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            e = (d.peers() or {}).get(addr)
            le = e.get("last_error") if e else None
            if le and le.startswith("received Cease"):
                break
            time.sleep(0.05)
        if want is not None and le != want:
            errs.append(f"{name}: last_error {le!r}, want {want!r}")
        if want is None:
            # cut at a character boundary to the column's 159 octets
            if not le or not le.startswith('received Cease/Administrative Shutdown: "\u00e9') \
                    or not le.endswith('\u00e9"') or len(le.encode()) > 159:
                errs.append(f"{name}: last_error {le!r}")
    logs = "\n".join(d.log_lines())
    if 'shutdown communication "maintenance \u2713 back at 10:00"' not in logs:
        errs.append("the shutdown communication is not in the log")
    if "malformed shutdown communication" not in logs:
        errs.append("the malformed shutdown communication is not logged")
    if "\x1b" in logs:
        errs.append("an escape character reached the log")
    return errs


def main():
    ap = H.arg_parser(verbose=True)
    ap.add_argument("-k", dest="filter", help="regular expression on case names")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    cases = build_cases()
    if a.list:
        for cs in cases:
            for k in cs.kinds:
                print(f"[{k}] {cs.name}")
        print(sum(len(cs.kinds) for cs in cases), "cases")
        return 0
    build = os.path.abspath(a.build)
    H.require(root="port 179", programs=H.built(build, "io/ricochetd"))
    with H.Run("ricochet-malformed-", keep=a.keep) as run:
        d = Daemon(build, run.root)
        run.at_end(d.stop)
        d.start(peers=[f"{{ address: {MON}, asn: {LOCAL_AS}, role: rr-client, passive: true }}",
                       f"{{ address: {EBGP_PEER}, asn: {PEER_AS}, role: rs-client, passive: true }}"],
                ranges=[f"{{ prefix: 127.0.88.64/26, asn: {LOCAL_AS}, role: rr-client, "
                        f"add-path: {{ send: 0, receive: true }} }}",
                        f"{{ prefix: 127.0.88.128/26, asn: {PEER_AS}, role: rs-client }}"])
        r = Runner(d, run.checks, a.verbose)
        r.start_monitor()
        rss0 = d.rss_kb()
        t0 = time.monotonic()
        r.run(cases, a.filter)
        extra = []
        if not a.filter:
            errs = log_ratelimit_check(d, r)
            r.checks.record("log: malformed input rate-limited per peer and kind", "; ".join(errs))
            if errs or a.verbose:
                print(f"{'ok' if not errs else 'FAIL':4} log rate limit: {'; '.join(errs)}")
            errs = shutdown_comm_check(d, r)
            r.checks.record("RFC 9003 shutdown communication shown, sanitized, length checked",
                            "; ".join(errs))
            if errs or a.verbose:
                print(f"{'ok' if not errs else 'FAIL':4} shutdown communication: {'; '.join(errs)}")
        print(f"malformed: {len(r.checks.results)} cases in {time.monotonic() - t0:.0f} s, "
              f"ricochetd RSS {rss0} kB -> {d.rss_kb()} kB{''.join(extra)}")
        run.ok = d.alive()
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
