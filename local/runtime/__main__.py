"""`python -m local.runtime serve`: run a Function App locally on the wall clock until stopped.

Prints one line `READY base_url=URL master_key=KEY system_key=KEY topic_url=URL topic_key=KEY topic_ca=PATH
token_url=URL` once it serves: what an outside client needs to call the app's routes (a function key or the master
key), the Durable extension's webhooks (the system key), publish events to the topic, and get a signed-in token for
an app role (`GET token_url?roles=ROLE[,ROLE]&name=UPN` with the master key in `x-functions-key`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from local.runtime.host import LocalHost
from local.serving import serve_until_stopped
from shared.settings import schedule_defaults


def main(argv: list[str]) -> int:
    """Parse arguments, start the host and serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m local.runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the app's HTTP routes and run its timers and orchestrations")
    serve.add_argument("--app", default="function_app", help="module that defines the FunctionApp")
    serve.add_argument("--hub", default="tandem", help="Durable task hub name")
    serve.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0 = a free one)")
    serve.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE", help="app setting")
    args = parser.parse_args(argv)
    storage = os.environ.get("AzureWebJobsStorage")
    if not storage:
        print("error: AzureWebJobsStorage is not set (run under `python -m local.azurite --`)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = dict(s.split("=", 1) for s in args.setting)
    if args.app == "function_app":
        settings = schedule_defaults(settings)
        # loopback only: without an ARM twin named, ARM calls fail here instead of leaving the machine
        settings.setdefault("TANDEM_ARM_ENDPOINT", os.environ.get("TANDEM_ARM_ENDPOINT") or "https://127.0.0.1:9")
    host = LocalHost(
        args.app, storage=storage, settings=settings, hub=args.hub, event_subscriptions=_subscriptions(args.app, settings)
    )
    host.start(host_port=args.port)
    door = host.front_door
    return serve_until_stopped(
        {
            "base_url": door.base_url,
            "master_key": host.master_key,
            "system_key": host.system_key,
            "topic_url": door.topic_url,
            "topic_key": host.topic_key,
            "topic_ca": door.ca.ca_path,
            "token_url": f"{door.base_url}/.local/token",
        },
        host.close,
    )


def _subscriptions(app: str, settings: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The topology's event subscriptions (what Event Grid subscriptions deliver in Azure), for Tandem's app."""
    if app != "function_app":
        return []
    from shared.config.loader import get_topology

    try:
        topology = get_topology(settings.get("TANDEM_TOPOLOGY_PATH"))
    except Exception as exc:  # the app reports its topology through /api/health; serving goes on
        print(f"warning: no event subscriptions: {str(exc).splitlines()[0]}", file=sys.stderr)
        return []
    return [(s.function, list(s.event_types)) for s in topology.events.subscriptions]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
