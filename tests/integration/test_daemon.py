#!/usr/bin/env python3
"""End-to-end checks of ricochetd with synthetic peers (ricochet-load) and the CLI.

Uses its own loopback block 127.0.77.0/24: ricochetd on 127.0.77.1:179, feeders
from 127.0.77.10, monitors from 127.0.77.100.  Every process it starts is killed
on exit; every wait is bounded.

Checks: the seed's target (8 peers, 10,000 routes) converges, is verified and
withdrawn; churn latency is measured; killing a feeder withdraws its routes
everywhere; the CLI answers (table and JSON); a reload that changes nothing
keeps every session; a reload with a bad file keeps the running configuration
and names file, line and key; `--check` rejects a bad file the same way;
iBGP non-client feeders are not sent withdrawals of each other's routes;
a quiet RIB that grew by 2 x 500,000 routes has its heap settled into huge
pages (counted by `show memory`).
"""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

ADDR = "127.0.77.1"


def main():
    ap = H.arg_parser(verbose=False)
    a = ap.parse_args()
    d = os.path.abspath(a.build)
    rd, cli, load = (os.path.join(d, p) for p in ("io/ricochetd", "io/ricochet", "bench/ricochet-load"))
    H.require(root="port 179", programs=(rd, cli, load))
    with H.Run("ricochet-daemon-", keep=a.keep) as run:
        tmp = run.root
        sock = os.path.join(tmp, "ctl.sock")
        cfg = os.path.join(tmp, "r.yaml")
        base = f"""router-id: {ADDR}
asn: 65000
listen: [{{ address: {ADDR}, port: 179 }}]
control-socket: {sock}
peer-ranges:
  - {{ prefix: 127.0.77.0/24, asn: 65000, role: rr-client, add-path: {{ send: 2, receive: true }} }}
"""
        open(cfg, "w").write(base)
        proc = run.popen([rd, "-c", cfg], log="ricochetd.log")
        check = run.checks.check

        def ctl(*args, js=True):
            return H.ricochet_ctl(cli, sock, *args, js=js, timeout=10)

        def settled(deadline_s=20):
            """Wait until the previous run's sessions are down and their
            routes swept: each run reuses the same feeder and monitor
            addresses, and a monitor that connects while the daemon is still
            withdrawing the last run's routes is rightly sent them first
            (announced, then withdrawn), which the counts below would take for
            resends.  Returns (settled, the last summary)."""
            summ = {}
            end = time.time() + deadline_s
            while time.time() < end:
                rc, summ = ctl("show", "summary")
                if rc == 0 and isinstance(summ, dict) and summ.get("established") == 0 and \
                        summ.get("ipv4_prefixes") == 0 and summ.get("ipv6_prefixes") == 0:
                    return True, summ
                time.sleep(0.05)
            return False, summ

        def run_load(*extra, timeout=120):
            ok, summ = settled()
            check("previous-run-swept", ok, str(summ)[:300])
            out = os.path.join(tmp, "load.json")
            cmd = [load, "-q", "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base", "127.0.77.10",
                   "--monitor-base", "127.0.77.100", "--json", out, "--timeout", "30"] + list(extra)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            res = json.load(open(out)) if os.path.exists(out) else {}
            return r.returncode, res, r.stdout + r.stderr

        for _ in range(50):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        rc, res, txt = run_load("--feeders", "4", "--monitors", "4", "--routes", "2500", "--withdraw")
        check("s1-converges-verified-withdrawn", rc == 0, txt[-800:])
        rc, res, txt = run_load("--feeders", "2", "--monitors", "2", "--routes", "5000",
                                "--churn-rate", "2000", "--churn-seconds", "3", "--kill-feeder")
        check("churn-and-kill-feeder", rc == 0, txt[-800:])
        # ADD-PATH send (2 paths): two feeders with the same prefixes, then
        # attribute churn; the clients must end with every path's latest
        # attributes (verified by ricochet-load), and receive each path once
        # plus once per change: a path is not re-sent when only another path
        # of its prefix changed
        # --establish-settle: the clients' initial table dumps (of an empty
        # table) are over before the feeders announce.  A client whose dump
        # still runs when the routes arrive is sent some paths twice, once
        # live and once by its dump (legal, and not what this check is
        # about); under ThreadSanitizer that happened in one run of three
        rc, res, txt = run_load("--feeders", "2", "--monitors", "2", "--routes", "5000",
                                "--v6-routes", "1000", "--shared", "--addpath", "2",
                                "--churn-rate", "2000", "--churn-seconds", "3",
                                "--establish-settle", "0.5")
        sent = (res.get("churn") or {}).get("sent", 0)
        ann = [m.get("announces", -1) for m in res.get("monitors", [])]
        # withdrawals, duplicates and replacements tell a resend from a route
        # that came and went (there is no withdraw phase in this run)
        seen = [{k: m.get(k) for k in ("withdraws", "dup_announces", "replaced")}
                for m in res.get("monitors", [])]
        check("addpath-churn-verified-no-resends",
              rc == 0 and sent > 0 and len(ann) == 2 and all(12000 <= a <= 12000 + sent for a in ann),
              f"rc {rc} churn sent {sent} announces {ann} {seen} " + txt[-600:])
        rc, peers = ctl("show", "peers")
        check("cli-show-peers-json", rc == 0 and isinstance(peers, list) and len(peers) >= 8, str(peers)[:300])
        rc, summ = ctl("show", "summary")
        check("cli-show-summary-json", rc == 0 and summ.get("asn") == 65000, str(summ)[:300])
        rc, txt = ctl("show", "memory", js=False)
        check("cli-show-memory", rc == 0 and "attribute sets" in txt and "in huge pages" in txt, txt[:300])
        # the heap-settling counters (rib/mem.h); these tables are far below
        # the 64 MiB of growth that makes the daemon settle, so none ran
        rc, mem = ctl("show", "memory")
        check("cli-show-memory-json-hugepages",
              rc == 0 and isinstance(mem, dict) and mem.get("settles") == 0 and
              isinstance(mem.get("huge_page_bytes"), int) and mem.get("last_settle_ns") == 0, str(mem)[:300])
        rc, txt = ctl("show", "nonsense", js=False)
        check("cli-unknown-command-fails", rc != 0, txt[:200])
        check("control-socket-mode-0600", (os.stat(sock).st_mode & 0o777) == 0o600)

        # reload with sessions up: start a long-lived load in the background
        bg = run.popen([load, "-q", "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base",
                        "127.0.77.10", "--monitor-base", "127.0.77.100", "--feeders", "1",
                        "--monitors", "1", "--routes", "1000", "--churn-rate", "100",
                        "--churn-seconds", "6", "--timeout", "30"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        rc, before = ctl("show", "peers")
        up_before = {p["address"]: p["uptime_s"] for p in before if p["state"] == "Established"}
        open(cfg, "w").write(base + "log-level: info\n")
        rc, txt = ctl("reload", js=False)
        time.sleep(1)
        rc2, after = ctl("show", "peers")
        # a failed `show peers` answers with text, not a list: a failure here, not a crash
        kept = rc2 == 0 and isinstance(after, list) and \
            all(any(p["address"] == a and p["state"] == "Established" for p in after) for a in up_before)
        check("reload-keeps-unaffected-sessions", rc == 0 and len(up_before) == 2 and kept,
              f"{txt} {up_before} show peers exit {rc2}: {after}")
        open(cfg, "w").write(base + "peers:\n  - { address: 127.0.77.5, asn: abc }\n")
        rc, txt = ctl("reload", js=False)
        check("reload-bad-file-keeps-running-config",
              rc != 0 and "r.yaml:8" in txt and "asn" in txt and proc.poll() is None, txt[:300])
        r = subprocess.run([rd, "-c", cfg, "--check"], capture_output=True, text=True, timeout=10)
        check("check-names-file-line-key", r.returncode != 0 and "r.yaml:8:" in r.stderr and "peers[0].asn" in r.stderr,
              r.stderr[:300])
        bg.wait(timeout=60)
        # non-clients (RFC 4456): two iBGP non-client feeders, their routes go
        # to the clients only, so when they withdraw them, neither feeder may
        # be sent withdrawals of the other's prefixes (it never got them)
        open(cfg, "w").write(base + "peers:\n"
                             "  - { address: 127.0.77.50, role: ibgp, passive: true }\n"
                             "  - { address: 127.0.77.51, role: ibgp, passive: true }\n")
        rc, txt = ctl("reload", js=False)
        rc, res, txt = run_load("--feeders", "2", "--monitors", "1", "--routes", "5000", "--withdraw",
                                "--feeder-base", "127.0.77.50")
        fin = [f.get("bytes_in", -1) for f in res.get("feeders", [])]
        check("non-client-feeders-get-no-withdrawals",
              rc == 0 and len(fin) == 2 and all(0 <= b < 1000 for b in fin),
              f"rc {rc} feeder bytes in {fin} " + txt[-600:])
        settle_check(run, ctl, load, tmp)
        check("daemon-still-running", proc.poll() is None)
    return run.rc


def thp_mode():
    """The kernel's transparent huge page mode ('always', 'madvise', 'never'), or None."""
    try:
        txt = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return None
    return txt[txt.index("[") + 1:txt.index("]")] if "[" in txt else None


def settle_check(run, ctl, load, tmp):
    """The heap settling trigger (io/daemon.c settle_tick): a table of 2 x
    500,000 routes grows jemalloc's resident memory by more than the 64 MiB
    that, with the RIB quiet for two seconds, makes the main thread collapse
    the heap into huge pages.  The load holds its table for 12 s before a
    short churn, so the daemon must settle while the routes are still there,
    and `show memory` must then count the settle and report memory in huge
    pages.  Where the kernel cannot collapse (THP 'never', no MADV_COLLAPSE)
    the daemon must say so once in its log instead.  Not judged under the
    sanitizers: their allocator, not jemalloc, holds the table there, so
    jemalloc's resident memory does not grow."""
    check = run.checks.check
    if os.environ.get("RICOCHET_SANITIZED"):
        print("settle trigger: not judged under the sanitizers (jemalloc does not hold the table)",
              flush=True)
        return
    rc, mem = ctl("show", "memory")
    before = mem.get("settles", -1) if isinstance(mem, dict) else -1
    out = os.path.join(tmp, "settle-load.json")
    bg = run.popen([load, "-q", "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base",
                    "127.0.77.10", "--monitor-base", "127.0.77.100", "--feeders", "2",
                    "--monitors", "1", "--routes", "500000", "--churn-rate", "100",
                    "--churn-seconds", "1", "--churn-settle", "12", "--timeout", "90",
                    "--json", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = os.path.join(tmp, "ricochetd.log")
    refused = "every range was refused"
    settled, mem, t0 = False, {}, time.time()
    while time.time() < t0 + 150 and bg.poll() is None:
        rc, mem = ctl("show", "memory")
        if rc == 0 and isinstance(mem, dict) and mem.get("settles", 0) > before:
            settled = True
            break
        if refused in open(log).read():
            break
        time.sleep(0.5)
    held = mem.get("huge_page_bytes", 0) if isinstance(mem, dict) else 0
    # MADV_COLLAPSE came with Linux 6.1; with THP 'never' every range is refused
    rel = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    can_collapse = thp_mode() in ("always", "madvise") and rel >= (6, 1)
    if can_collapse:
        # the settle ran while the table was held: huge pages hold a good
        # part of it (116 MiB of a 2 x 500k table when this was written)
        check("settle-after-quiet-growth",
              settled and held >= 16 << 20 and mem.get("last_settle_ns", 0) > 0,
              f"after {time.time() - t0:.1f} s: {str(mem)[:400]}")
        txt = open(log).read()
        check("settle-logged", "heap settled in" in txt, txt[-400:])
    else:
        check("settle-unsupported-logged", refused in open(log).read(),
              f"THP mode {thp_mode()}, kernel {os.uname().release}")
    try:
        bg.wait(timeout=120)
    except subprocess.TimeoutExpired:
        bg.kill()
    res = json.load(open(out)) if os.path.exists(out) else {}
    check("settle-load-ok", bg.returncode == 0 and res.get("ok") is True,
          f"exit {bg.returncode} {str(res.get('errors'))[:300]}")


if __name__ == "__main__":
    sys.exit(main())
