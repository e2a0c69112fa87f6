#!/usr/bin/env python3
"""Soak test of issue 6: a full table, 100 clients, 10,000 prefix changes per
second and flapping peers against one ricochetd for a long, bounded time.

Owns: its own ricochetd (generated configuration: one rr-client peer range,
default send hold timer, optional metrics endpoint), one ricochet-load run
that announces the table, churns for --duration seconds and then verifies
every client's table against the expected one, the flapping peers (raw BGP
speakers from tests/integration/bgpspeaker.py: connect, announce a few
thousand routes, drain what the reflector sends, disconnect, again), and the
measurements: ricochetd's RSS and CPU every second, its peer list every
2 seconds, its log.  At the end: RSS over time (PNG and SVG, gnuplot), sessions
lost other than the ones closed on purpose (must be 0), the final verification
(must be clean), summary.json and report.md in --out.

Addresses (loopback, port 179): ricochetd 127.0.66.1, ricochet-load feeders
from 127.0.66.10, flappers from 127.0.66.40, clients (ricochet-load monitors)
127.0.67.1..254; the peer range is 127.0.66.0/23.  Nothing else uses it.

Threads: the main thread drives the phases and the bounded waits; a sampler
thread (/proc every second), a poller thread (the control socket), a reader
for ricochet-load's stderr, and one thread per flapper.  They share only
append-only lists and a few flags; the main thread reads them after joining.

Why it is built this way: the soak must be able to run for hours, so nothing
accumulates per route in this process (flappers frame messages without
decoding them, samples are a few numbers per second), every wait has a
deadline and a hard stop at duration + 5 minutes kills whatever is still
running; every process started here gets its own session and is killed by
its process group in a finally block.  Python 3 stdlib only (gnuplot for the
plot, skipped with a note when missing).

  python3 bench/soak.py --build build                        # 10 min, full table
  python3 bench/soak.py --build build --scale 0.05 --clients 20 --duration 90
"""

import argparse
import calendar
import glob
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import bgpspeaker as B  # noqa: E402

RR = "127.0.66.1"
RANGE = "127.0.66.0/23"
FEEDER_BASE = "127.0.66.10"
FLAP_BASE = 40                      # 127.0.66.40 ...
MONITOR_BASE = "127.0.67.1"         # ricochet-load: 254 per /24, then +2 in the third octet
ASN = 65515
METRICS_PORT = 9179
FULL_V4, FULL_V6 = 1_050_000, 230_000
HARD_EXTRA = 300.0                  # hard stop: duration + 5 minutes after start
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now():
    return time.monotonic()


def note(msg):
    print(f"soak: {msg}", flush=True)


# ------------------------------------------------------------------ processes

class Proc:
    """A process we started, in its own session, output to a file."""

    def __init__(self, argv, log, stderr_pipe=False, cwd=None, core=False):
        self.argv = argv
        self.logf = open(log, "wb")

        def allow_core():
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                      stderr=subprocess.PIPE if stderr_pipe else subprocess.STDOUT,
                                      start_new_session=True, cwd=cwd,
                                      preexec_fn=allow_core if core else None)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, grace=10.0):
        """SIGTERM to the process group, SIGKILL after grace; returns the exit code."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=10)
        if not self.logf.closed:
            self.logf.close()
        return self.popen.returncode


def proc_sample(pid):
    """(rss_kib, cpu_ticks, threads) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = f.read()
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+)", st, re.M)
    thr = re.search(r"^Threads:\s+(\d+)", st, re.M)
    if not rss or not thr:                  # exiting (a zombie has no memory)
        return None
    rss, thr = int(rss.group(1)), int(thr.group(1))
    # fields after the command: state is [0], utime [11], stime [12]
    return rss, int(fields[11]) + int(fields[12]), thr


# ------------------------------------------------------------------ ricochetd

