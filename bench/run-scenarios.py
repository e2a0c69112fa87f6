#!/usr/bin/env python3
"""Side-by-side route-reflector benchmark: ricochetd, BIRD 2, FRR bgpd, GoBGP
and the null relay, each driven by ricochet-load with the same scenario.

Owns the benchmark procedure: per scenario and daemon, write the daemon's RR
configuration (bench/daemons/configs.py), start it on 127.0.0.1:179, run
ricochet-load against it, sample the daemon's CPU seconds (/proc/PID/stat
utime+stime) and peak RSS (/proc/PID/status VmHWM), repeat --runs times,
take medians, print and write a table (results.json, results.md) and plot the
prefixes held by the slowest monitor over time, one line per daemon
(bench/plot.gp -> PNG and SVG).  Single-threaded driver plus one sampling
thread per run; every daemon is our child and is killed at the end of its run
(tests/integration/harness.py does the process handling).

    bench/run-scenarios.py                       # all scenarios, all daemons, 3 runs
    bench/run-scenarios.py -s S1 -d ricochetd,bird --runs 1
    bench/run-scenarios.py --dry-run             # write every configuration, run nothing
    bench/run-scenarios.py --verify              # each daemon's config takes BGP sessions
    bench/run-scenarios.py --scale 0.01          # same shapes, 1% of the routes
    bench/run-scenarios.py -s S2 -d ricochetd --alt new=../wt/build/io/ricochetd  # A/B two builds

Runs go in rounds (run 1 of every daemon, then run 2 of every daemon, ...), so
that a drift of this shared machine falls on every daemon alike; the table
gives the median and, with several runs, the range of the convergence times.

Binaries: $RICOCHETD (default BUILD/io/ricochetd), $RICOCHET_LOAD
(BUILD/bench/ricochet-load), $RICOCHET_NULLRELAY (BUILD/bench/ricochet-nullrelay),
BUILD from --build (default: build).  A missing tool is reported and that
daemon's rows say so; nothing else stops.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "daemons"))
import harness as H  # noqa: E402
import configs as C  # noqa: E402

DAEMONS = ["ricochetd", "bird", "frr", "gobgp", "nullrelay"]
RESTORE_SETTLE = 6.0   # seconds ricochet-load holds the restored table (S5)

# name: (description, ricochet-load knobs); sizes can be changed with --set/--scale
SCENARIOS = {
    "S1": ("8 peers, 10,000 routes in total (4 feeders x 2,500 to 4 monitors)",
           dict(feeders=4, monitors=4, routes=2500, withdraw=True)),
    "B4": ("the bar: 4 feeders x 250,000 disjoint routes to 4 clients",
           dict(feeders=4, monitors=4, routes=250000, withdraw=True)),
    "S2": ("ingest: 50 feeders (iBGP non-clients) x 100,000 disjoint routes to 1 client",
           dict(feeders=50, monitors=1, routes=100000, withdraw=True, feeders_client=False)),
    "S3": ("full-table fan-out: 2 feeders, same 1.05M IPv4 + 230k IPv6, 100 clients, no ADD-PATH",
           dict(feeders=2, monitors=100, routes=1050000, v6_routes=230000, shared=True,
                withdraw=True)),
    "S3ap": ("S3 with ADD-PATH, 2 paths per prefix",
             dict(feeders=2, monitors=100, routes=1050000, v6_routes=230000, shared=True,
                  addpath=2, withdraw=True)),
    "S4": ("many clients: 1 feeder x 100,000 routes to 1000 clients",
           dict(feeders=1, monitors=1000, routes=100000, withdraw=True)),
    "S5": ("churn: full table, then 10,000 prefix changes/s for 60 s, 100 clients; then the "
           "original table again, to compare memory holding the same routes before and after",
           dict(feeders=1, monitors=100, routes=1050000, churn_rate=10000, churn_seconds=60,
                restore=True)),
    "S5r": ("S5 with recurring attributes (two variants per set, no send-time community): "
            "is memory flat under churn?",
            dict(feeders=1, monitors=100, routes=1050000, churn_rate=10000, churn_seconds=60,
                 churn_attrs="recurring", restore=True)),
    "S5f": ("S5r over a fixed working set: the churn re-announces only the first 50,000 "
            "prefixes (5% of the table), so after a warm-up every attribute variant exists "
            "and any growth left is the daemon's own",
            dict(feeders=1, monitors=100, routes=1050000, churn_rate=10000, churn_seconds=60,
                 churn_attrs="recurring", churn_prefixes=50000, restore=True)),
    "S6": ("the real target: 2 feeders, same 1.05M IPv4 + 230k IPv6, 1000 clients "
           "(only when named: minutes per daemon, BIRD over half an hour)",
           dict(feeders=2, monitors=1000, routes=1050000, v6_routes=230000, shared=True,
                withdraw=True)),
}
# Run only when named in -s: minutes per daemon (BIRD: over half an hour), too long for
# the default sweep.
OPT_IN = {"S6"}
# ricochet-load keeps a flat table per monitor, a 4-octet tag per expected
# path and a 4-octet path id more under ADD-PATH (bench/load/monitor.c); a
# scenario whose tables would not fit in the memory available is reported as
# not run rather than left to the OOM killer.
LOAD_SLOT_BYTES = 4


def parse_args():
    ap = argparse.ArgumentParser(description="side-by-side route reflector benchmark",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(f"  {k}: {v[0]}" for k, v in SCENARIOS.items()))
    ap.add_argument("-s", "--scenarios", default=",".join(s for s in SCENARIOS if s not in OPT_IN),
                    help="comma-separated scenario names (below), and/or 'micro' for the "
                         "Google Benchmark micro-benchmarks (default: all but "
                         + ", ".join(sorted(OPT_IN)) + ")")
    ap.add_argument("-d", "--daemons", default=",".join(DAEMONS))
    ap.add_argument("--alt", action="append", default=[], metavar="LABEL=PATH",
                    help="also run the ricochetd binary at PATH, as daemon ricochetd:LABEL, in "
                         "the same interleaved rounds (A/B of two builds; its other/ricochetd "
                         "column is its time divided by the main binary's)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=float, default=300, help="seconds per daemon, scenario and run")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=None, help="results directory (default BUILD/bench-results/DATE)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every route count")
    ap.add_argument("--set", action="append", default=[], metavar="S.KEY=VAL",
                    help="override a scenario knob, e.g. S4.monitors=200")
    ap.add_argument("--ranges", choices=["auto", "always", "never"], default="auto",
                    help="dynamic-neighbour ranges instead of explicit peers")
    ap.add_argument("--dry-run", action="store_true", help="write configurations only")
    ap.add_argument("--verify", action="store_true",
                    help="start each daemon with its generated config and check that BIRD "
                         "clients get sessions and reflected routes through it (no load tool)")
    ap.add_argument("--load-args", default="", help="extra ricochet-load arguments (all daemons)")
    ap.add_argument("--verify-attrs", action="store_true",
                    help="let ricochet-load compare attributes byte for byte (off by default: "
                         "BIRD re-encodes them)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    # "micro": the Google Benchmark micro-benchmarks (codec, RIB) from the same entry point
    a.micro = "micro" in a.scenarios
    a.scenarios = [s for s in a.scenarios if s != "micro"]
    a.daemons = [d for d in a.daemons.split(",") if d]
    for s in a.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    for d in a.daemons:
        if d not in DAEMONS:
            ap.error(f"unknown daemon {d}")
    a.alt_bins = {}
    for spec in a.alt:
        label, _, path = spec.partition("=")
        if not label or not path or not re.fullmatch(r"[A-Za-z0-9_.-]+", label):
            ap.error(f"--alt {spec}: want LABEL=PATH, LABEL of letters, digits, . _ -")
        a.alt_bins[f"ricochetd:{label}"] = path
        a.daemons.append(f"ricochetd:{label}")
    return a


def kind_of(daemon):
    """The daemon's kind: an --alt binary (ricochetd:LABEL) is a ricochetd."""
    return daemon.partition(":")[0]


