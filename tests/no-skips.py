#!/usr/bin/env python3
"""
no-skips.py - fail when any test of the last `meson test` run in BUILD was
skipped (exit 77).

Why: the integration tests skip when a tool is missing, the port they need is
taken, or they are not root - right on a developer's machine, wrong in CI and
in the README's test command, which install everything first: there a skip
would be a test that cannot fail.  Usage: no-skips.py BUILD
"""
import json
import sys


def main():
    if len(sys.argv) != 2:
        print("usage: no-skips.py BUILD", file=sys.stderr)
        return 2
    path = f"{sys.argv[1]}/meson-logs/testlog.json"
    skipped = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    t = json.loads(line)
                    if t.get("result") == "SKIP":
                        skipped.append(t.get("name", "?"))
    except OSError as e:
        print(f"no-skips: cannot read {path}: {e}", file=sys.stderr)
        return 1
    if skipped:
        print(f"no-skips: {len(skipped)} test(s) skipped, which counts as a failure here: "
              + ", ".join(skipped), file=sys.stderr)
        return 1
    print("no-skips: no test was skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
