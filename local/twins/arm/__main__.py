"""`python -m local.twins.arm --port N [--seed FILE]`: serve the ARM twin on 127.0.0.1 until stopped.

Prints one line `READY base_url=URL ca=PATH subscription=ID identity_endpoint=URL identity_header=SECRET`.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time

from local.serving import serve_until_stopped
from local.twins.arm import ArmTwin, load_seed


def main(argv: list[str]) -> int:
    """Parse arguments, serve, stop on SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="scripts/twin arm")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = a free one)")
    parser.add_argument("--seed", help="seed file (YAML); default: the demo estate")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="refill ARM's token buckets this much faster (a benchmark that compresses time)"
    )
    parser.add_argument("--churn", type=int, default=0, help="every second, this many generated users sign in and as many sign out")
    args = parser.parse_args(argv)
    try:
        seed = load_seed(args.seed)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    twin = ArmTwin(seed, port=args.port, latency_s=args.latency_ms / 1000, time_scale=args.time_scale).start()
    if args.churn > 0:
        threading.Thread(target=_churn, args=(twin, args.churn), name="churn", daemon=True).start()
    subscription = seed.subscriptions[0].id if seed.subscriptions else ""
    return serve_until_stopped(
        {
            "base_url": twin.base_url,
            "ca": twin.ca.ca_path,
            "subscription": subscription,
            "identity_endpoint": f"{twin.base_url}/msi/token",
            "identity_header": twin.identity.header_secret,
        },
        twin.close,
    )


def _churn(twin: ArmTwin, per_second: int) -> None:
    """Users signing in to random pools and out again, for as long as the twin serves."""
    estate = twin.estate
    rng = random.Random(7)
    users = sorted(estate.users)
    pools = list(estate.pools.values())
    signed_in: dict[str, object] = {}
    while True:
        time.sleep(1.0)
        for _ in range(per_second):
            upn = rng.choice(users)
            if upn not in signed_in:
                pool = rng.choice(pools)
                if estate.logon(pool, upn).outcome == "connected":
                    signed_in[upn] = pool
            if signed_in:
                leaving = rng.choice(sorted(signed_in))
                estate.logoff_user(signed_in.pop(leaving), leaving)  # type: ignore[arg-type]  # a Pool


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
