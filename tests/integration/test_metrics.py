#!/usr/bin/env python3
"""Observability end to end: Prometheus metrics, MRT table dumps and BGP4MP recording.

Uses its own loopback block 127.0.99.0/24: ricochetd on 127.0.99.1:179 (metrics
on 127.0.99.1:<free port>), ricochet-load feeders from 127.0.99.10, monitors
from 127.0.99.100.  Every process it starts is killed on exit; every wait is
bounded.

Checks:
  - a scrape parses with prometheus_client's text parser and its values agree
    with the load (peer count, sessions up, prefixes accepted per peer, RIB
    prefixes, per-peer counters) and the propagation-latency histogram has
    samples with consistent buckets;
  - `ricochet dump routes FILE` (TABLE_DUMP_V2) read back by bgpdump holds
    exactly the (prefix, peer) pairs that `ricochet show routes --all --json`
    lists, with the same AS paths, IPv4 and IPv6;
  - the ADD-PATH variant (--addpath) is read back by bgpdump the same way;
  - `mrt-dump:` files (BGP4MP_ET) read back by bgpdump hold every prefix the
    feeders announced;
  - ricochet-load --mrt replays tests/data/table-small.mrt (4500 prefixes)
    and every monitor ends up holding each of them;
  - while a large table loads (--big N routes, default 1,000,000), scrapes and
    `ricochet show routes` answer within 50 ms (worst of the samples).
"""
import os, socket, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client, when python3 is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None

ADDR = "127.0.99.1"


def scrape(port):
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://{ADDR}:{port}/metrics", timeout=5) as r:
        body = r.read().decode()
        ctype = r.headers.get("Content-Type", "")
    dt = time.monotonic() - t0
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    return fams, ctype, dt


def samples(fams, fam, name=None):
    f = fams.get(fam)
    if not f:
        return []
    return [s for s in f.samples if name is None or s.name == name]


def bgpdump_lines(*files):
    out = []
    for f in files:
        r = subprocess.run(["bgpdump", "-m", f], capture_output=True, text=True, timeout=120)
        out += [l.split("|") for l in r.stdout.splitlines() if l]
    return out


