"""`python -m local.twins.qumulo --port N [--seed FILE] [--password PW] [--cluster NAME]`: serve one cluster.

Every cluster of the seed is modelled (so replication has its peer); the one named by --cluster (default: the first)
is served on 127.0.0.1. Prints one line `READY base_url=URL ca=PATH cluster=NAME` before serving.
"""

from __future__ import annotations

import argparse
import sys

from local.runtime.clock import WallClock
from local.serving import serve_until_stopped
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.seed import build_clusters, load_seed


def main(argv: list[str]) -> int:
    """Parse arguments, serve, stop on SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="scripts/twin qumulo")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = a free one)")
    parser.add_argument("--seed", help="seed file (YAML); default: the demo clusters")
    parser.add_argument("--password", help="the login password (default: the seed's, 'tandem-demo' for the demo)")
    parser.add_argument("--cluster", help="which cluster of the seed to serve (default: the first)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    args = parser.parse_args(argv)
    try:
        seed = load_seed(args.seed)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clusters = build_clusters(seed, WallClock(), password=args.password)
    name = args.cluster or seed.clusters[0].name
    if name not in clusters:
        print(f"error: --cluster {name}: the seed has {', '.join(clusters)}", file=sys.stderr)
        return 2
    twin = QumuloTwin(clusters[name], port=args.port, latency_s=args.latency_ms / 1000).start()
    return serve_until_stopped({"base_url": twin.base_url, "ca": twin.ca.ca_path, "cluster": name}, twin.close)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