def bins_for(a, bins, daemon):
    """The binaries for this daemon: an --alt one swaps in its ricochetd."""
    if daemon in a.alt_bins:
        return dict(bins, ricochetd=a.alt_bins[daemon])
    return bins


def knobs_for(a, scen):
    k = dict(SCENARIOS[scen][1])
    for key in ("routes", "v6_routes"):
        if key in k:
            k[key] = max(1, int(k[key] * a.scale))
    for s in a.set:
        name, _, kv = s.partition(".")
        key, _, val = kv.partition("=")
        if name == scen:
            key = key.replace("-", "_")
            cur = k.get(key)
            if isinstance(cur, bool) or val.lower() in ("true", "false", "yes", "no"):
                k[key] = val.lower() in ("1", "true", "yes")
            else:
                k[key] = type(cur if cur is not None else 0)(float(val))
    return k


def load_memory(k):
    """Bytes ricochet-load's monitors allocate for their tables (monitor.c)."""
    paths = (k.get("routes", 0) + k.get("v6_routes", 0)) * max(1, k.get("addpath", 1))
    if not k.get("shared"):
        paths *= k.get("feeders", 1)
    per_path = LOAD_SLOT_BYTES * (2 if k.get("addpath", 1) > 1 else 1)
    return paths * per_path * k.get("monitors", 1)


