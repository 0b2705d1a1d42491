"""`scripts/tandem`: the administrator's command line (validate a topology, export its JSON Schema)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.config import TopologyError, json_schema, load_topology


def main(argv: list[str]) -> int:
    """Run one subcommand; exit 0 on success, 1 on an invalid topology, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="scripts/tandem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check a topology file and summarise the estate it describes")
    validate.add_argument("file", type=Path)
    schema = sub.add_parser("schema", help="print the topology JSON Schema (for editors)")
    schema.add_argument("--out", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    if args.command == "schema":
        text = json_schema()
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        return 0
    try:
        topology = load_topology(args.file)
    except TopologyError as exc:
        print(f"invalid topology:\n{exc}", file=sys.stderr)
        return 1
    pools = sum(len(r.host_pools) for r in topology.regions)
    print(f"{args.file}: valid: {len(topology.regions)} regions, {pools} host pools, "
          f"{len(topology.pairings)} pairing(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
