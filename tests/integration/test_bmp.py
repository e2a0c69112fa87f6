#!/usr/bin/env python3
"""BMP (RFC 7854) export end to end: a minimal BMP station decodes every
message ricochetd sends, and tshark's BMP dissector reads a capture of the
same stream without a malformed packet.

Uses its own loopback block 127.0.99.0/24 (ricochetd on 127.0.99.1:179, the
station on 127.0.99.1:<free port>, feeders from 127.0.99.40, the monitor from
127.0.99.140).  Every process it starts is killed on exit; every wait is
bounded.

Checks: Initiation first (sysDescr and sysName), a Peer Up per session with
both OPEN messages well formed, Route Monitoring carrying every prefix the
feeders announced (IPv4 and IPv6, decoded from the UPDATEs), Statistics
Reports whose Adj-RIB-In gauges match the load, a Peer Down per session and
Termination last; every message parses to its exact length.  Then a station
that never reads: ricochetd still exits within seconds of SIGTERM.
"""
import os, shutil, signal, socket, struct, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

ADDR = "127.0.99.1"
T_ROUTE, T_STATS, T_DOWN, T_UP, T_INIT, T_TERM = 0, 1, 2, 3, 4, 5


def nlri(buf, v6):
    """Prefixes of an NLRI block (no ADD-PATH)."""
    out, i = [], 0
    while i < len(buf):
        ln = buf[i]
        n = (ln + 7) // 8
        raw = buf[i + 1:i + 1 + n] + bytes((16 if v6 else 4) - n)
        if len(buf) < i + 1 + n:
            raise ValueError("NLRI overrun")
        out.append(f"{socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, raw)}/{ln}")
        i += 1 + n
    return out


def bgp_update_prefixes(m):
    """(announced, withdrawn) prefixes of a BGP UPDATE message."""
    if m[:16] != b"\xff" * 16 or m[18] != 2 or struct.unpack("!H", m[16:18])[0] != len(m):
        raise ValueError("not a well-formed UPDATE")
    wl = struct.unpack("!H", m[19:21])[0]
    wd = nlri(m[21:21 + wl], False)
    al = struct.unpack("!H", m[21 + wl:23 + wl])[0]
    attrs = m[23 + wl:23 + wl + al]
    ann = nlri(m[23 + wl + al:], False)
    i = 0
    while i < len(attrs):
        fl, ty = attrs[i], attrs[i + 1]
        if fl & 0x10:
            ln, hl = struct.unpack("!H", attrs[i + 2:i + 4])[0], 4
        else:
            ln, hl = attrs[i + 2], 3
        v = attrs[i + hl:i + hl + ln]
        if ty == 14:
            afi, nhl = struct.unpack("!H", v[:2])[0], v[3]
            ann += nlri(v[5 + nhl:], afi == 2)
        elif ty == 15:
            afi = struct.unpack("!H", v[:2])[0]
            wd += nlri(v[3:], afi == 2)
        i += hl + ln
    if i != len(attrs):
        raise ValueError("attribute overrun")
    return ann, wd


def is_open(m):
    return len(m) >= 29 and m[:16] == b"\xff" * 16 and m[18] == 1 and struct.unpack("!H", m[16:18])[0] == len(m)