class Daemon:
    def __init__(self, build, out, metrics):
        self.bin = os.path.join(build, "io", "ricochetd")
        self.cli = os.path.join(build, "io", "ricochet")
        self.out = out
        self.conf = os.path.join(out, "ricochet.yaml")
        self.log = os.path.join(out, "ricochetd.log")
        sock = os.path.join(out, "ricochet.sock")
        if len(sock) > 100:                 # sun_path limit
            sock = f"/tmp/ricochet-soak-{os.getpid()}.sock"
        self.sock = sock
        self.metrics = metrics
        self.proc = None

    def write_config(self):
        lines = [
            "# generated by bench/soak.py",
            f"router-id: {RR}",
            f"asn: {ASN}",
            f"cluster-id: {RR}",
            f"listen: [{{ address: {RR}, port: 179 }}]",
            f"control-socket: {self.sock}",
            "log-level: info",
        ]
        if self.metrics:
            lines.append(f"metrics: {{ listen: \"{RR}:{METRICS_PORT}\" }}")
        lines += ["peer-ranges:", f"  - {{ prefix: {RANGE}, role: rr-client }}"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.write_config()
        # cwd: a core dump (if the kernel writes them to the cwd) lands in out
        self.proc = Proc([self.bin, "-c", self.conf], self.log, cwd=self.out, core=True)
        deadline = now() + 15
        while now() < deadline:
            if not self.proc.alive():
                raise RuntimeError("ricochetd exited at start:\n" + tail(self.log))
            if os.path.exists(self.sock) and self.ctl("show", "summary") is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("ricochetd did not come up:\n" + tail(self.log))

    def ctl(self, *args, timeout=10):
        try:
            p = subprocess.run([self.cli, "-s", self.sock, "-t", str(int(timeout)), "--json"] + list(args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=timeout + 5)
        except (OSError, subprocess.SubprocessError):
            return None
        if p.returncode != 0:
            return None
        try:
            return json.loads(p.stdout)
        except ValueError:
            return None

    def metrics_text(self):
        try:
            with urllib.request.urlopen(f"http://{RR}:{METRICS_PORT}/metrics", timeout=5) as r:
                return r.read().decode(errors="replace")
        except OSError as e:
            return f"# metrics unavailable: {e}\n"


def backtrace(binary, out, rc):
    """After a crash: the core file's backtraces (gdb) into out/backtrace.txt;
    returns the crashing thread's first frames, or why there are none."""
    cores = sorted(glob.glob(os.path.join(out, "core*")), key=os.path.getmtime)
    if rc is None or rc >= 0:
        return f"exit code {rc}, no signal"
    if not cores:
        return (f"signal {-rc}, no core file in {out} (core_pattern: "
                f"{open('/proc/sys/kernel/core_pattern').read().strip()})")
    if not shutil.which("gdb"):
        return f"signal {-rc}, core {cores[-1]} (no gdb)"
    try:
        p = subprocess.run(["gdb", "-batch", "-nx", "-ex", "bt 30", "-ex", "info threads",
                            "-ex", "thread apply all bt 30", binary, cores[-1]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        return f"signal {-rc}, core {cores[-1]}, gdb failed: {e}"
    with open(os.path.join(out, "backtrace.txt"), "w") as f:
        f.write(p.stdout)
    frames = [ln for ln in p.stdout.splitlines() if re.match(r"#\d+ ", ln)][:12]
    return f"signal {-rc}, core {os.path.basename(cores[-1])}:\n" + "\n".join(frames)


def tail(path, n=20):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------ flappers

def flap_prefixes(idx, n4, n6):
    """Flapper idx's routes: consecutive IPv4 /24s in 10/8 (ricochet-load never
    generates 10/8), IPv6 /64s in fd66:idx::/32 (it only uses 2001-2c0f)."""
    k0 = idx * n4
    v4 = [f"10.{(k0 + i) >> 8}.{(k0 + i) & 255}.0/24" for i in range(n4)]
    v6 = [f"fd66:{idx:x}:{i >> 16:x}:{i & 0xffff:x}::/64" for i in range(n6)]
    return v4, v6


def flap_updates(addr, v4, v6, max_msg=4096):
    """UPDATEs announcing v4 (NLRI) and v6 (MP_REACH) from addr, packed."""
    base = B.a_origin(0) + B.a_aspath([]) + B.a_localpref(100) + B.a_med(7)
    msgs = []
    a4 = base + B.a_nexthop(addr)
    room = max_msg - 23 - len(a4)
    cur = b""
    for p in v4:
        e = B.pfx(p)
        if len(cur) + len(e) > room:
            msgs.append(B.update(attrs=a4, nlri=cur))
            cur = b""
        cur += e
    if cur:
        msgs.append(B.update(attrs=a4, nlri=cur))
    nh6 = "::ffff:" + addr
    room = max_msg - 23 - len(base) - 4 - 5 - 16 - 16
    cur = b""
    for p in v6 + [None]:
        e = B.pfx(p) if p else b""
        if p is None or len(cur) + len(e) > room:
            if cur:
                msgs.append(B.update(attrs=base + B.a_mp_reach(B.AFI_IPV6, B.SAFI_UNICAST, nh6, cur)))
            cur = b""
        cur += e
    return b"".join(msgs)


class Flapper(threading.Thread):
    """One peer that connects, announces its routes, stays up for `up` s while
    draining what the reflector sends (framing only, KEEPALIVE every 30 s), then
    closes (Cease NOTIFICATION, plain close or TCP reset in turn), stays down,
    and again, until stop_at or the stop event."""

    CLOSE_KINDS = ("cease", "close", "reset")

    def __init__(self, idx, n4, n6, period, offset, stop_ev):
        super().__init__(name=f"flapper-{idx}", daemon=True)
        self.idx = idx
        self.addr = f"127.0.66.{FLAP_BASE + idx}"
        v4, v6 = flap_prefixes(idx, n4, n6)
        self.nroutes = len(v4) + len(v6)
        self.msgs = flap_updates(self.addr, v4, v6)
        self.period = period
        self.up = max(1.0, period * 0.6)
        self.offset = offset
        self.stop_ev = stop_ev
        self.stop_at = None                 # set by main (monotonic)
        self.cycles = 0
        self.closes = {k: 0 for k in self.CLOSE_KINDS}
        self.lost = []                      # (t, what): closed by the other side while up
        self.connect_failures = []
        self.bytes_in = 0
        self.msgs_in = 0

    def intended(self):
        return sum(self.closes.values())

    def _done(self):
        return self.stop_ev.is_set() or (self.stop_at is not None and now() >= self.stop_at)

    def _wait(self, secs):
        end = now() + secs
        while not self._done() and now() < end:
            time.sleep(min(0.2, max(0.0, end - now())))

    def _drain(self, sp, until):
        """Read and frame until `until`; False when the session ended under us."""
        sock = sp.sock
        buf = bytearray(sp.buf)            # what establish() read past the KEEPALIVE
        sp.buf = b""
        last_ka = now()
        while now() < until and not self._done():
            if now() - last_ka >= 30:
                if not sp.send(B.keepalive()):
                    self.lost.append((time.time(), "send failed"))
                    return False
                last_ka = now()
            sock.settimeout(max(0.01, min(0.5, until - now())))
            try:
                d = sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as e:
                self.lost.append((time.time(), f"recv: {e}"))
                return False
            if not d:
                self.lost.append((time.time(), "EOF from ricochetd"))
                return False
            self.bytes_in += len(d)
            buf += d
            off = 0
            while len(buf) - off >= 19:
                ln = struct.unpack_from("!H", buf, off + 16)[0]
                if ln < 19:
                    self.lost.append((time.time(), f"bad length {ln}"))
                    return False
                if len(buf) - off < ln:
                    break
                self.msgs_in += 1
                if buf[off + 18] == B.NOTIFICATION:
                    self.lost.append((time.time(), "NOTIFICATION " + buf[off + 19:off + 21].hex()))
                    return False
                off += ln
            del buf[:off]
        return True

    def run(self):
        self._wait(self.offset)
        while not self._done():
            t0 = now()
            sp = B.Speaker(self.addr, RR, timeout=5)
            try:
                sp.establish(ASN, hold=90, bgp_id=self.addr, timeout=10)
            except (OSError, B.Closed, ConnectionError, TimeoutError, ValueError) as e:
                self.connect_failures.append((time.time(), str(e)[:120]))
                sp.close(reset=True)
                self._wait(self.period - (now() - t0))
                continue
            self.cycles += 1
            ok = sp.send(self.msgs)
            if not ok:
                self.lost.append((time.time(), "announce failed"))
            elif self._drain(sp, t0 + self.up):
                kind = self.CLOSE_KINDS[self.cycles % len(self.CLOSE_KINDS)]
                if kind == "cease":
                    sp.send(B.notification(6, 2))
                sp.close(reset=kind == "reset")
                self.closes[kind] += 1
                self._wait(self.period - (now() - t0))
                continue
            sp.close()
            self._wait(self.period - (now() - t0))


# ------------------------------------------------------------------ measurements

class Run:
    """Everything measured, shared by the helper threads (append-only)."""

    def __init__(self):
        self.t0 = now()
        self.wall0 = time.time()
        self.events = {}                    # name -> seconds since t0
        self.samples = []                   # (t, rss_kib, cpu_pct, threads, established)
        self.established = 0
        self.peer_polls = 0
        self.poll_drops = []                # (t, address, what)
        self.summaries = {}                 # label -> show summary
        self.stop = threading.Event()
        self.watch_load = False             # poller checks the load's sessions

    def t(self):
        return now() - self.t0

    def mark(self, name):
        if name not in self.events:
            self.events[name] = round(self.t(), 2)
            note(f"t={self.events[name]:.1f}s {name}")


def sampler(run, pid):
    last = None
    while not run.stop.is_set():
        s = proc_sample(pid)
        t = run.t()
        if s is None:
            run.mark("ricochetd exited")
            break
        rss, ticks, thr = s
        cpu = 0.0
        if last:
            dt = t - last[0]
            cpu = 100.0 * (ticks - last[1]) / CLK_TCK / dt if dt > 0 else 0.0
        last = (t, ticks)
        run.samples.append((round(t, 2), rss, round(cpu, 1), thr, run.established))
        run.stop.wait(1.0)


def is_load_peer(addr, nfeeders):
    if addr.startswith("127.0.67."):
        return True
    parts = addr.split(".")
    return addr.startswith("127.0.66.") and 10 <= int(parts[3]) < 10 + nfeeders


def poller(run, d, nfeeders):
    """Peers every 2 s: the established count for the samples, and while
    watch_load is on, any load session (feeder or client) seen down or
    restarted (its uptime went back) is a session lost."""
    uptime = {}
    while not run.stop.is_set():
        ps = d.ctl("show", "peers")
        if ps is not None:
            run.peer_polls += 1
            run.established = sum(1 for p in ps if p.get("state") == "Established")
            if run.watch_load:
                for p in ps:
                    a = p.get("address", "")
                    if not is_load_peer(a, nfeeders):
                        continue
                    up = p.get("uptime_s", 0)
                    if p.get("state") != "Established":
                        run.poll_drops.append((run.t(), a, f"{p.get('state')}: {p.get('last_error')}"))
                    elif a in uptime and up + 1 < uptime[a]:
                        run.poll_drops.append((run.t(), a, f"uptime {uptime[a]} -> {up}"))
                    uptime[a] = up
        run.stop.wait(2.0)


def load_reader(run, stream, path):
    """ricochet-load's stderr to a file; its phase lines become events."""
    with open(path, "wb") as f:
        pending = b""
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            f.write(chunk)
            f.flush()
            pending += chunk
            parts = re.split(rb"[\r\n]", pending)
            pending = parts.pop()
            for ln in parts:
                m = re.match(rb"ricochet-load: phase (\S+)", ln)
                if m:
                    run.mark("load " + m.group(1).decode())


# ------------------------------------------------------------------ log analysis

LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \S+ (\w+): peer (\S+) AS\d+: (.*)$")


def log_ts(s):
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000


def analyse_log(path):
    """Per peer: Established sessions, and every session down with what came just
    before it from or to that peer (NOTIFICATION received/sent, or nothing)."""
    peers = {}
    sent = []
    warnings = {}
    with open(path, errors="replace") as f:
        for ln in f:
            m = LOG_RE.match(ln.rstrip("\n"))
            if not m:
                continue
            ts, lvl, addr, msg = m.groups()
            e = peers.setdefault(addr, {"established": 0, "downs": [], "cause": None})
            if msg.startswith("session Established"):
                e["established"] += 1
                e["cause"] = None
            elif msg.startswith("received NOTIFICATION"):
                e["cause"] = "received " + msg.split("(")[0].split("NOTIFICATION ")[1].strip()
            elif msg.startswith("sending NOTIFICATION"):
                e["cause"] = "sent " + msg.split("(")[0].split("NOTIFICATION ")[1].strip()
                sent.append(f"{ts} {addr}: {msg}")
            elif msg.startswith("session down"):
                e["downs"].append((log_ts(ts), e["cause"] or "connection closed"))
                e["cause"] = None
            elif lvl in ("warn", "error"):
                k = re.sub(r"\d+", "N", msg)[:80]
                warnings[k] = warnings.get(k, 0) + 1
    return peers, sent, warnings


# ------------------------------------------------------------------ plot

PLOT = r"""
set title ttl noenhanced
set xlabel "seconds since ricochetd started"
set ylabel "ricochetd RSS (MiB)"
set y2label "ricochetd CPU (% of one core)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key bottom right opaque noenhanced
set datafile separator "\t"
set linetype 1 lc rgb "#d62728" lw 2.5
set linetype 2 lc rgb "#9ecae1" lw 1
{arrows}
set terminal pngcairo size 1100,600 font "sans,11"
set output outbase.".png"
plot data using 1:3 axes x1y2 with lines lt 2 title "CPU %", \
     data using 1:($2/1024) with lines lt 1 title "RSS MiB"
set terminal svg size 1100,600 dynamic font "sans,11"
set output outbase.".svg"
replot
"""


def plot(out, run, title):
    if not shutil.which("gnuplot"):
        return "gnuplot not found: no plot"
    data = os.path.join(out, "samples.tsv")
    arrows = []
    for i, (name, t) in enumerate(sorted(run.events.items(), key=lambda kv: kv[1])):
        if name.startswith(("load announce", "churn start", "flappers stopped", "churn end", "load exited")):
            arrows.append(f'set arrow from {t}, graph 0 to {t}, graph 1 nohead dt 2 lc rgb "#555555"')
            arrows.append(f'set label "{name}" at {t}, graph {0.97 - 0.05 * (i % 4)} offset 0.3,0 '
                          f'font ",9" noenhanced')
    gp = os.path.join(out, "rss.gp")
    with open(gp, "w") as f:
        f.write(PLOT.replace("{arrows}", "\n".join(arrows)))
    p = subprocess.run(["gnuplot", "-e", f"data='{data}'; outbase='{os.path.join(out, 'rss')}'; "
                        f"ttl='{title}'", gp], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    return None if p.returncode == 0 else "gnuplot failed: " + p.stderr.strip()[:300]


# ------------------------------------------------------------------ main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("--out", help="output directory (default BUILD/soak-DATE)")
    ap.add_argument("--duration", type=float, default=600, help="churn and flapping time, s (default 600)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="table size factor: 1 = 1.05M IPv4 + 230k IPv6 (default 1)")
    ap.add_argument("--clients", type=int, default=100, help="route-reflector clients (default 100, max 254)")
    ap.add_argument("--feeders", type=int, default=2, help="feeders sharing the table (default 2)")
    ap.add_argument("--churn-rate", type=float, default=10000, help="prefix changes/s (default 10000)")
    ap.add_argument("--flappers", type=int, default=4, help="flapping peers (default 4, max 60)")
    ap.add_argument("--flap-routes", type=int, default=3000,
                    help="routes per flapper, 80%% IPv4 (default 3000)")
    ap.add_argument("--flap-period", type=float, default=10, help="s per connect/up/down cycle (default 10)")
    ap.add_argument("--phase-timeout", type=float, default=240,
                    help="ricochet-load per-phase timeout, s (default 240)")
    ap.add_argument("--metrics", action="store_true", help="enable ricochetd's metrics endpoint and save it")
    a = ap.parse_args()
    if not 1 <= a.clients <= 254:
        ap.error("--clients must be 1..254 (127.0.67.0/24)")
    if not 1 <= a.feeders <= 20:
        ap.error("--feeders must be 1..20")
    if not 0 <= a.flappers <= 60:
        ap.error("--flappers must be 0..60")
    if not 5 <= a.duration <= 86400:
        ap.error("--duration must be 5..86400 s")
    if not 0 < a.scale <= 4:
        ap.error("--scale must be in (0, 4]")
    if a.flappers * (a.flap_routes * 4 // 5) > 65536 or a.flap_routes < 1:
        ap.error("flapper IPv4 routes are /24s of 10/8: flappers x 80% of --flap-routes <= 65536")
    if a.flap_period < 2:
        ap.error("--flap-period must be at least 2 s")
    return a


def main():
    a = parse_args()
    build = os.path.abspath(a.build)
    load_bin = os.path.join(build, "bench", "ricochet-load")
    for b in (os.path.join(build, "io", "ricochetd"), os.path.join(build, "io", "ricochet"), load_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"soak: {b} not built (ninja -C {a.build})")
    out = os.path.abspath(a.out or os.path.join(build, "soak-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    v4 = max(1, round(FULL_V4 * a.scale))
    v6 = round(FULL_V6 * a.scale)
    fl4 = a.flap_routes * 4 // 5
    fl6 = a.flap_routes - fl4
    settle_gap = min(10.0, max(2.0, a.duration * 0.05))   # flappers stop this long before churn ends

    run = Run()
    hard_stop = run.t0 + a.duration + HARD_EXTRA
    d = Daemon(build, out, a.metrics)
    load = None
    flappers = []
    flap_stop = threading.Event()
    threads = []
    result = {"ok": False, "failures": []}
    fail = result["failures"]
    load_rc = None
    hard_stopped = False
    close_ok_from = float("inf")            # wall time from which the load's own closes are expected

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    cmd = [load_bin, "--target", f"{RR}:179", "--asn", str(ASN), "--feeders", str(a.feeders),
           "--monitors", str(a.clients), "--feeder-base", FEEDER_BASE, "--monitor-base", MONITOR_BASE,
           "--routes", str(v4), "--v6-routes", str(v6), "--shared",
           "--churn-rate", str(a.churn_rate), "--churn-seconds", str(a.duration),
           "--timeout", str(a.phase_timeout), "--json", os.path.join(out, "load.json")]
    note(f"out {out}")
    note(f"table {v4} IPv4 + {v6} IPv6 shared by {a.feeders} feeders, {a.clients} clients, "
         f"churn {a.churn_rate:g}/s for {a.duration:g} s, {a.flappers} flappers x {a.flap_routes} routes "
         f"every {a.flap_period:g} s; hard stop after {a.duration + HARD_EXTRA:g} s")
    try:
        d.start()
        run.mark("ricochetd up")
        threads.append(threading.Thread(target=sampler, args=(run, d.proc.pid), daemon=True))
        threads.append(threading.Thread(target=poller, args=(run, d, a.feeders), daemon=True))
        for t in threads:
            t.start()
        time.sleep(2)                         # a baseline before any peer
        run.summaries["baseline"] = d.ctl("show", "summary")
        run.summaries["memory baseline"] = d.ctl("show", "memory")
        load = Proc(cmd, os.path.join(out, "load.out"), stderr_pipe=True)
        rd = threading.Thread(target=load_reader, args=(run, load.popen.stderr, os.path.join(out, "load.err")),
                              daemon=True)
        rd.start()
        run.mark("load started")
        # announce: until the churn phase starts (ricochet-load verified every client)
        while "load churn" not in run.events:
            if not load.alive():
                raise RuntimeError("ricochet-load ended before the churn phase:\n" +
                                   tail(os.path.join(out, "load.out")))
            if not d.proc.alive():
                raise RuntimeError("ricochetd died during the announce:\n" + tail(d.log))
            if now() > hard_stop:
                raise TimeoutError("hard stop during the announce")
            time.sleep(0.1)
        run.mark("churn start")
        churn_t0 = now()
        run.summaries["loaded"] = d.ctl("show", "summary")
        run.summaries["memory loaded"] = d.ctl("show", "memory")
        run.watch_load = True
        stop_at = churn_t0 + a.duration - settle_gap
        for i in range(a.flappers):
            f = Flapper(i, fl4, fl6, a.flap_period, i * a.flap_period / max(1, a.flappers), flap_stop)
            f.stop_at = stop_at
            flappers.append(f)
            f.start()
        # churn + flapping
        last_report = now()
        while now() < stop_at:
            if not d.proc.alive():
                raise RuntimeError("ricochetd died during the churn")
            if not load.alive():
                break
            if now() > hard_stop:
                raise TimeoutError("hard stop during the churn")
            if now() - last_report >= 30:
                last_report = now()
                s = run.samples[-1] if run.samples else (0, 0, 0, 0, 0)
                note(f"t={run.t():.0f}s RSS {s[1] / 1024:.0f} MiB, CPU {s[2]:.0f}%, "
                     f"{run.established} sessions, flaps {sum(f.cycles for f in flappers)}")
            time.sleep(0.2)
        flap_stop.set()
        for f in flappers:
            f.join(timeout=max(1.0, min(30.0, hard_stop - now())))
        run.mark("flappers stopped")
        # churn end; ricochet-load then polls its verification until clean, closes
        # every session (Cease/2) and exits: stop watching its sessions just before
        watch_end = churn_t0 + a.duration - 2
        while now() < watch_end and load.alive():
            time.sleep(0.2)
        run.watch_load = False
        close_ok_from = run.wall0 + (now() - run.t0)
        while now() < churn_t0 + a.duration and load.alive():
            time.sleep(0.2)
        run.mark("churn end")
        run.summaries["churn end"] = d.ctl("show", "summary")
        run.summaries["memory churn end"] = d.ctl("show", "memory")
        while load.alive():
            if now() > hard_stop:
                raise TimeoutError("hard stop while ricochet-load verifies")
            time.sleep(0.2)
        load_rc = load.stop()
        rd.join(timeout=10)
        run.mark("load exited")
        # every peer gone: the RIB must be empty again (withdrawing two full
        # tables takes seconds; poll, bounded), then memory settles
        t_left = now()
        while True:
            s = d.ctl("show", "summary") or {}
            if not (s.get("ipv4_paths") or s.get("ipv6_paths")) or now() > t_left + 120:
                break
            time.sleep(0.5)
        run.mark("RIB empty" if not (s.get("ipv4_paths") or s.get("ipv6_paths"))
                 else "RIB still not empty after 120 s")
        time.sleep(5)
        run.summaries["after"] = d.ctl("show", "summary")
        run.summaries["memory after"] = d.ctl("show", "memory")
        run.mark("end")
    except KeyboardInterrupt as e:
        fail.append(f"interrupted ({e})")
    except TimeoutError as e:
        hard_stopped = True
        fail.append(str(e))
    except RuntimeError as e:
        fail.append(str(e))
    finally:
        flap_stop.set()
        if load is not None and load.alive():
            load_rc = load.stop(grace=5)
        for f in flappers:
            f.join(timeout=10)
        daemon_alive = d.proc is not None and d.proc.alive()
        if d.proc is not None and not daemon_alive:
            run.mark("ricochetd exited")
        peers_final = d.ctl("show", "peers") if daemon_alive else None
        metrics = d.metrics_text() if a.metrics and daemon_alive else None
        run.stop.set()
        for t in threads:
            t.join(timeout=15)
        daemon_rc = d.proc.stop() if d.proc is not None else None
        if d.sock.startswith("/tmp/ricochet-soak-") and os.path.exists(d.sock):
            os.unlink(d.sock)

    # ---------------------------------------------------------------- figures
    if metrics:
        with open(os.path.join(out, "metrics.txt"), "w") as f:
            f.write(metrics)
    if peers_final is not None:
        with open(os.path.join(out, "peers-final.json"), "w") as f:
            json.dump(peers_final, f, indent=1)
    with open(os.path.join(out, "samples.tsv"), "w") as f:
        f.write("# t_s\trss_kib\tcpu_pct\tthreads\testablished\n")
        for s in run.samples:
            f.write("\t".join(str(x) for x in s) + "\n")

    crash = None
    if not daemon_alive:
        fail.append(f"ricochetd was not running at the end (exit {daemon_rc}, at "
                    f"+{run.events.get('ricochetd exited', '?')} s):\n" + tail(d.log))
        crash = backtrace(d.bin, out, daemon_rc)

    # load verification
    verification = {"exit_code": load_rc}
    try:
        with open(os.path.join(out, "load.json")) as f:
            lj = json.load(f)
        ph = lj.get("phases", {})
        tot = {}
        for m in lj.get("monitors", []):
            for k, v in m.get("verify", {}).items():
                tot[k] = tot.get(k, 0) + v
        verification.update({
            "ok": bool(lj.get("ok")),
            "announce": ph.get("announce", {}),
            "churn": ph.get("churn", {}),
            "clients_verified": len(lj.get("monitors", [])),
            "expected_paths_per_client": lj.get("expected_paths_per_monitor"),
            "totals": tot,
            "clients_with_errors": [m["name"] for m in lj.get("monitors", []) if m.get("error")],
            "churn_latency_ms": lj.get("churn", {}),
            "errors": lj.get("errors", []),
        })
    except (OSError, ValueError) as e:
        verification["ok"] = False
        verification["errors"] = [f"no load.json: {e}"]
    churn_ok = bool(verification.get("churn", {}).get("ok"))
    if not (verification.get("ok") and load_rc == 0 and churn_ok):
        fail.append(f"verification failed: ricochet-load exit {load_rc}, churn phase: "
                    f"{verification.get('churn', {}).get('note') or 'not run'}; "
                    f"errors {verification.get('errors')}")

    # sessions lost
    lpeers, sent, warns = analyse_log(d.log)
    # A load session (feeder or client) ends on purpose when ricochet-load exits:
    # it writes a Cease/2 and closes.  ricochetd logs that Cease, or - when the
    # client still had unread UPDATEs, so its close became a TCP reset - only a
    # failed read/write; the latter counts as on purpose only inside the exit
    # window and when ricochet-load itself saw nothing wrong on that session.
    # Any other end is a session lost.  A Cease/2 before the churn ended means
    # ricochet-load gave up (it says why in load.out).
    load_err = {}
    try:
        with open(os.path.join(out, "load.json")) as f:
            lj = json.load(f)
            for pe in lj.get("feeders", []) + lj.get("monitors", []):
                m = re.search(r"\(([\d.]+)\)", pe.get("name", ""))
                if m:
                    load_err[m.group(1)] = pe.get("error", "")
    except (OSError, ValueError):
        pass
    # the exit window lasts until ricochetd has withdrawn what the load's
    # feeders held (an I/O thread busy withdrawing a full table logs the
    # clients' closes only after it), plus 2 s
    exit_until = run.wall0 + max(run.events.get("load exited", -1e12),
                                 run.events.get("RIB empty", -1e12)) + 2
    lost, early, exit_resets = [], [], 0
    for addr, e in sorted(lpeers.items()):
        if is_load_peer(addr, a.feeders):
            if e["established"] > 1:
                lost.append(f"{addr}: {e['established']} sessions (reconnected)")
            for ts, cause in e["downs"]:
                if cause == "received 6/2":
                    if ts < close_ok_from:
                        early.append(addr)
                elif close_ok_from <= ts <= exit_until and load_err.get(addr) == "":
                    exit_resets += 1
                else:
                    lost.append(f"{addr}: session down at +{ts - run.wall0:.1f}s ({cause})")
    n_load = a.feeders + a.clients
    est_load = sum(1 for addr, e in lpeers.items() if is_load_peer(addr, a.feeders) and e["established"])
    if est_load != n_load and load_rc is not None:
        lost.append(f"only {est_load} of {n_load} load sessions ever established")
    # the poller's view is a cross-check: it counts only what the log does not explain
    explained = {x.split(":")[0] for x in lost} | set(early)
    for t, addr, what in run.poll_drops:
        if addr not in explained:
            explained.add(addr)
            lost.append(f"{addr}: seen down by the poller at +{t:.1f}s ({what}), not in the log")
    if early:
        fail.append(f"ricochet-load closed {len(early)} sessions before the churn ended (see load.out)")
    flap = {"flappers": len(flappers), "cycles": 0, "intended_closes": 0, "closes": {}, "lost": [],
            "connect_failures": [], "bytes_in": 0, "downs_logged": 0}
    for f in flappers:
        flap["cycles"] += f.cycles
        flap["intended_closes"] += f.intended()
        for k, v in f.closes.items():
            flap["closes"][k] = flap["closes"].get(k, 0) + v
        flap["bytes_in"] += f.bytes_in
        flap["lost"] += [f"{f.addr}: +{t - run.wall0:.1f}s {w}" for t, w in f.lost]
        flap["connect_failures"] += [f"{f.addr}: +{t - run.wall0:.1f}s {w}" for t, w in f.connect_failures]
        downs = len(lpeers.get(f.addr, {}).get("downs", []))
        flap["downs_logged"] += downs
        if downs > f.intended() + len(f.lost):
            lost.append(f"{f.addr}: {downs} sessions down in the log, {f.intended()} closed on purpose")
    lost += [f"flapper {x}" for x in flap["lost"]]
    if not daemon_alive and "ricochetd exited" in run.events:
        # the daemon died under its sessions: every load session it had is lost too
        # (the log cannot say so; the flappers noticed theirs themselves)
        gone = {x.split(":")[0] for x in lost}
        for addr, e in sorted(lpeers.items()):
            if is_load_peer(addr, a.feeders) and e["established"] and addr not in gone and \
                    not any(ts < run.wall0 + run.events["ricochetd exited"] for ts, _ in e["downs"]):
                lost.append(f"{addr}: ricochetd died at +{run.events['ricochetd exited']} s")
    if lost:
        fail.append(f"{len(lost)} sessions lost")
    if flap["connect_failures"]:
        fail.append(f"{len(flap['connect_failures'])} flapper connections refused or failed: "
                    + flap["connect_failures"][0])
    if flappers and flap["cycles"] == 0:
        fail.append("no flapper ever established")

    # RSS figures
    rss = {}
    if run.samples:
        def at(t):
            best = min(run.samples, key=lambda s: abs(s[0] - t))
            return round(best[1] / 1024, 1)
        ev = run.events
        rss = {"start_mib": round(run.samples[0][1] / 1024, 1),
               "peak_mib": round(max(s[1] for s in run.samples) / 1024, 1),
               "end_mib": round(run.samples[-1][1] / 1024, 1)}
        if "churn start" in ev:
            rss["loaded_mib"] = at(ev["churn start"] + 1)
        if "churn end" in ev:
            rss["churn_end_mib"] = at(ev["churn end"])
        if "churn start" in ev and "flappers stopped" in ev:
            # drift during the churn, second half against the first (a leak shows as growth)
            win = [s for s in run.samples if ev["churn start"] + 5 <= s[0] <= ev["flappers stopped"]]
            if len(win) >= 4:
                h = len(win) // 2
                m1 = sum(s[1] for s in win[:h]) / h / 1024
                m2 = sum(s[1] for s in win[h:]) / (len(win) - h) / 1024
                rss["churn_first_half_mean_mib"] = round(m1, 1)
                rss["churn_second_half_mean_mib"] = round(m2, 1)
            cpu = [s[2] for s in run.samples if ev["churn start"] + 2 <= s[0] <= ev["flappers stopped"]]
            if cpu:
                rss["churn_cpu_mean_pct"] = round(sum(cpu) / len(cpu), 1)
                rss["churn_cpu_max_pct"] = max(cpu)
    for k in ("baseline", "loaded", "churn end", "after"):
        m = run.summaries.get("memory " + k) or {}
        if "allocated_bytes" in m:
            rss[f"allocated_{k.replace(' ', '_')}_mib"] = round(m["allocated_bytes"] / 2**20, 1)
    after = run.summaries.get("after") or {}
    if after and (after.get("ipv4_paths") or after.get("ipv6_paths")):
        fail.append(f"RIB not empty after every peer left: {after.get('ipv4_paths')} IPv4 + "
                    f"{after.get('ipv6_paths')} IPv6 paths")

    title = (f"ricochetd soak: {v4 + v6} prefixes x {a.feeders} feeders, {a.clients} clients, "
             f"churn {a.churn_rate:g}/s, {a.flappers} flappers, {a.duration:g} s")
    perr = plot(out, run, title)
    if perr:
        fail.append(perr)

    result.update({
        "ok": not fail,
        "command": " ".join(["python3", "bench/soak.py"] + sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.wall0)),
        "host": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "config": {"duration_s": a.duration, "scale": a.scale, "ipv4_per_feeder": v4, "ipv6_per_feeder": v6,
                   "feeders": a.feeders, "shared": True, "clients": a.clients, "churn_rate": a.churn_rate,
                   "flappers": a.flappers, "flap_routes": a.flap_routes, "flap_period_s": a.flap_period,
                   "metrics": a.metrics, "addresses": {"ricochetd": RR, "range": RANGE,
                                                       "feeders": FEEDER_BASE,
                                                       "flappers": f"127.0.66.{FLAP_BASE}",
                                                       "clients": MONITOR_BASE}},
        "load_command": " ".join(cmd),
        "events_s": run.events,
        "hard_stopped": hard_stopped,
        "rss": rss,
        "sessions_lost": len(lost),
        "sessions_lost_detail": lost[:200],
        "load_exit_closes_seen_as_reset": exit_resets,
        "peer_polls": run.peer_polls,
        "flapping": flap,
        "notifications_sent_by_ricochetd": sent[:100],
        "log_warnings": warns,
        "verification": verification,
        "ricochetd_summary": run.summaries,
        "ricochetd_exit_code": daemon_rc,
        "crash": crash,
    })
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(result, f, indent=1)
    write_report(out, result)
    note(("PASS" if result["ok"] else "FAIL") + f": RSS {rss.get('start_mib')} -> peak {rss.get('peak_mib')} "
         f"-> end {rss.get('end_mib')} MiB, sessions lost {len(lost)}, verification "
         f"{'ok' if verification.get('ok') and churn_ok else 'FAILED'}; report {out}/report.md")
    for x in fail:
        note("failure: " + x.splitlines()[0])
    return 0 if result["ok"] else 1


def write_report(out, r):
    c, rss, v, fl = r["config"], r["rss"], r["verification"], r["flapping"]
    tot = v.get("totals", {})
    sm = r["ricochetd_summary"]
    sl, se, sa = sm.get("loaded") or {}, sm.get("churn end") or {}, sm.get("after") or {}
    lines = [
        f"# Soak run {r['date_utc']}: {'PASS' if r['ok'] else 'FAIL'}",
        "",
        f"Command: `{r['command']}`",
        "",
        f"- Table: {c['ipv4_per_feeder']} IPv4 + {c['ipv6_per_feeder']} IPv6 prefixes, announced by "
        f"{c['feeders']} feeders (same prefixes), {c['clients']} route-reflector clients verified",
        f"- Churn: {c['churn_rate']:g} prefix changes/s for {c['duration_s']:g} s "
        f"({v.get('churn', {}).get('count', '?')} re-announcements sent)",
        f"- Flapping: {c['flappers']} peers x {c['flap_routes']} routes, a cycle every {c['flap_period_s']:g} s: "
        f"{fl['cycles']} sessions, closed on purpose {fl['intended_closes']} ({fl['closes']}), "
        f"{fl['bytes_in'] / 1e6:.1f} MB drained",
        f"- ricochetd RSS: start {rss.get('start_mib')} MiB, table loaded {rss.get('loaded_mib')} MiB, "
        f"peak {rss.get('peak_mib')} MiB, churn end {rss.get('churn_end_mib')} MiB, after every peer left "
        f"{rss.get('end_mib')} MiB; churn halves (mean) {rss.get('churn_first_half_mean_mib')} -> "
        f"{rss.get('churn_second_half_mean_mib')} MiB",
        f"- ricochetd RIB: {sl.get('ipv4_paths', 0) + sl.get('ipv6_paths', 0)} paths loaded; attribute sets "
        f"{sl.get('attribute_sets')} loaded, {se.get('attribute_sets')} at churn end (every churned route carries "
        f"ricochet-load's send-time community, so up to one set per path), {sa.get('ipv4_paths')} + "
        f"{sa.get('ipv6_paths')} paths and {sa.get('attribute_sets')} sets after every peer left",
        f"- ricochetd heap in use (jemalloc allocated): before any peer {rss.get('allocated_baseline_mib')} MiB, loaded {rss.get('allocated_loaded_mib')} MiB, churn end "
        f"{rss.get('allocated_churn_end_mib')} MiB, after every peer left {rss.get('allocated_after_mib')} MiB",
        f"- ricochetd CPU during churn: mean {rss.get('churn_cpu_mean_pct')} %, max "
        f"{rss.get('churn_cpu_max_pct')} % of one core",
        f"- Sessions lost (other than the flappers' own closes): **{r['sessions_lost']}**",
        f"- Final verification (ricochet-load, after the churn stopped and the flappers left): "
        f"**{'identical' if v.get('ok') and v.get('churn', {}).get('ok') else 'FAILED'}** - "
        f"{v.get('clients_verified')} clients x {v.get('expected_paths_per_client')} paths, missing "
        f"{tot.get('missing')}, extra {tot.get('extra')}, stale {tot.get('stale_generation')}, bad attributes "
        f"{tot.get('bad_attrs')}, bad next hop {tot.get('bad_nexthop')}; churn phase: "
        f"{v.get('churn', {}).get('note')}",
        f"- NOTIFICATIONs sent by ricochetd: {len(r['notifications_sent_by_ricochetd'])}",
        "",
        "![RSS over time](rss.png)",
        "",
    ]
    if r["failures"]:
        lines += ["## Failures", ""] + [f"- {x.splitlines()[0]}" for x in r["failures"]] + [""]
    if r.get("crash"):
        lines += ["## ricochetd crashed", "", "```", r["crash"], "```", ""]
    if r["sessions_lost_detail"]:
        lines += ["## Sessions lost", ""] + [f"- {x}" for x in r["sessions_lost_detail"][:50]] + [""]
    lines += ["## Events (s since ricochetd started)", ""]
    lines += [f"- {t:8.1f}  {n}" for n, t in sorted(r["events_s"].items(), key=lambda kv: kv[1])]
    lines += ["", "Files: summary.json, samples.tsv (t, RSS KiB, CPU %, threads, sessions), rss.png/.svg, "
              "ricochetd.log, ricochet.yaml, load.out/.err/.json, peers-final.json.", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
