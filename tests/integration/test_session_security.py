#!/usr/bin/env python3
"""TCP MD5 signatures (RFC 2385) and GTSM (RFC 5082) per peer, end to end.

Owns: its own ricochetd on 127.0.88.1 and, as the other side, BIRD 2
instances (started through harness.Run, which kills them whatever
happens) and raw speakers (bgpspeaker.py) that set TCP_MD5SIG / IP_TTL on
their own sockets.  Addresses: 127.0.88.30-35 and the range 127.0.88.40/29.
Checks:
  - BIRD with the right password establishes (ricochetd passive);
  - BIRD with a wrong password, or with none, never establishes;
  - ricochetd active towards a passive BIRD with a password establishes
    (the key is set on the outbound socket before connect);
  - a range with a password (TCP_MD5SIG_EXT prefix key): a speaker with the
    key establishes, one without cannot even connect;
  - GTSM: BIRD with `ttl security on` establishes with a ttl-security peer;
    a speaker sending with TTL 64 never establishes, one with TTL 255 does.
Single-threaded, every wait bounded; exits 77 when not root, when ricochetd
is not built or when BIRD is missing.  Python 3 stdlib only.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpspeaker as B  # noqa: E402
import harness as H  # noqa: E402
from test_malformed import Daemon, RR, LOCAL_AS  # noqa: E402

TCP_MD5SIG = 14
PW, PW_ACTIVE, PW_RANGE = "s3cret-md5", "act1ve-md5", "range-md5"


def md5_sockopt(sock, remote, password):
    """Set the RFC 2385 key for remote (IPv4) on our own socket."""
    ss = struct.pack("=H2s4s120x", socket.AF_INET, b"\0\0", socket.inet_aton(remote))
    key = password.encode()
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, ss + struct.pack("=BBHI80s", 0, 0, len(key), 0, key))


def bird_conf(d, addr, password=None, passive=False, ttl_security=False):
    return f"""router id 10.0.5.{addr.split('.')[-1]};