class Station:
    """Accepts one connection at a time and decodes everything into self.msgs."""

    def __init__(self, port):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((ADDR, port))
        self.ls.listen(4)
        self.ls.settimeout(0.2)
        self.msgs, self.errors, self.stop = [], [], False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def close(self):
        """Stop, once what was in flight when the daemon ended has been read."""
        time.sleep(0.5)
        self.stop = True
        self.t.join(timeout=5)

    def run(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            c.settimeout(0.2)
            buf = b""
            while not self.stop:
                try:
                    d = c.recv(1 << 16)
                except socket.timeout:
                    continue
                if not d:
                    break
                buf += d
                while len(buf) >= 6:
                    ver, ln, ty = struct.unpack("!BIB", buf[:6])
                    if ver != 3 or ln < 6:
                        self.errors.append(f"bad common header {buf[:6].hex()}")
                        buf = b""
                        break
                    if len(buf) < ln:
                        break
                    try:
                        self.msgs.append(self.decode(ty, buf[6:ln]))
                    except (ValueError, IndexError, struct.error) as e:
                        self.errors.append(f"type {ty}: {e}")
                    buf = buf[ln:]
            c.close()

    def decode(self, ty, b):
        m = {"type": ty}
        if ty in (T_INIT, T_TERM):
            i, tlv = 0, {}
            while i < len(b):
                t, l = struct.unpack("!HH", b[i:i + 4])
                if i + 4 + l > len(b):
                    raise ValueError("TLV overrun")
                tlv[t] = b[i + 4:i + 4 + l]
                i += 4 + l
            m["tlv"] = tlv
            return m
        if len(b) < 42:
            raise ValueError("short per-peer header")
        ptype, flags = b[0], b[1]
        addr = b[10:26]
        m["peer"] = socket.inet_ntop(socket.AF_INET6, addr) if flags & 0x80 else socket.inet_ntop(socket.AF_INET, addr[12:])
        m["asn"], m["bgp_id"] = struct.unpack("!II", b[26:34])
        body = b[42:]
        if ty == T_ROUTE:
            m["ann"], m["wd"] = bgp_update_prefixes(body)
        elif ty == T_UP:
            o1 = body[20:]
            l1 = struct.unpack("!H", o1[16:18])[0]
            if not is_open(o1[:l1]) or not is_open(o1[l1:]):
                raise ValueError("Peer Up without two OPENs")
            m["lport"], m["rport"] = struct.unpack("!HH", body[16:20])
        elif ty == T_DOWN:
            m["reason"] = body[0]
        elif ty == T_STATS:
            n = struct.unpack("!I", body[:4])[0]
            i, st = 4, {}
            for _ in range(n):
                t, l = struct.unpack("!HH", body[i:i + 4])
                v = body[i + 4:i + 4 + l]
                if t == 9:
                    st[(9, struct.unpack("!H", v[:2])[0])] = struct.unpack("!Q", v[3:11])[0]
                else:
                    st[t] = int.from_bytes(v, "big")
                i += 4 + l
            if i != len(body):
                raise ValueError("stats overrun")
            m["stats"] = st
        else:
            raise ValueError(f"unknown type {ty}")
        return m


def main():
    ap = H.arg_parser(verbose=False)
    a = ap.parse_args()
    d = os.path.abspath(a.build)
    rd, load = (os.path.join(d, p) for p in ("io/ricochetd", "bench/ricochet-load"))
    H.require(root="port 179, capture", programs=(rd, load))
    with H.Run("ricochet-bmp-", keep=a.keep) as run:
        tmp = run.root
        port = H.free_tcp_port(ADDR)
        cap = os.path.join(tmp, "bmp.pcapng")
        tshark = shutil.which("tshark")
        if tshark:
            run.popen([tshark, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", cap], sig=signal.SIGINT,
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # capture is running once tshark says so on stderr, or after a bounded wait
            t_end = time.monotonic() + 10
            while time.monotonic() < t_end and not os.path.exists(cap):
                time.sleep(0.1)
            time.sleep(0.5)
        st = Station(port)
        run.at_end(st.close)
        cfg = os.path.join(tmp, "r.yaml")
        open(cfg, "w").write(f"""router-id: {ADDR}
asn: 65000
listen: [{{ address: {ADDR}, port: 179 }}]
control-socket: {tmp}/ctl.sock
bmp: {{ station: {ADDR}:{port} }}
peer-ranges:
  - {{ prefix: 127.0.99.0/24, asn: 65000, role: rr-client }}
""")
        run.popen([rd, "-c", cfg], log="ricochetd.log")
        check = run.checks.check

        R4, R6 = 2000, 500
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end and not st.msgs:
            time.sleep(0.1)
        # churn keeps the sessions up past one statistics interval (10 s)
        r = subprocess.run([load, "-q", "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base",
                            "127.0.99.40", "--monitor-base", "127.0.99.140", "--feeders", "2", "--monitors",
                            "1", "--routes", str(R4), "--v6-routes", str(R6), "--churn-rate", "200",
                            "--churn-seconds", "11", "--timeout", "60"],
                           capture_output=True, text=True, timeout=120)
        check("load-passed", r.returncode == 0, (r.stdout + r.stderr)[-500:])
        time.sleep(0.5)
        run.stop()              # ricochetd ends (Peer Down, Termination), then the station and tshark
        msgs = st.msgs
        types = [m["type"] for m in msgs]
        check("decoded-without-error", not st.errors and len(msgs) > 0, str(st.errors[:5]))
        check("initiation-first", bool(msgs) and msgs[0]["type"] == T_INIT and 1 in msgs[0]["tlv"]
              and 2 in msgs[0]["tlv"], str(msgs[:1]))
        check("termination-last", bool(msgs) and msgs[-1]["type"] == T_TERM, str(types[-3:]))
        ups = [m for m in msgs if m["type"] == T_UP]
        downs = [m for m in msgs if m["type"] == T_DOWN]
        check("peer-up-per-session", sorted(m["peer"] for m in ups) ==
              ["127.0.99.140", "127.0.99.40", "127.0.99.41"] and all(m["rport"] and m["lport"] == 179 for m in ups),
              str([(m["peer"], m.get("lport"), m.get("rport")) for m in ups]))
        check("peer-down-per-session", sorted(m["peer"] for m in downs) == sorted(m["peer"] for m in ups),
              str([(m["peer"], m["reason"]) for m in downs]))
        ann = {}
        for m in msgs:
            if m["type"] == T_ROUTE:
                ann.setdefault(m["peer"], set()).update(m["ann"])
        n4 = {p: sum(1 for x in s if ":" not in x) for p, s in ann.items()}
        n6 = {p: sum(1 for x in s if ":" in x) for p, s in ann.items()}
        check("route-monitoring-all-prefixes",
              n4.get("127.0.99.40") == R4 and n4.get("127.0.99.41") == R4 and n6.get("127.0.99.40") == R6
              and "127.0.99.140" not in ann and not (ann["127.0.99.40"] & ann["127.0.99.41"]),
              f"{n4} {n6}")
        # the order per peer: Up before any Route Monitoring, Down after
        order_ok = True
        for p in ("127.0.99.40", "127.0.99.41"):
            idx = [i for i, m in enumerate(msgs) if m.get("peer") == p]
            ks = [msgs[i]["type"] for i in idx]
            order_ok &= bool(ks) and ks[0] == T_UP and ks[-1] == T_DOWN
        check("per-peer-order-up-monitor-down", order_ok)
        stats = [m for m in msgs if m["type"] == T_STATS and m["peer"] == "127.0.99.40"]
        check("stats-report-gauges", bool(stats) and stats[-1]["stats"].get(7) == R4 + R6 and
              stats[-1]["stats"].get((9, 1)) == R4 and stats[-1]["stats"].get((9, 2)) == R6,
              str([s["stats"] for s in stats]))
        print(f"  station: {len(msgs)} messages: " +
              ", ".join(f"{n} {types.count(t)}" for t, n in ((T_INIT, "init"), (T_UP, "peer-up"),
                        (T_ROUTE, "route-mon"), (T_STATS, "stats"), (T_DOWN, "peer-down"), (T_TERM, "term"))))
        if tshark and os.path.exists(cap):
            r = subprocess.run([tshark, "-r", cap, "-d", f"tcp.port=={port},bmp", "-T", "fields", "-e", "bmp.type"],
                               capture_output=True, text=True, timeout=120)
            seen = [int(x) for l in r.stdout.split() for x in l.split(",") if x.strip().isdigit()]
            # Our UPDATEs carry 4-octet AS_PATHs (per-peer flag A clear, RFC 7854 s4.2); the
            # dissector's AS-length auto-detection is documented as inexact, so say it.  Errors
            # only: TCP analysis warnings (window full) are about the capture, not BMP.
            bad = subprocess.run([tshark, "-o", "bgp.asn_len:4 octet", "-r", cap, "-d", f"tcp.port=={port},bmp",
                                  "-Y", "_ws.malformed || _ws.expert.severity >= 8388608"],
                                 capture_output=True, text=True, timeout=120)
            nbad = len([l for l in bad.stdout.splitlines() if l.strip()])
            print(f"  tshark: {len(seen)} BMP messages dissected, {nbad} malformed/error packets")
            check("tshark-dissects-every-message", len(seen) == len(msgs), f"{len(seen)} vs {len(msgs)}")
            check("tshark-no-malformed", nbad == 0, bad.stdout[:500])
        else:
            print("  tshark not available: capture checks skipped")
        stuck_station(run, rd, load)
    return run.rc


def stuck_station(run, rd, load):
    """A station that connects and never reads: at exit ricochetd gives up
    on it after a few seconds (io/bmp.c, BMP_STOP_GRACE_NS) instead of
    waiting for it forever."""
    check = run.checks.check
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
    ls.bind((ADDR, 0))
    ls.listen(1)
    ls.settimeout(10)
    run.at_end(ls.close)
    port = ls.getsockname()[1]
    cfg = os.path.join(run.root, "stuck.yaml")
    open(cfg, "w").write(f"""router-id: {ADDR}
asn: 65000
listen: [{{ address: {ADDR}, port: 179 }}]
control-socket: {run.root}/ctl-stuck.sock
bmp: {{ station: {ADDR}:{port} }}
peer-ranges:
  - {{ prefix: 127.0.99.0/24, asn: 65000, role: rr-client }}
""")
    log = os.path.join(run.root, "ricochetd-stuck.log")
    p = run.popen([rd, "-c", cfg], log="ricochetd-stuck.log")
    c, _ = ls.accept()
    run.at_end(c.close)
    # a Route Monitoring message per churned UPDATE: megabytes, far more
    # than the station's socket takes, so the BMP thread is left waiting
    r = subprocess.run([load, "-q", "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base",
                        "127.0.99.40", "--monitor-base", "127.0.99.140", "--feeders", "1", "--monitors",
                        "1", "--routes", "20000", "--v6-routes", "0", "--churn-rate", "20000",
                        "--churn-seconds", "3", "--timeout", "60"],
                       capture_output=True, text=True, timeout=120)
    check("stuck-station-load-passed", r.returncode == 0, (r.stdout + r.stderr)[-500:])
    ss = subprocess.run(["ss", "-tnH", "state", "established", f"dport = :{port}"],
                        capture_output=True, text=True, timeout=10).stdout.split()
    print(f"  station that does not read: ricochetd's BMP socket Send-Q {ss[1] if len(ss) > 1 else '?'}")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    text = open(log, errors="replace").read()
    check("stuck-station-exit-bounded", rc == 0 and took < 10, f"exit status {rc} after {took:.1f} s")
    check("stuck-station-gave-up", "Termination not sent" in text, H.tail_file(log, 5))
    print(f"  station that does not read: ricochetd exited in {took:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
