#!/usr/bin/env python3
"""profile-window.py - a daemon's perf samples cut to the announcement of each run.

A small scenario (S1: 4 ms of announcement in a 60 ms run) drowns in its own
session set-up and teardown in a whole-run profile.  This reads `perf script`
text (with call chains) taken from the daemon over several runs of
ricochet-load, and the load generator's --json file of each run.  Runs are
told apart by the anchor function (the first UPDATE being ingested): a run
starts at a sample whose chain holds it, more than GAP seconds after the
previous such sample, and its window opens LEAD seconds before that and lasts
the run's own measured announce time (the i-th run pairs with the i-th file).  It prints the
shares of the samples inside those windows: per thread, per chosen caller,
and per leaf symbol.

Recipe (stop 30, docs/BENCHMARKS.md "S1's announcement on its own"):
  perf record -F 20000 -g -p $(pidof ricochetd) -o w.data &
  for i in $(seq 40); do ricochet-load ... --establish-settle 0.25 --json w-$i.json; sleep 0.25; done
  kill -INT %1; perf script -i w.data -F time,comm,ip,sym > w.txt
  bench/profile-window.py w.txt 'w-*.json'
"""
import argparse
import bisect
import collections
import glob
import json
import re
import sys


def read_samples(path):
    """[(time, thread name, [frames leaf first])] from `perf script -F time,comm,ip,sym`."""
    out, cur = [], None
    head = re.compile(r'(\S+)\s+([\d.]+):')
    for line in open(path, errors='replace'):
        if not line.strip():
            if cur:
                out.append(cur)
            cur = None
        elif line[0] in ' \t':
            if cur:
                parts = line.split(None, 1)
                cur[2].append(parts[1].strip() if len(parts) > 1 else '?')
        else:
            m = head.match(line)
            cur = (float(m.group(2)), m.group(1), []) if m else None
    if cur:
        out.append(cur)
    out.sort(key=lambda s: s[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('perf_text', help='output of perf script -F time,comm,ip,sym (call chains on)')
    ap.add_argument('json_glob', help="ricochet-load --json files of the runs, e.g. 'w-*.json'")
    ap.add_argument('--anchor', default='ingest_announce', help='function that marks the start')
    ap.add_argument('--lead', type=float, default=0.0003, help='seconds before the anchor (0.0003)')
    ap.add_argument('--gap', type=float, default=0.1, help='seconds without an anchor sample that separate runs (0.1)')
    ap.add_argument('--phase', default='announce', help='phase of the --json files (announce)')
    ap.add_argument('--callers', default='ingest_announce,writev,process_batch,encode_bset,lane_drain',
                    help='comma-separated functions to report inclusive shares for')
    ap.add_argument('--top', type=int, default=30, help='leaf symbols to list (30)')
    a = ap.parse_args()

    samples = read_samples(a.perf_text)
    if not samples:
        sys.exit('profile-window: no samples in %s' % a.perf_text)
    files = sorted(glob.glob(a.json_glob), key=lambda f: [int(x) for x in re.findall(r'\d+', f)] or [0])
    secs = [json.load(open(f))['phases'][a.phase]['seconds'] for f in files]
    has = lambda s, fn: any(fn in x for x in s[2])   # a frame naming fn (writev: __GI___writev too)
    # a run starts at an anchor sample more than --gap after the previous one
    starts, last = [], None
    for s in samples:
        if has(s, a.anchor):
            if last is None or s[0] - last > a.gap:
                starts.append(s[0] - a.lead)
            last = s[0]
    if len(starts) != len(secs):
        print('profile-window: %d runs with %s in the samples, %d --json files: pairing the first %d'
              % (len(starts), a.anchor, len(secs), min(len(starts), len(secs))), file=sys.stderr)
    callers = [x for x in a.callers.split(',') if x]
    thr, leaf, inc = collections.Counter(), collections.Counter(), collections.Counter()
    times = [s[0] for s in samples]
    used = min(len(starts), len(secs))
    for t0, dur in zip(starts, secs):
        for s in samples[bisect.bisect_left(times, t0):bisect.bisect_right(times, t0 + dur)]:
            thr[s[1]] += 1
            leaf[(s[1], s[2][0] if s[2] else '?')] += 1
            for fn in callers:
                if has(s, fn):
                    inc[(s[1], fn)] += 1
    n = sum(thr.values())
    if not n:
        sys.exit('profile-window: no sample inside any window')
    pct = lambda v: 100.0 * v / n
    print('%d windows, %d samples (%.1f per window)' % (used, n, n / used))
    print('\nper thread')
    for k, v in thr.most_common():
        print('  %5.1f %%  %s' % (pct(v), k))
    print('\ninclusive, per thread and caller')
    for k, v in sorted(inc.items(), key=lambda kv: -kv[1]):
        print('  %5.1f %%  %-16s %s' % (pct(v), k[0], k[1]))
    print('\nleaf symbols')
    for k, v in leaf.most_common(a.top):
        print('  %5.1f %%  %-16s %s' % (pct(v), k[0], k[1]))


if __name__ == '__main__':
    main()