log "{d}/bird.log" all;
protocol device {{ scan time 60; }}
protocol bgp up {{
  local {addr} as {LOCAL_AS};
  neighbor {RR} as {LOCAL_AS};
  strict bind yes;
  {f'password "{password}";' if password else ''}
  {'passive yes;' if passive else ''}
  {'ttl security on;' if ttl_security else ''}
  connect delay time 1; connect retry time 1; error wait time 1, 3;
  hold time 30;
  ipv4 {{ import all; export none; }};
}}
"""


class Suite(H.Checks):
    def __init__(self, h, d):
        super().__init__()
        self.h = h
        self.d = d

    def bird(self, name, addr, **kw):
        wd = os.path.join(self.h.root, name)
        os.makedirs(wd, exist_ok=True)
        conf = os.path.join(wd, "bird.conf")
        with open(conf, "w") as f:
            f.write(bird_conf(wd, addr, **kw))
        return self.h.spawn(name, ["bird", "-f", "-c", conf, "-s", os.path.join(wd, "bird.ctl"),
                                   "-P", os.path.join(wd, "bird.pid")], wd)

    def wait_established(self, addr, timeout):
        st = self.d.wait_state(addr, lambda s: s == "Established", timeout)
        return st == "Established"

    def never_established(self, addr, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.d.state(addr) == "Established":
                return False
            time.sleep(0.2)
        return True

    def run(self):
        # BIRD instances all at once, so their waits overlap
        self.bird("bird-right", "127.0.88.30", password=PW)
        self.bird("bird-wrong", "127.0.88.31", password="not-" + PW)
        self.bird("bird-none", "127.0.88.32")
        self.bird("bird-gtsm", "127.0.88.33", ttl_security=True)
        self.bird("bird-active", "127.0.88.34", password=PW_ACTIVE, passive=True)
        self.check("MD5: BIRD with the right password establishes",
                   self.wait_established("127.0.88.30", 20), f"state {self.d.state('127.0.88.30')}")
        self.check("MD5: ricochetd active, BIRD passive, same password establishes",
                   self.wait_established("127.0.88.34", 20), f"state {self.d.state('127.0.88.34')}")
        self.check("GTSM: BIRD with ttl security on establishes",
                   self.wait_established("127.0.88.33", 20), f"state {self.d.state('127.0.88.33')}")
        self.check("MD5: BIRD with a wrong password never establishes (10 s)",
                   self.never_established("127.0.88.31", 10), f"state {self.d.state('127.0.88.31')}")
        self.check("MD5: BIRD without a password never establishes",
                   self.never_established("127.0.88.32", 1), f"state {self.d.state('127.0.88.32')}")

        # range key (TCP_MD5SIG_EXT with a prefix)
        sp = B.Speaker("127.0.88.41", RR, timeout=3)
        ok, detail = False, ""
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.88.41", 0))
            md5_sockopt(s, RR, PW_RANGE)
            s.settimeout(3)
            s.connect((RR, 179))
            sp.sock = s
            sp.establish(LOCAL_AS, bgp_id="10.0.5.41")
            ok = self.d.state("127.0.88.41") == "Established"
        except (OSError, B.Closed, ConnectionError, TimeoutError) as e:
            detail = f"{type(e).__name__}: {e}"
        finally:
            sp.close()
        self.check("MD5: range key, speaker with the key establishes", ok, detail)
        s = socket.socket()
        s.bind(("127.0.88.42", 0))
        s.settimeout(3)
        try:
            s.connect((RR, 179))
            connected = True
        except OSError:
            connected = False
        s.close()
        self.check("MD5: range key, speaker without the key cannot connect", not connected,
                   "TCP connection accepted without a signature")

        # GTSM with raw speakers: TTL 64 dropped, TTL 255 accepted
        for ttl, want in ((64, False), (255, True)):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.88.35", 0))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            s.settimeout(3)
            sp = B.Speaker("127.0.88.35", RR, timeout=3)
            got, detail = False, ""
            try:
                s.connect((RR, 179))
                sp.sock = s
                sp.establish(LOCAL_AS, bgp_id="10.0.5.35", timeout=4)
                got = self.d.state("127.0.88.35") == "Established"
            except (OSError, B.Closed, ConnectionError, TimeoutError) as e:
                detail = f"{type(e).__name__}: {e}"
            finally:
                sp.close()
            self.check(f"GTSM: speaker sending with TTL {ttl} {'establishes' if want else 'never establishes'}",
                       got == want, detail or f"established: {got}")
            if want is False:
                self.d.wait_state("127.0.88.35", lambda st: st != "OpenSent", 3)


def main():
    ap = H.arg_parser(verbose=False)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    H.require(root="port 179, TCP_MD5SIG", programs=H.built(build, "io/ricochetd") + ["bird"])
    with H.Run("ricochet-security-", keep=a.keep) as run:
        d = Daemon(build, run.root)
        run.at_end(d.stop)
        rr = f"asn: {LOCAL_AS}, role: rr-client"
        d.start(peers=[f'{{ address: 127.0.88.30, {rr}, passive: true, md5-password: "{PW}" }}',
                       f'{{ address: 127.0.88.31, {rr}, passive: true, md5-password: "{PW}" }}',
                       f'{{ address: 127.0.88.32, {rr}, passive: true, md5-password: "{PW}" }}',
                       f"{{ address: 127.0.88.33, {rr}, passive: true, ttl-security: 1 }}",
                       f'{{ address: 127.0.88.34, {rr}, passive: false, md5-password: "{PW_ACTIVE}", '
                       f"local-address: {RR}, timers: {{ connect-retry: 1 }} }}",
                       f"{{ address: 127.0.88.35, {rr}, passive: true, ttl-security: 1 }}"],
                ranges=[f'{{ prefix: 127.0.88.40/29, {rr}, md5-password: "{PW_RANGE}" }}'])
        run.checks = s = Suite(run, d)
        s.run()
        run.ok = d.alive()
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