def main():
    ap = H.arg_parser(verbose=False)
    ap.add_argument("--big", type=int, default=1000000, help="routes for the responsiveness check (0: skip)")
    a = ap.parse_args()
    d = os.path.abspath(a.build)
    rd, cli, load = (os.path.join(d, p) for p in ("io/ricochetd", "io/ricochet", "bench/ricochet-load"))
    H.require(root="port 179", programs=(rd, cli, load))
    H.require(programs=("bgpdump",))
    if text_string_to_metric_families is None:
        print("SKIP: needs python3-prometheus-client")
        return H.SKIP
    with H.Run("ricochet-metrics-", keep=a.keep) as run:
        tmp = run.root
        sock = os.path.join(tmp, "ctl.sock")
        mrtdir = os.path.join(tmp, "mrt")
        os.mkdir(mrtdir)
        mport = H.free_tcp_port(ADDR)
        cfg = os.path.join(tmp, "r.yaml")
        open(cfg, "w").write(f"""router-id: {ADDR}
asn: 65000
listen: [{{ address: {ADDR}, port: 179 }}]
control-socket: {sock}
metrics: {{ listen: {ADDR}:{mport} }}
mrt-dump: {mrtdir}
peer-ranges:
  - {{ prefix: 127.0.99.0/24, asn: 65000, role: rr-client }}
""")
        run.popen([rd, "-c", cfg], log="ricochetd.log")
        check = run.checks.check

        def ctl(*args, js=True):
            return H.ricochet_ctl(cli, sock, *args, js=js, timeout=60)

        def start_load(*extra):
            cmd = [load, "-q", "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base", "127.0.99.10",
                   "--monitor-base", "127.0.99.100", "--timeout", "120"] + list(extra)
            return run.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        for _ in range(50):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        # 2 feeders (shared prefixes, so the RIB holds 2 paths per prefix), 2 monitors;
        # churn keeps the sessions up while we look
        R4, R6 = 3000, 700
        bg = start_load("--feeders", "2", "--monitors", "2", "--routes", str(R4), "--v6-routes", str(R6),
                        "--shared", "--churn-rate", "500", "--churn-seconds", "6")
        ok = False
        for _ in range(100):
            fams, ctype, _ = scrape(mport)
            acc = sum(s.value for s in samples(fams, "ricochet_peer_prefixes_accepted"))
            if acc == 2 * (R4 + R6):
                ok = True
                break
            time.sleep(0.1)
        check("scrape-content-type", ctype.startswith("text/plain") and "0.0.4" in ctype, ctype)
        check("table-loaded", ok, f"accepted {acc}")
        time.sleep(1.0)
        fams, _, _ = scrape(mport)
        v = lambda fam, name=None, **lab: sum(s.value for s in samples(fams, fam, name)
                                              if all(s.labels.get(k) == x for k, x in lab.items()))
        check("peers-count", v("ricochet_peers") == 4 and v("ricochet_peers_established") == 4,
              f"{v('ricochet_peers')} {v('ricochet_peers_established')}")
        per = {s.labels["peer"]: s.value for s in samples(fams, "ricochet_peer_prefixes_accepted")
               if s.labels["family"] == "ipv4-unicast"}
        check("prefixes-accepted-per-peer", per.get("127.0.99.10") == R4 and per.get("127.0.99.11") == R4
              and per.get("127.0.99.100") == 0, str(per))
        check("rib-prefixes", v("ricochet_rib_prefixes", family="ipv4-unicast") == R4 and
              v("ricochet_rib_prefixes", family="ipv6-unicast") == R6 and
              v("ricochet_rib_paths", family="ipv4-unicast") == 2 * R4,
              str([(s.labels, s.value) for s in samples(fams, "ricochet_rib_prefixes") +
                   samples(fams, "ricochet_rib_paths")]))
        rx = v("ricochet_peer_prefixes_received", "ricochet_peer_prefixes_received_total", peer="127.0.99.10")
        check("prefixes-received-counter", rx >= R4 + R6, str(rx))
        adv = v("ricochet_peer_prefixes_advertised", "ricochet_peer_prefixes_advertised_total",
                peer="127.0.99.100")
        check("prefixes-advertised-counter", adv >= R4 + R6, str(adv))
        check("bytes-and-messages", v("ricochet_peer_bytes_received", peer="127.0.99.10") > 0 and
              v("ricochet_peer_messages_received", peer="127.0.99.10") > 0 and
              v("ricochet_peer_bytes_sent", peer="127.0.99.100") > 0)
        check("memory-and-attrs", v("ricochet_attribute_sets") > 0 and v("ricochet_jemalloc_allocated_bytes") > 0
              and v("ricochet_memory_bytes", object="path_sets") > 0
              and v("ricochet_memory_bytes", object="attribute_hash") >= 4096 * 16)
        # huge pages: the gauge is there (a multiple of 2 MiB); a table this
        # small never makes the daemon settle its heap
        check("hugepage-metrics", "ricochet_hugepage_bytes" in fams and "ricochet_heap_settles" in fams
              and v("ricochet_hugepage_bytes") % (2 << 20) == 0 and v("ricochet_heap_settles") == 0,
              f"{v('ricochet_hugepage_bytes')} {v('ricochet_heap_settles')}")
        check("reflection-counters", v("ricochet_reflect_batches") > 0 and v("ricochet_reflect_prefixes") > 0
              and v("ricochet_update_groups") >= 1)
        h = fams.get("ricochet_propagation_latency_seconds")
        cnt = sum(s.value for s in h.samples if s.name.endswith("_count")) if h else 0
        good = h is not None and cnt > 0
        if h:
            for g in {s.labels["group"] for s in h.samples}:
                bk = [s for s in h.samples if s.name.endswith("_bucket") and s.labels["group"] == g]
                vals = [s.value for s in bk]
                c = [s.value for s in h.samples if s.name.endswith("_count") and s.labels["group"] == g][0]
                good &= vals == sorted(vals) and bk[-1].labels["le"] == "+Inf" and vals[-1] == c
        check("latency-histogram", good, f"count {cnt}")
        if h:
            sm = sum(s.value for s in h.samples if s.name.endswith("_sum"))
            print(f"  propagation latency: {int(cnt)} chunks, mean {sm / cnt * 1e3:.2f} ms")

        # MRT table dump, plain and ADD-PATH, against the CLI's view of the RIB
        rc, routes = ctl("show", "routes", "--all")
        want = {}
        for r in routes if rc == 0 else []:
            pfx = r.get("prefix")
            for p in r.get("paths", [r]):
                want[(pfx, p.get("from") or p.get("peer"))] = p.get("as_path", "")
        for variant in ([], ["--addpath"]):
            f = os.path.join(tmp, "dump%s.mrt" % ("-ap" if variant else ""))
            rc, res = ctl("dump", "routes", f, *variant)
            lines = bgpdump_lines(f)
            # TABLE_DUMP2_AP lines carry the path id in column 6, before the AS path
            got = {(l[5], l[3]): l[6] for l in lines if l[0] == "TABLE_DUMP2"}
            got.update({(l[5], l[3]): l[7] for l in lines if l[0] == "TABLE_DUMP2_AP"})
            if variant:
                kinds = {l[0] for l in lines}
                check("mrt-dump-routes-addpath-subtypes", kinds == {"TABLE_DUMP2_AP"}, str(kinds))
            same = len(want) > 0 and set(got) == set(want) and all(
                str(want[k]).split() == got[k].split() for k in want if want[k] != "")
            check("mrt-dump-routes%s-bgpdump" % ("-addpath" if variant else ""),
                  rc == 0 and len(got) == 2 * (R4 + R6) and same,
                  f"rc {rc} {res} got {len(got)} want {len(want)} sample {list(want.items())[:2]} "
                  f"{list(got.items())[:2]}")
        bg.wait(timeout=120)
        out = bg.stdout.read()
        check("load-run-passed", bg.returncode == 0, out[-600:])

        # replay of the checked-in TABLE_DUMP_V2 file through ricochet-load --mrt
        data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "table-small.mrt")
        n_file = len({l[5] for l in bgpdump_lines(data) if l[0] == "TABLE_DUMP2"})
        r = subprocess.run([load, "--target", f"{ADDR}:179", "--asn", "65000", "--feeder-base", "127.0.99.60",
                            "--monitor-base", "127.0.99.160", "--feeders", "2", "--monitors", "1",
                            "--mrt", data, "--timeout", "60"], capture_output=True, text=True, timeout=120)
        check("mrt-replay-table", r.returncode == 0 and n_file == 4500 and
              f"every monitor holds {n_file} prefixes" in r.stdout, (r.stdout + r.stderr)[-600:])

        # the responsiveness check: scrapes and show routes while a big table loads
        if a.big:
            big = start_load("--feeders", "1", "--monitors", "1", "--routes", str(a.big))
            worst_s, worst_r, n = 0.0, 0.0, 0
            t_end = time.monotonic() + 180
            while big.poll() is None and time.monotonic() < t_end:
                _, _, dt = scrape(mport)
                # straight to the control socket (the CLI's protocol), so the time is the
                # daemon's answer and not the start of a CLI process on a busy machine
                t0 = time.monotonic()
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as cs:
                    cs.settimeout(5)
                    cs.connect(sock)
                    cs.sendall(b"show routes\n")
                    cs.shutdown(socket.SHUT_WR)
                    reply = b""
                    while True:
                        chunk = cs.recv(65536)
                        if not chunk:
                            break
                        reply += chunk
                dr = time.monotonic() - t0
                if not reply.startswith(b"ok"):
                    dr = 999.0
                worst_s, worst_r, n = max(worst_s, dt), max(worst_r, dr), n + 1
                time.sleep(0.2)
            big.wait(timeout=60)
            print(f"  while loading {a.big} routes: {n} samples, worst scrape {worst_s * 1e3:.1f} ms, "
                  f"worst show routes {worst_r * 1e3:.1f} ms (control socket round trip)")
            # a latency budget means nothing in a sanitizer build (several times
            # slower by design): there the figures are printed, not judged
            fast = os.environ.get("RICOCHET_SANITIZED") or (worst_s < 0.05 and worst_r < 0.05)
            check("responsive-while-loading", n > 0 and fast and big.returncode == 0,
                  f"n {n} scrape {worst_s * 1e3:.1f} ms show {worst_r * 1e3:.1f} ms rc {big.returncode}")
        run.stop()
        # BGP4MP recording (files are flushed at exit)
        files = sorted(os.path.join(mrtdir, f) for f in os.listdir(mrtdir))
        lines = bgpdump_lines(*files)
        ann = {l[5] for l in lines if l[0] == "BGP4MP_ET" and l[2] == "A"}
        want_pfx = {k[0] for k in want} if want else set()
        check("mrt-dump-bgp4mp-bgpdump", len(files) > 0 and want_pfx and want_pfx <= ann,
              f"{len(files)} files, {len(ann)} prefixes announced, want {len(want_pfx)}")
    return run.rc


if __name__ == "__main__":
    sys.exit(main())
