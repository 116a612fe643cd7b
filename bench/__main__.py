"""Run every benchmark, one process each, in turn: `python -m bench [--quick] [NAME...]`.

`make bench` runs them all (under 10 minutes on a 2-core machine); each prints its tables and
writes bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench._common import REPO, RESULTS

NAMES = ("pickup", "burst", "throughput", "polling", "footprint", "cli", "dbgrowth", "multidaemon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks they run")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    unknown = set(args.names) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed, took = [], {}
    began = time.monotonic()
    for name in args.names or NAMES:
        print(f"\n=== bench.{name}", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", f"bench.{name}", "--results", args.results]
        if subprocess.run(command + (["--quick"] if args.quick else []), cwd=REPO).returncode:
            failed.append(name)
        took[name] = time.monotonic() - started
    print("\n=== wall time: " + ", ".join(f"{n} {s:.0f} s" for n, s in took.items()))
    print(
        f"=== total {time.monotonic() - began:.0f} s"
        + (f"; FAILED: {' '.join(failed)}" if failed else "")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
