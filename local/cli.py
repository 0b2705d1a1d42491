"""`scripts/tandem`: the administrator's command line (validate a topology, export its JSON Schema, print its
deployment parameters, plan a pool, draw a report) and the operator's (drive a running Tandem's failovers and
ask its autoscale what it would do: `local/operator.py`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.config import TopologyError, json_schema, load_topology


def main(argv: list[str]) -> int:
    """Run one subcommand; exit 0 on success, 1 on an invalid topology, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="scripts/tandem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check a topology file and summarise the estate it describes")
    validate.add_argument("file", type=Path)
    schema = sub.add_parser("schema", help="print the topology JSON Schema (for editors)")
    schema.add_argument("--out", type=Path, help="write to this file instead of stdout")
    params = sub.add_parser("params", help="print the estate parameters of infra/main.bicep for a topology file (JSON)")
    params.add_argument("file", type=Path)
    what_if = sub.add_parser("plan", help="what-if: the decision a policy takes for one pool snapshot (changes nothing)")
    what_if.add_argument("--policy", choices=["native", "legacy", "tandem"], required=True)
    what_if.add_argument("--snapshot", type=Path, required=True, help="pool snapshot JSON (see the README)")
    what_if.add_argument("--json", action="store_true", help="print JSON (the only form)")
    what_if.add_argument("--explain", action="store_true", help="add each action's reason and the facts used")
    report = sub.add_parser("report", help="write one self-contained HTML report (inline SVG charts) from a benchmark's JSON")
    report.add_argument("result", type=Path, help="the JSON `scripts/bench autoscale-burst|failover-rto --json` printed")
    report.add_argument("--out", type=Path, default=Path("tandem-report.html"), help="the HTML file to write")
    from local import operator

    operator.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("failover", "whatif"):
        return operator.run_command(args)
    if args.command == "report":
        return _report(args.result, args.out)
    if args.command == "plan":
        return _plan(args.policy, args.snapshot, explain=args.explain)
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
    if args.command == "params":
        print(json.dumps({name: {"value": value} for name, value in topology.deployment_parameters().items()}, indent=2))
        return 0
    pools = sum(len(r.host_pools) for r in topology.regions)
    print(f"{args.file}: valid: {len(topology.regions)} regions, {pools} host pools, {len(topology.pairings)} pairing(s)")
    return 0


def _read_json(file: Path) -> Any | None:
    """The file's JSON, or None after saying on stderr why it cannot be read (JSON null is refused too)."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"error: {file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
    except json.JSONDecodeError as exc:
        print(f"error: {file}: not JSON: {exc}", file=sys.stderr)
    return None


def _report(result: Path, out: Path) -> int:
    from local.report import render

    doc = _read_json(result)
    if doc is None:
        return 1
    if not isinstance(doc, dict):
        print(f"error: {result}: not a benchmark result (a JSON object)", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(doc, f"Tandem report: {result.name}"), encoding="utf-8")
    print(out.resolve().as_uri())
    return 0


def _plan(policy: str, file: Path, *, explain: bool) -> int:
    from shared.autoscale.planner import plan
    from shared.autoscale.snapshot_file import parse_snapshot
    from shared.errors import InputError

    doc = _read_json(file)
    if doc is None:
        return 1
    try:
        snapshot, rules, forecast = parse_snapshot(doc, str(file))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    decision = plan(policy, snapshot, rules, forecast)  # type: ignore[arg-type]
    if explain:
        print(json.dumps(decision.to_json()))
    else:
        print(
            json.dumps(
                {"target_hosts": decision.target_hosts, "actions": [{"action": s.action, "host": s.host} for s in decision.actions]}
            )
        )
    return 0


def run(argv: list[str]) -> int:
    """`main`, quiet when the reader goes away early (`scripts/tandem params FILE | head`)."""
    import os

    try:
        code = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # the documented recipe: point stdout at devnull so the interpreter's flush is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