def mem_available():
    """MemAvailable in bytes, or None where /proc/meminfo does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def binaries(a):
    b = a.build
    return {"ricochetd": os.environ.get("RICOCHETD", os.path.join(b, "io", "ricochetd")),
            "load": os.environ.get("RICOCHET_LOAD", os.path.join(b, "bench", "ricochet-load")),
            "nullrelay": os.environ.get("RICOCHET_NULLRELAY",
                                        os.path.join(b, "bench", "ricochet-nullrelay")),
            "xfer": os.path.join(b, "bench", "ricochet-xfer"),
            "bird": shutil.which("bird") or "bird", "frr": C.FRR_BGPD,
            "gobgp": shutil.which("gobgpd") or "gobgpd"}


def missing_for(daemon, bins):
    need = {"ricochetd": [bins["ricochetd"]], "bird": [bins["bird"], "birdc"],
            "frr": [bins["frr"], "vtysh"], "gobgp": [bins["gobgp"], "gobgp"],
            "nullrelay": [bins["nullrelay"]]}[daemon]
    return H.have(*need)


def make_peers(a, k):
    ranges = None if a.ranges == "auto" else a.ranges == "always"
    return C.Peers(k["feeders"], k["monitors"], addpath=k.get("addpath", 0),
                   feeders_client=k.get("feeders_client", True),
                   v6=bool(k.get("v6_routes")), ranges=ranges)


def gen_config(daemon, peers, workdir, bins, limit):
    if daemon == "ricochetd":
        return C.ricochetd(peers, workdir, os.path.abspath(bins["ricochetd"]))
    if daemon == "nullrelay":
        return C.nullrelay(peers, workdir, os.path.abspath(bins["nullrelay"]), duration=limit + 60)
    if daemon == "gobgp":
        return C.gobgp(peers, workdir, bins["gobgp"], api_port=H.free_tcp_port())
    return C.GENERATORS[daemon](peers, workdir, bins[daemon])


def post_start(daemon, workdir):
    """Daemon-specific commands once it listens (FRR's allow-martians)."""
    for cmd in C.POST_START.get(daemon, lambda _w: [])(workdir):
        H.run(cmd)


def load_argv(bins, k, out_json, out_tl, limit, daemon, extra, verify_attrs=False):
    argv = [os.path.abspath(bins["load"]), "--target", "127.0.0.1:179", "--asn", "65000",
            "--feeders", str(k["feeders"]), "--monitors", str(k["monitors"]),
            "--routes", str(k["routes"]), "--json", out_json, "--timeline", out_tl,
            "--timeout", str(int(limit)), "-q"]
    if k.get("v6_routes"):
        argv += ["--v6-routes", str(k["v6_routes"])]
    if k.get("shared"):
        argv.append("--shared")
    if k.get("addpath"):
        argv += ["--addpath", str(k["addpath"])]
    if k.get("withdraw"):
        argv.append("--withdraw")
    if k.get("churn_rate"):
        argv += ["--churn-rate", str(k["churn_rate"]), "--churn-seconds", str(k["churn_seconds"])]
        if k.get("churn_attrs"):
            argv += ["--churn-attrs", k["churn_attrs"]]
        if k.get("churn_prefixes"):
            argv += ["--churn-prefixes", str(k["churn_prefixes"])]
        if k.get("restore"):
            # hold the loaded table as long as the restored one: "after load"
            # is then sampled with the load's buffers drained, like "restored"
            argv += ["--churn-restore", "--restore-settle", str(RESTORE_SETTLE),
                     "--churn-settle", str(RESTORE_SETTLE)]
    if not verify_attrs:
        # BIRD re-encodes attributes (not byte-identical); the same flags for
        # every daemon keep the load generator's work identical
        argv.append("--no-verify-attrs")
    if daemon == "nullrelay":
        argv.append("--no-expect-rr")  # it copies bytes: no ORIGINATOR_ID/CLUSTER_LIST
    # FRR and GoBGP reject loopback next hops (martian); give every daemon the same
    # routable-looking ones (RFC 6598 shared space, 2001:db8::/32 for IPv6)
    argv += ["--next-hop-base", "100.64.0.1"]
    return argv + extra.split()


# ---------------------------------------------------------------- /proc sampling

def proc_counters(pid):
    """(CPU seconds, minor page faults) of pid, from one read of /proc/PID/stat:
    utime + stime, and minflt - pages the kernel had to map (and zero)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tck, int(fields[7])


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """RSS every 0.5 s (for S5's memory before/after) and the last CPU/VmHWM seen;
    with mem_ctl = (ricochet CLI, control socket), ricochetd's own accounting
    (`show memory --json`) every 2 s: what the RSS is made of."""

    def __init__(self, pid, mem_ctl=None):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_ev = threading.Event()
        self.rss = []   # (t, kB)
        self.mem_ctl = mem_ctl
        self.mem = []   # (t, dict)
        self.next_mem = 0.0
        self.cpu = 0.0
        self.minflt = 0
        self.hwm = 0
        self.t0 = time.monotonic()

    def sample(self):
        try:
            self.cpu, self.minflt = proc_counters(self.pid)
            self.hwm = max(self.hwm, proc_status_kb(self.pid, "VmHWM"))
            self.rss.append((time.monotonic() - self.t0, proc_status_kb(self.pid, "VmRSS")))
        except (OSError, ValueError, IndexError):
            pass
        t = time.monotonic() - self.t0
        if self.mem_ctl and t >= self.next_mem:
            self.next_mem = t + 2.0
            m = H.ricochet_json(*self.mem_ctl, "show", "memory")
            if m is not None:
                self.mem.append((t, m))

    def run(self):
        while not self.stop_ev.wait(0.5):
            self.sample()

    def finish(self):
        self.stop_ev.set()
        self.join(timeout=2)
        self.sample()


# ---------------------------------------------------------------- one run

def xfer_ns(bins):
    """The cache-line hand-over time from CPU 0 to CPU 1 now (bench/xfer.c),
    or None.  The development VM's host moves the vCPUs between cores that
    share a cache ("near", 35-60 ns) and cores that do not ("far", 180-200
    ns); every hand-over between a daemon's threads pays it."""
    x = bins.get("xfer")
    if not x or not os.access(x, os.X_OK):
        return None
    try:
        v = float(subprocess.run([x], stdout=subprocess.PIPE, text=True, timeout=10).stdout)
    except (subprocess.SubprocessError, ValueError, OSError):
        return None
    return v or None


def placement(x0, x1):
    """near / far when both readings agree (< 90 ns, > 140 ns), else mixed."""
    if not isinstance(x0, (int, float)) or not isinstance(x1, (int, float)):
        return None
    if max(x0, x1) < 90:
        return "near"
    if min(x0, x1) > 140:
        return "far"
    return "mixed"


def run_once(a, bins, daemon, scen, k, rundir):
    """Start daemon, drive it, return a dict of figures (or a 'failed' reason)."""
    res = {"daemon": daemon, "scenario": scen}
    kind, bins = kind_of(daemon), bins_for(a, bins, daemon)
    tag = daemon.replace(":", "-")
    with H.Harness(keep=a.verbose, verbose=a.verbose, prefix=f"rb-{scen}-{tag}-") as h:
        wd = h.dir("daemon")
        peers = make_peers(a, k)
        argv = gen_config(kind, peers, wd, bins, a.limit)
        if H.port_in_use("127.0.0.1", 179):
            H.wait_until(lambda: not H.port_in_use("127.0.0.1", 179), 15, "127.0.0.1:179 free")
        res["xfer0_ns"] = xfer_ns(bins)
        proc = h.spawn(tag, argv, wd)
        try:
            H.wait_until(lambda: (proc.alive() or (_ for _ in ()).throw(
                H.HarnessError(f"{daemon} exited: {proc.tail(5)}"))) and
                H.tcp_listening("127.0.0.1", 179), 60, f"{daemon} listening")
        except H.HarnessError as e:
            res["failed"] = f"did not start: {e}"
            _save_logs(wd, rundir)
            return res
        post_start(kind, wd)
        mem_ctl = None
        if kind == "ricochetd":
            cli = os.path.join(os.path.dirname(os.path.abspath(bins["ricochetd"])), "ricochet")
            if os.path.exists(cli):
                mem_ctl = (cli, os.path.join(wd, "ricochet.sock"))
        samp = Sampler(proc.pid, mem_ctl)
        cpu0, flt0 = proc_counters(proc.pid)
        samp.start()
        out_json = os.path.join(rundir, "load.json")
        out_tl = os.path.join(rundir, "timeline.tl")
        largv = load_argv(bins, k, out_json, out_tl, a.limit, kind, a.load_args, a.verify_attrs)
        with open(os.path.join(rundir, "command"), "w") as f:
            f.write(" ".join(largv) + "\n")
        t0 = time.monotonic()
        budget = (a.limit * (3 if k.get("withdraw") or k.get("restore") else 2)
                  + k.get("churn_seconds", 0) + (RESTORE_SETTLE if k.get("restore") else 0) + 60)
        try:
            with open(os.path.join(rundir, "load.log"), "w") as lf:
                lp = subprocess.run(largv, stdout=lf, stderr=subprocess.STDOUT, timeout=budget)
            res["load_exit"] = lp.returncode
        except subprocess.TimeoutExpired:
            res["load_exit"] = None
            res["failed"] = f"did not finish within {budget:.0f} s (load tool killed)"
        res["wall"] = time.monotonic() - t0
        samp.finish()
        res["xfer_ns"] = xfer_ns(bins)
        res["placement"] = placement(res.get("xfer0_ns"), res["xfer_ns"])
        res["cpu_s"] = samp.cpu - cpu0
        res["minor_faults"] = samp.minflt - flt0
        res["peak_rss_mib"] = samp.hwm / 1024.0
        res["rss_samples"] = samp.rss[::max(1, len(samp.rss) // 200)]
        if samp.mem:
            # ricochetd's own accounting when jemalloc held the most: what the peak is made of
            res["mem_at_peak"] = max(samp.mem, key=lambda m: m[1].get("resident_bytes", 0))[1]
        if not proc.alive():
            res["failed"] = res.get("failed") or f"{daemon} died during the run: {proc.tail(5)}"
        _save_logs(wd, rundir)
        if os.path.exists(out_json):
            try:
                with open(out_json) as f:
                    j = json.load(f)
                _digest(res, j, a.limit)
                _memory_around_churn(res, samp.rss, samp.mem, j.get("phases"), t0 - samp.t0,
                                     RESTORE_SETTLE if k.get("restore") else 0.0)
            except (OSError, ValueError) as e:
                res["failed"] = res.get("failed") or f"unreadable load JSON: {e}"
        elif "failed" not in res:
            ex = res.get("load_exit")
            why = f"exit {ex}"
            if ex == -signal.SIGKILL:
                # nothing here sends SIGKILL before the budget runs out: the OOM killer
                why += ", SIGKILL: out of memory? (dmesg)"
            res["failed"] = f"ricochet-load wrote no JSON ({why})"
    return res


def _digest(res, j, limit):
    ph = j.get("phases", {})

    def secs(name):
        p = ph.get(name) or {}
        if not p.get("ran"):
            return None
        if not p.get("ok"):
            note = p.get("note") or ""
            if "timeout" in note.lower() or p.get("seconds", 0) >= limit * 0.99:
                return f"did not finish within {limit:.0f} s"
            return f"failed: {note or 'see load.log'}"
        return p.get("seconds")

    res["connect_s"] = secs("connect")
    res["convergence_s"] = secs("announce")
    res["withdraw_s"] = secs("withdraw")
    ch = j.get("churn") or {}
    if (ph.get("churn") or {}).get("ran"):
        res["churn_p50_ms"] = ch.get("p50_ms")
        res["churn_p99_ms"] = ch.get("p99_ms")
        res["churn_max_ms"] = ch.get("max_ms")
    res["load_ok"] = j.get("ok")
    for name in ("connect", "announce", "churn", "withdraw"):
        p = ph.get(name) or {}
        if p.get("ran") and not p.get("ok") and not res.get("failed"):
            res["failed"] = f"{name} phase: {p.get('note') or 'failed'}"
    res["errors"] = (j.get("errors") or [])[:5]
    mons = j.get("monitors") or []
    if mons:
        bad = {}
        for m in mons:
            for kk, v in (m.get("verify") or {}).items():
                if kk != "present" and v:
                    bad[kk] = bad.get(kk, 0) + v
        res["verify_problems"] = bad


def _memory_around_churn(res, rss, mem=(), phases=None, offset=0.0, settle=0.0):
    """S5: the daemon's RSS once the table had converged (one second before
    the churn began), halfway through, when the churn had settled and - with
    --churn-restore - once the original table was back and held: the same
    routes as before the churn, so any difference is what the churn left
    behind.  For ricochetd also its own accounting at the same moments.
    Phase times come from ricochet-load's JSON (seconds since it started);
    offset places them on the sampler's clock."""
    if res.get("churn_p50_ms") is None or not rss:
        return
    ph = phases or {}
    churn = ph.get("churn") or {}
    if not churn.get("start_s") or not churn.get("end_s"):
        return
    near = lambda tt: min(rss, key=lambda s: abs(s[0] - tt))  # noqa: E731
    before = near(offset + churn["start_s"] - 1.0)
    after = near(offset + churn["end_s"])
    mid_t = before[0] + (after[0] - before[0]) / 2
    res["rss_after_load_mib"] = before[1] / 1024.0
    res["rss_mid_churn_mib"] = near(mid_t)[1] / 1024.0
    res["rss_after_churn_mib"] = after[1] / 1024.0
    rest = ph.get("restore") or {}
    rest_t = None
    if rest.get("ok") and rest.get("end_s"):
        # late in the hold: the allocator has returned what it will return
        rest_t = offset + rest["end_s"] + max(0.0, settle - 0.7)
        res["rss_after_restore_mib"] = near(rest_t)[1] / 1024.0
    if mem:
        # `show memory` runs every 2 s: take the last sample at or before the
        # moment, so that "load" cannot be one taken after the churn began
        def pick(tt):
            earlier = [s for s in mem if s[0] <= tt]
            return (earlier[-1] if earlier else mem[0])[1]
        res["mem_around_churn"] = {"load": pick(before[0]), "mid": pick(mid_t), "end": pick(after[0])}
        if rest_t is not None:
            res["mem_around_churn"]["restored"] = pick(rest_t)


def _save_logs(wd, rundir):
    for name in os.listdir(wd):
        if name.endswith((".log", ".conf", ".yaml", ".toml")):
            try:
                shutil.copy(os.path.join(wd, name), os.path.join(rundir, name))
            except OSError:
                pass


# ---------------------------------------------------------------- aggregation

def median_of(runs, key):
    vals = [r.get(key) for r in runs]
    nums = [v for v in vals if isinstance(v, (int, float))]
    if len(nums) == len(vals) and nums:
        return statistics.median(nums)
    strs = [v for v in vals if isinstance(v, str)]
    return strs[0] if strs else None


def aggregate(runs):
    agg = {}
    for key in ("convergence_s", "withdraw_s", "cpu_s", "minor_faults", "peak_rss_mib", "connect_s",
                "churn_p50_ms", "churn_p99_ms", "churn_max_ms", "rss_after_load_mib",
                "rss_mid_churn_mib", "rss_after_churn_mib", "rss_after_restore_mib"):
        agg[key] = median_of(runs, key)
    fails = [r["failed"] for r in runs if r.get("failed")]
    if fails:
        agg["failed"] = fails[0]
        if isinstance(agg["convergence_s"], (int, float)) and len(fails) == len(runs):
            agg["convergence_s"] = None
    agg["runs"] = len(runs)
    pl = [r.get("placement") for r in runs if r.get("placement")]
    if pl:
        agg["placement"] = ", ".join(f"{pl.count(p)} {p}" for p in ("near", "far", "mixed")
                                     if pl.count(p))
    conv = [r["convergence_s"] for r in runs if isinstance(r.get("convergence_s"), (int, float))]
    if len(conv) > 1:
        agg["convergence_min_s"], agg["convergence_max_s"] = min(conv), max(conv)
    # median run (by convergence) supplies the timeline for the plot
    ok = [r for r in runs if isinstance(r.get("convergence_s"), (int, float))]
    if ok:
        ok.sort(key=lambda r: r["convergence_s"])
        agg["timeline"] = ok[len(ok) // 2].get("timeline")
    elif runs:
        # no run converged (the time limit): its curve up to the limit is
        # still drawn, so the plot shows how far the daemon got
        agg["timeline"] = runs[0].get("timeline")
        agg["timeline_partial"] = True
    return agg


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if unit == "s":
        if v < 0.1:
            return f"{v * 1000:.2f} ms"
        return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    return f"{v:.2f}"


def ratio(num, den):
    if isinstance(num, (int, float)) and isinstance(den, (int, float)) and den > 0:
        return num / den
    return None


def table(results, scenarios, daemons):
    hdr = ["scenario", "daemon", "convergence", "withdraw", "CPU s", "peak RSS",
           "other/ricochetd", "x null relay", "churn p50/p99/max ms", "runs by placement", "note"]
    rows = []
    for s in scenarios:
        rc = (results.get(s, {}).get("ricochetd") or {}).get("convergence_s")
        nr = (results.get(s, {}).get("nullrelay") or {}).get("convergence_s")
        for d in daemons:
            g = results.get(s, {}).get(d)
            if g is None:
                continue
            conv = g.get("convergence_s")
            sp = ratio(conv, rc) if d != "ricochetd" else None
            churn = "-"
            if isinstance(g.get("churn_p50_ms"), (int, float)):
                churn = f"{g['churn_p50_ms']:.1f}/{g['churn_p99_ms']:.1f}/{g['churn_max_ms']:.1f}"
                if isinstance(g.get("rss_after_load_mib"), (int, float)):
                    mid = g.get("rss_mid_churn_mib")
                    churn += (f" (RSS {g['rss_after_load_mib']:.0f} -> "
                              + (f"{mid:.0f} -> " if isinstance(mid, (int, float)) else "")
                              + f"{g['rss_after_churn_mib']:.0f} MiB"
                              + (f", restored {g['rss_after_restore_mib']:.0f} MiB"
                                 if isinstance(g.get("rss_after_restore_mib"), (int, float)) else "")
                              + ")")
            cell = fmt(conv, "s")
            if isinstance(g.get("convergence_min_s"), (int, float)):
                lo, hi = g["convergence_min_s"], g["convergence_max_s"]
                cell += (f" ({lo * 1000:.2f}-{hi * 1000:.2f} ms)" if hi < 0.1 else
                         f" ({lo * 1000:.0f}-{hi * 1000:.0f} ms)" if hi < 1 else
                         f" ({lo:.2f}-{hi:.2f} s)")
            rows.append([s, d, cell, fmt(g.get("withdraw_s"), "s"),
                         fmt(g.get("cpu_s")), fmt(g.get("peak_rss_mib"), "MiB"),
                         f"{sp:.1f}x" if sp else "-",
                         f"{ratio(conv, nr):.1f}x" if ratio(conv, nr) else "-",
                         churn, g.get("placement") or "-",
                         g.get("failed") or g.get("skipped") or ""])
    return hdr, rows


def by_placement(raw, scenarios, daemons):
    """Lines giving each daemon's median convergence over its near runs and
    over its far runs (mixed runs left out): ratios are only read between
    runs of the same placement."""
    out = []
    for s in scenarios:
        for d in daemons:
            runs = raw.get(s, {}).get(d) or []
            cells = []
            for p in ("near", "far"):
                v = [r["convergence_s"] for r in runs if r.get("placement") == p
                     and isinstance(r.get("convergence_s"), (int, float))]
                if v:
                    cells.append(f"{p} {fmt(statistics.median(v), 's')} (n={len(v)})")
            if cells:
                out.append(f"{s} {d}: " + ", ".join(cells))
    return out


def print_table(hdr, rows):
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)] if rows else [len(h) for h in hdr]
    line = lambda r: "  ".join(str(x).ljust(n) for x, n in zip(r, w))  # noqa: E731
    print(line(hdr))
    print("  ".join("-" * n for n in w))
    for r in rows:
        print(line(r))


def markdown(hdr, rows, a, meta):
    out = [f"# Route reflector benchmark ({meta['date']})", "",
           f"Machine: {meta['machine']}.  Runs per cell: {a.runs} (medians).  "
           f"Limit: {a.limit:.0f} s per daemon, scenario and run.  Scale: {a.scale}.", "",
           f"Command: `{meta['command']}`", "",
           "Convergence: from the first byte sent by a feeder until every monitor holds the "
           "expected table (ricochet-load).  `other/ricochetd` is that daemon's convergence time "
           "divided by ricochetd's (how many times faster ricochetd is); `x null relay` is the "
           "daemon's time as a multiple of the null relay's.", "",
           "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    out += ["| " + " | ".join(str(x).replace("|", "/") for x in r) + " |" for r in rows]
    out += ["", "Scenarios:"] + [f"- {s}: {SCENARIOS[s][0]}" for s in a.scenarios]
    return "\n".join(out) + "\n"


def plot(results, scen, outdir):
    gp = shutil.which("gnuplot")
    files, titles = [], []
    for d, g in results.get(scen, {}).items():
        tl = g.get("timeline")
        if tl and os.path.exists(tl) and os.path.getsize(tl) > 0:
            files.append(tl)
            # no space before "(unfinished)": plot.gp splits titles on spaces
            titles.append(d + ("(unfinished)" if g.get("timeline_partial") else ""))
    if not files:
        return None
    if not gp:
        print("note: gnuplot not found; no plot drawn")
        return None
    base = os.path.join(outdir, f"plot-{scen}")
    expr = (f"files='{' '.join(files)}'; titles='{' '.join(titles)}'; "
            f"outbase='{base}'; scen='{scen}: " + SCENARIOS[scen][0].replace("'", "''") + "'")
    p = subprocess.run([gp, "-e", expr, os.path.join(HERE, "plot.gp")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print(f"note: gnuplot failed: {p.stdout.strip()[:300]}")
        return None
    return base


# ---------------------------------------------------------------- --verify

def verify(a, bins):
    """Each daemon with its generated configuration (explicit peers, then
    ranges, then ADD-PATH) must take sessions from BIRD clients standing in
    for feeders/monitors and reflect a route with RR attributes."""
    ok_all = True
    for daemon in a.daemons:
        kind, db = kind_of(daemon), bins_for(a, bins, daemon)
        miss = missing_for(kind, db)
        if miss:
            print(f"{daemon}: not verified, missing {', '.join(miss)}")
            continue
        for variant in ("explicit", "ranges", "addpath"):
            t0 = time.monotonic()
            try:
                msg = _verify_one(a, db, kind, variant)
                print(f"{daemon:10s} {variant:9s} OK   ({time.monotonic() - t0:.1f} s) {msg}")
            except (H.HarnessError, AssertionError, OSError) as e:
                ok_all = False
                print(f"{daemon:10s} {variant:9s} FAIL ({time.monotonic() - t0:.1f} s) {e}")
    return 0 if ok_all else 1


def _verify_one(a, bins, daemon, variant):
    peers = C.Peers(2, 2, addpath=2 if variant == "addpath" else 0, v6=True,
                    ranges=variant == "ranges")
    with H.Harness(keep=a.verbose, verbose=a.verbose, prefix=f"rb-verify-{daemon}-") as h:
        wd = h.dir("daemon")
        argv = gen_config(daemon, peers, wd, bins, 120)
        H.wait_until(lambda: not H.port_in_use("127.0.0.1", 179), 15, "127.0.0.1:179 free")
        proc = h.spawn(tag, argv, wd)
        H.wait_until(lambda: proc.alive() and H.tcp_listening("127.0.0.1", 179), 30,
                     f"{daemon} listening")
        post_start(daemon, wd)
        tgt = ("127.0.0.1", 65000)
        shared = "10.200.0.0/24"
        f = [H.BirdClient(h, f"feeder{i}", C.load_addr(1, i), 65000, target=tgt,
                          v4=[f"10.10{i}.0.0/24", shared], v6=[f"2001:db8:10{i}::/48"],
                          # FRR and GoBGP drop 127/8 next hops: prove their
                          # configurations with documentation next hops
                          own_nexthop=daemon not in ("frr", "gobgp")) for i in range(2)]
        m = [H.BirdClient(h, f"monitor{i}", C.load_addr(2, i), 65000, target=tgt,
                          addpath_rx=variant == "addpath") for i in range(2)]
        for c in f + m:
            c.start()
        for c in f + m:
            try:
                c.wait_established(45)
            except H.HarnessError as e:
                raise AssertionError(f"{c.name} ({c.addr}): {e}; daemon log: {proc.tail(4)}")
        want = ["10.100.0.0/24", "10.101.0.0/24", shared]
        want6 = ["2001:db8:100::/48", "2001:db8:101::/48"]

        if daemon == "nullrelay":
            # no table: a monitor that connects after the feeders' UPDATEs (and
            # BIRD's End-of-RIB counts as an UPDATE) sees nothing; sessions suffice
            return "sessions Established (no table to check: the relay keeps none)"

        def have_all():
            r4, r6 = m[0].routes(4), m[0].routes(6)
            return all(p in r4 for p in want) and (daemon == "nullrelay" or
                                                   all(p in r6 for p in want6))
        try:
            H.wait_until(have_all, 30, "monitor0 to hold the feeders' routes")
        except H.HarnessError:
            raise AssertionError(f"monitor0 holds {sorted(m[0].all_routes())}, want "
                                 f"{want + want6}")
        r4 = m[0].routes(4)
        p = r4["10.100.0.0/24"][0]
        if p.next_hop != f[0].nh4:
            raise AssertionError(f"next hop changed: {p.next_hop}, sent {f[0].nh4}")
        notes = [f"nh {p.next_hop}"]
        if daemon != "nullrelay":
            if p.originator_id != C.load_addr(1, 0) or p.cluster_list != ["127.0.0.1"]:
                raise AssertionError(f"RR attributes wrong: {p}")
            notes.append(f"originator {p.originator_id} cluster {p.cluster_list}")
        if variant == "addpath":
            try:
                H.wait_until(lambda: len(m[0].routes(4).get(shared, [])) == 2, 15,
                             "2 ADD-PATH paths")
            except H.HarnessError:
                raise AssertionError(f"ADD-PATH: monitor0 has {m[0].routes(4).get(shared)}")
            notes.append("2 paths via ADD-PATH")
        return ", ".join(notes)


# ---------------------------------------------------------------- main

def main():
    a = parse_args()
    bins = binaries(a)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.abspath(a.out or os.path.join(a.build, "bench-results", stamp))
    if os.geteuid() != 0 and not a.dry_run:
        print("error: needs root (daemons listen on port 179)")
        return 2
    if a.verify:
        return verify(a, bins)
    os.makedirs(outdir, exist_ok=True)

    if a.dry_run:
        for s in a.scenarios:
            k = knobs_for(a, s)
            for d in a.daemons:
                kind, db = kind_of(d), bins_for(a, bins, d)
                wd = os.path.join(outdir, "configs", s, d.replace(":", "-"))
                os.makedirs(wd, exist_ok=True)
                argv = gen_config(kind, make_peers(a, k), wd, db, a.limit)
                largv = load_argv(db, k, "load.json", "timeline.tl", a.limit, kind, a.load_args,
                                  a.verify_attrs)
                with open(os.path.join(wd, "commands"), "w") as f:
                    f.write(" ".join(argv) + "\n" + " ".join(largv) + "\n")
                miss = missing_for(kind, db)
                print(f"{s} {d:10s} -> {wd}" + (f"  (missing: {', '.join(miss)})" if miss else ""))
        if H.have(bins["load"]):
            print(f"note: ricochet-load not found at {bins['load']} (build it, or set RICOCHET_LOAD)")
        return 0

    if a.micro:
        bench = os.path.join(a.build, "bench", "ricochet-bench")
        if not os.access(bench, os.X_OK):
            print(f"error: {bench} not built (needs libbenchmark-dev)")
            return 2
        print("== micro: Google Benchmark micro-benchmarks (medians of 3)", flush=True)
        with open(os.path.join(outdir, "micro.txt"), "w") as f:
            r = subprocess.run([bench, "--benchmark_min_time=0.5", "--benchmark_repetitions=3",
                                "--benchmark_report_aggregates_only=true"],
                               stdout=subprocess.PIPE, text=True)
            f.write(r.stdout)
        print("".join(l + "\n" for l in r.stdout.splitlines() if "median" in l), end="")
        if not a.scenarios:
            return r.returncode

    if H.have(bins["load"]):
        print(f"error: ricochet-load not found at {bins['load']}: build it "
              f"(ninja -C {a.build}) or set RICOCHET_LOAD")
        return 2
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}
    results = {}
    raw = {}
    for s in a.scenarios:
        k = knobs_for(a, s)
        print(f"== {s}: {SCENARIOS[s][0]}  {k}", flush=True)
        todo = []
        need, avail = load_memory(k), mem_available()
        too_big = (f"ricochet-load's monitor tables need {need / 2**30:.1f} GiB, "
                   f"{avail / 2**30:.1f} GiB available"
                   if avail is not None and need > avail else None)
        for d in a.daemons:
            miss = missing_for(kind_of(d), bins_for(a, bins, d))
            if too_big:
                print(f"   {d}: not run, {too_big}")
                results.setdefault(s, {})[d] = {"skipped": f"not run: {too_big}"}
            elif miss:
                print(f"   {d}: skipped, missing {', '.join(miss)}")
                results.setdefault(s, {})[d] = {"skipped": f"not run: {', '.join(miss)} missing"}
            else:
                todo.append(d)
        # Rounds: run i of every daemon before run i + 1 of any, so that a slow
        # drift of the machine (other tenants, thermal, page cache) falls on all
        # daemons alike instead of on whichever ran last.
        runs = {d: [] for d in todo}
        gave_up = set()
        for i in range(a.runs):
            for d in todo:
                if d in gave_up:
                    continue
                rundir = os.path.join(outdir, s, d.replace(":", "-"), f"run{i + 1}")
                os.makedirs(rundir, exist_ok=True)
                r = run_once(a, bins, d, s, k, rundir)
                r["timeline"] = os.path.join(rundir, "timeline.tl")
                runs[d].append(r)
                print(f"   {d} run {i + 1}: convergence {fmt(r.get('convergence_s'), 's')}, "
                      f"withdraw {fmt(r.get('withdraw_s'), 's')}, cpu {fmt(r.get('cpu_s'))} s, "
                      f"rss {fmt(r.get('peak_rss_mib'), 'MiB')}, faults {r.get('minor_faults', '-')}"
                      + (f", xfer {r['xfer0_ns']:.0f}/{r['xfer_ns']:.0f} ns ({r['placement']})"
                         if r.get("placement") else "")
                      + (f"  [{r['failed']}]" if r.get("failed") else "")
                      + (f"  verify: {r['verify_problems']}" if r.get("verify_problems") else ""),
                      flush=True)
                mac = r.get("mem_around_churn")
                if mac:
                    when = [w for w in ("load", "mid", "end", "restored") if w in mac]
                    print(f"     memory {'/'.join(when)}: " + ", ".join(
                        f"{key} {'/'.join(str(mac[w].get(key, '-')) for w in when)}"
                        for key in ("attribute_sets", "allocated_bytes", "resident_bytes",
                                    "pathset_bytes", "node_bytes")), flush=True)
                if r.get("failed") and "did not finish" in r["failed"]:
                    gave_up.add(d)  # its next runs would not finish either
        for d in todo:
            raw.setdefault(s, {})[d] = runs[d]
            results.setdefault(s, {})[d] = aggregate(runs[d])
    hdr, rows = table(results, a.scenarios, a.daemons)
    print()
    print_table(hdr, rows)
    bp = by_placement(raw, a.scenarios, a.daemons)
    if bp:
        print("\nmedian convergence by placement (xfer before and after the run, both < 90 ns: "
              "near, both > 140 ns: far):")
        print("\n".join("  " + line for line in bp))
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "scenarios": {s: SCENARIOS[s][0] for s in a.scenarios},
                   "medians": results, "runs": raw}, f, indent=1, default=str)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(markdown(hdr, rows, a, meta))
        if bp:
            f.write("\nMedian convergence by placement (`ricochet-xfer` before and after each run: "
                    "both < 90 ns near, both > 140 ns far):\n\n" + "".join(f"- {x}\n" for x in bp))
    for s in a.scenarios:
        b = plot(results, s, outdir)
        if b:
            print(f"plot: {b}.png {b}.svg")
    print(f"results: {outdir}/results.md, results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
