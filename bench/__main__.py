"""`scripts/bench NAME --json`: run one benchmark and print its result."""

from __future__ import annotations

import argparse
import json
import sys

BENCHMARKS = {
    "autoscale-burst": "bench.autoscale_burst",
    "cold-start": "bench.cold_start",
    "control-plane": "bench.control_plane",
    "estate-scale": "bench.estate_scale",
    "failover-rto": "bench.failover_rto",
    "snapshots": "bench.snapshots",
}


def main(argv: list[str]) -> int:
    """Run the named benchmark."""
    parser = argparse.ArgumentParser(prog="scripts/bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--json", action="store_true", help="print one JSON document (the default form)")
    parser.add_argument("--markdown", action="store_true", help="print the README's table instead (where the benchmark has one)")
    parser.add_argument("--from", dest="saved", metavar="FILE", help="render a JSON result saved earlier instead of running")
    args = parser.parse_args(argv)
    module = __import__(BENCHMARKS[args.name], fromlist=["run"])
    if args.markdown and not hasattr(module, "markdown"):
        parser.error(f"{args.name} has no table; use --json")
    if args.saved:
        with open(args.saved, encoding="utf-8") as saved:
            result = json.load(saved)
    else:
        result = module.run()
    print(module.markdown(result) if args.markdown else json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
