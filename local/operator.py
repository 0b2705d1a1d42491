"""`scripts/tandem failover ...` and `scripts/tandem whatif`: the operator's command line for a running Tandem.

Against a deployed Tandem (`--app NAME --resource-group RG [--subscription ID]`) it signs in with azure-identity's
DefaultAzureCredential (`az login` is enough), reads the app's address and its App Service authentication audience
through ARM (WebApps_Get, WebApps_GetAuthSettingsV2WithoutSecrets) and gets each route's function key with
WebApps_ListFunctionKeys, all with that one sign-in: no key is copied, stored or printed. The signed-in account needs
Microsoft.Web/sites/read, sites/config/read and sites/functions/listkeys/action on the app (Website Contributor has
them) and, for Tandem itself, the app role of the call. Against the local runtime
(`--url URL --key KEY`, the `base_url` and `master_key` its READY line prints) it takes the printed key, and a
token for `--as UPN --roles ROLE[,ROLE]` from the runtime's token endpoint.

Exit codes: 0 the call was accepted, or the instance followed did what was asked (completed, or a drill that
passed); 1 Tandem refused the call, or the instance followed ended without doing it (aborted, refused, rejected,
cancelled, rolled back, approval timed out, failed); 2 bad usage; 3 the instance needs a person (awaiting
approval, or a step parked in `needs operator`).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WEB_API = "2024-04-01"  # Microsoft.Web's api-version for the three ARM reads
MODES = ("planned", "unplanned", "drill", "failback")
DECISIONS = ("approve", "reject", "cancel", "resume")
DONE, REFUSED, NEEDS_PERSON = 0, 1, 3
SUCCESS = ("completed", "drill")
PERSON = ("awaiting approval", "needs operator")


class CliError(Exception):
    """A call Tandem or ARM refused, or a connection that could not be made: printed, exit 1."""


@dataclass
class Tandem:
    """A running Tandem: its base URL, how to get each function's key, and the caller's bearer token."""

    base_url: str
    key_for: Callable[[str], str]
    token: str | None
    context: ssl.SSLContext | None = None
    keys: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, route: str, function: str, body: Any = None) -> tuple[int, Any]:
        """One call to `/api/<route>` with the function's key; (status, parsed JSON or text)."""
        if function not in self.keys:
            self.keys[function] = self.key_for(function)
        headers = {"x-functions-key": self.keys[function], "Accept": "application/json, text/html"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        return _send(method, f"{self.base_url}/api/{route}", headers, data, self.context)

    def ok(self, method: str, route: str, function: str, body: Any = None) -> Any:
        """`call`, raising CliError with the problem's title and detail on anything but 2xx."""
        status, answer = self.call(method, route, function, body)
        if status >= 300:
            raise CliError(_problem(status, answer))
        return answer


def _send(method: str, url: str, headers: dict[str, str], data: bytes | None, context: ssl.SSLContext | None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as resp:
            return resp.status, _parse(resp.headers.get("Content-Type", ""), resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _parse(exc.headers.get("Content-Type", ""), exc.read())
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {getattr(exc, 'reason', exc)}") from exc


def _parse(content_type: str, raw: bytes) -> Any:
    if "json" in content_type:
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def _problem(status: int, answer: Any) -> str:
    if isinstance(answer, dict):
        title = answer.get("title") or (answer.get("error") or {}).get("code") or ""
        detail = answer.get("detail") or (answer.get("error") or {}).get("message") or ""
        return f"{status} {title}: {detail}".strip(": ")
    return f"{status} {str(answer)[:200]}".strip()


# ----------------------------------------------------------------------------- connecting


def connect(args: argparse.Namespace) -> Tandem:
    """A deployed Tandem through ARM (--app), or a Tandem at --url with --key."""
    context = ssl.create_default_context(cafile=args.ca) if args.ca else ssl.create_default_context()
    if args.app:
        if args.url or args.key or args.as_user:
            raise CliError("--app finds the address and keys through ARM: leave out --url, --key and --as")
        return _deployed(args, context)
    if not args.url:
        raise CliError("say which Tandem: --app NAME --resource-group RG (deployed) or --url URL --key KEY (local runtime)")
    key = args.key or os.environ.get("TANDEM_KEY", "")
    if not key:
        raise CliError("--url needs --key (or TANDEM_KEY): the local runtime's master_key")
    base = args.url.rstrip("/")
    token = args.token or os.environ.get("TANDEM_TOKEN") or None
    if args.as_user:
        host = urllib.parse.urlsplit(base).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise CliError("--as asks the local runtime's token endpoint: only for a loopback --url")
        roles = urllib.parse.quote(args.roles or "", safe=",")
        status, answer = _send("GET", f"{base}/.local/token?roles={roles}&name={urllib.parse.quote(args.as_user)}",
                               {"x-functions-key": key}, None, context)  # fmt: skip
        if status != 200 or not isinstance(answer, dict):
            raise CliError(f"the local runtime gave no token: {_problem(status, answer)}")
        token = answer["access_token"]
    return Tandem(base, lambda _function: key, token, context)


def _deployed(args: argparse.Namespace, context: ssl.SSLContext) -> Tandem:
    """Sign in once (DefaultAzureCredential): the site's host name and auth audience, and per function its key."""
    from azure.identity import DefaultAzureCredential

    from shared.azure.gateway import arm_scope

    subscription = args.subscription or os.environ.get("AZURE_SUBSCRIPTION_ID", "")
    if not (subscription and args.resource_group):
        raise CliError("--app needs --resource-group and --subscription (or AZURE_SUBSCRIPTION_ID)")
    endpoint = (args.arm_endpoint or os.environ.get("TANDEM_ARM_ENDPOINT") or "https://management.azure.com").rstrip("/")
    credential = DefaultAzureCredential()
    try:
        arm_token = credential.get_token(arm_scope(endpoint)).token
    except Exception as exc:  # ClientAuthenticationError and its kin: say what to do
        raise CliError(
            f"cannot sign in to ARM ({type(exc).__name__}): run `az login`, or set AZURE_* for a service principal"
        ) from exc
    site = f"{endpoint}/subscriptions/{subscription}/resourceGroups/{args.resource_group}/providers/Microsoft.Web/sites/{args.app}"

    def arm(method: str, path: str) -> Any:
        status, answer = _send(method, f"{site}{path}?api-version={WEB_API}", {"Authorization": f"Bearer {arm_token}"},
                               b"" if method == "POST" else None, context)  # fmt: skip
        if status >= 300:
            raise CliError(f"ARM {method} {args.app}{path or ''}: {_problem(status, answer)}")
        return answer

    found = arm("GET", "")
    host = (found.get("properties") or {}).get("defaultHostName")
    if not host:
        raise CliError(f"{args.app} has no defaultHostName: is it a function app?")
    aad = (((arm("GET", "/config/authsettingsV2").get("properties") or {}).get("identityProviders") or {})
           .get("azureActiveDirectory") or {})  # fmt: skip
    audiences = (aad.get("validation") or {}).get("allowedAudiences") or []
    client_id = (aad.get("registration") or {}).get("clientId")
    audience = next((a for a in audiences if "://" in a), None) or (f"api://{client_id}" if client_id else None)
    if not audience:
        raise CliError(f"{args.app} has no Entra ID sign-in configured (authsettingsV2): Tandem's routes need it")
    try:
        token = credential.get_token(f"{audience}/.default").token
    except Exception as exc:
        raise CliError(f"cannot get a token for {audience} ({type(exc).__name__}): is your account allowed to sign in to it?") from exc

    def key_for(function: str) -> str:
        keys = arm("POST", f"/functions/{function}/listkeys").get("properties") or {}
        if not keys:
            raise CliError(f"{args.app} has no key for {function}")
        return str(keys.get("default") or next(iter(keys.values())))

    return Tandem(f"https://{host}", key_for, token, context)


# ----------------------------------------------------------------------------- following an instance


def outcome_of(status: dict[str, Any]) -> tuple[str, int | None]:
    """What the instance is at (its outcome, or the state a person must act on) and the exit code, None while it
    runs on its own."""
    custom = status.get("custom_status") or {}
    output = status.get("output") if isinstance(status.get("output"), dict) else {}
    runtime = status.get("runtime_status")
    if runtime in ("Completed", "Failed", "Terminated", "Canceled"):
        outcome = str(output.get("outcome") or runtime.lower())
        return outcome, DONE if outcome in SUCCESS else REFUSED
    state = str(custom.get("state") or runtime or "pending")
    return state, NEEDS_PERSON if state in PERSON else None


def _step_line(step: dict[str, Any]) -> str:
    from shared.failover.report import parse_time

    began, ended = parse_time(step.get("started")), parse_time(step.get("ended"))
    took = f"{(ended - began).total_seconds():7.1f} s" if began and ended else " " * 9
    detail = str(step.get("detail") or "")
    return f"  {step.get('step', '')!s:<24} {step.get('status', '')!s:<15} {took}  {detail[:110]}".rstrip()


def follow(tandem: Tandem, instance: str, poll_s: float, out: Any = None) -> int:
    """Show each step as it completes (and, on a terminal, a live line with the one running) until the instance
    ends or needs a person; its exit code."""
    out = out or sys.stdout
    live = out.isatty()
    shown, began, spin = 0, time.monotonic(), 0
    while True:
        status = tandem.ok("GET", f"failover/{urllib.parse.quote(instance)}", "failover_status")
        steps = [s for s in (status.get("custom_status") or {}).get("steps") or [] if isinstance(s, dict)]
        finished = [s for s in steps if s.get("ended")]
        if live:
            out.write("\r\033[K")
        for step in steps[shown:]:
            if not step.get("ended"):
                break
            out.write(_step_line(step) + "\n")
            shown += 1
        state, code = outcome_of(status)
        if code is not None:
            for step in steps[shown:]:
                out.write(_step_line(step) + "\n")
            out.write(f"{instance}: {state}{_summary(status)}\n")
            out.flush()
            return code
        if live:
            running = next((s for s in steps[shown:] if not s.get("ended")), None)
            now = f"{running['step']} ({running.get('status')})" if running else state
            bar = "#" * min(30, len(finished)) + "-" * max(0, 30 - len(finished))
            out.write(f"{'|/-\\'[spin % 4]} [{bar}] {len(finished)} steps done, {time.monotonic() - began:5.0f} s: {now}")
            spin += 1
        out.flush()
        time.sleep(poll_s)


def _summary(status: dict[str, Any]) -> str:
    """The facts an on-call wants on the last line."""
    custom = status.get("custom_status") or {}
    output = status.get("output") if isinstance(status.get("output"), dict) else {}
    bits = []
    if isinstance(output.get("rpo_s"), int | float):
        bits.append(f"RPO {output['rpo_s']:.0f} s")
    elif "rpo_s" in output:
        bits.append("RPO unknown: no recovery point yet")
    if isinstance(output.get("expected_rto_s"), int | float):
        bits.append(f"expected RTO {output['expected_rto_s']:.0f} s")
    if output.get("problems"):
        bits.append("; ".join(str(p) for p in output["problems"])[:300])
    if output.get("reason"):
        bits.append(str(output["reason"])[:300])
    if custom.get("state") == "awaiting approval":
        waiting = next((s for s in reversed(custom.get("steps") or []) if s.get("step") == "approval"), {})
        bits.append(f"{waiting.get('detail', '')}: scripts/tandem failover approve|reject {status.get('instance')}")
    elif custom.get("state") == "needs operator":
        bits.append(f"{custom.get('reason', '')}: scripts/tandem failover resume|cancel {status.get('instance')}")
    return f" ({'; '.join(b for b in bits if b)})" if bits else ""


# ----------------------------------------------------------------------------- the commands


def add_commands(sub: Any) -> None:
    """`failover ...` and `whatif` on the `scripts/tandem` parser."""
    failover = sub.add_parser("failover", help="start, follow and decide drills, failovers and failbacks of a running Tandem")
    verbs = failover.add_subparsers(dest="verb", required=True)
    start = verbs.add_parser("start", help="ask for a failover (planned, unplanned, drill or failback)")
    _pair(start)
    start.add_argument("--mode", choices=MODES, required=True)
    start.add_argument("--follow", action="store_true", help="show the steps as they complete; exit by the outcome")
    drill = verbs.add_parser("drill", help="a drill from start to its evidence report")
    _pair(drill)
    drill.add_argument("--report", type=Path, default=Path("drill-report.html"), help="where the report goes")
    status = verbs.add_parser("status", help="an instance's state and steps")
    status.add_argument("instance")
    status.add_argument("--follow", action="store_true", help="until it ends or needs a person")
    status.add_argument("--json", action="store_true", help="print Tandem's JSON answer")
    report = verbs.add_parser("report", help="save an instance's evidence report (HTML)")
    report.add_argument("instance")
    report.add_argument("--out", type=Path, default=Path("failover-report.html"))
    for verb in DECISIONS:
        decide = verbs.add_parser(verb, help=f"{verb} a running instance")
        decide.add_argument("instance")
        decide.add_argument("--follow", action="store_true", help="then follow it until it ends or needs a person")
    whatif = sub.add_parser("whatif", help="the autoscale decision Tandem would take for one pool now (changes nothing)")
    whatif.add_argument("--pool", required=True, help="the host pool's name")
    whatif.add_argument("--policy", choices=["native", "legacy", "tandem"], help="another algorithm than the pool's")
    for parser in [start, drill, status, report, whatif] + [verbs.choices[v] for v in DECISIONS]:
        _connection(parser)


def _pair(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="the region users leave")
    parser.add_argument("--target", required=True, help="the region users move to")
    parser.add_argument("--reason", default="", help="why (goes in the audit and the report)")


def _connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which Tandem (deployed: --app; local runtime: --url and --key)")
    group.add_argument("--app", help="the function app's name (signs in with DefaultAzureCredential)")
    group.add_argument("--resource-group", help="its resource group")
    group.add_argument("--subscription", help="its subscription (default AZURE_SUBSCRIPTION_ID)")
    group.add_argument("--arm-endpoint", help="ARM for a sovereign cloud (default https://management.azure.com)")
    group.add_argument("--url", help="Tandem's base URL (the local runtime's base_url)")
    group.add_argument("--key", help="a function key or the master key (default TANDEM_KEY)")
    group.add_argument("--token", help="a bearer token for Tandem's app (default TANDEM_TOKEN)")
    group.add_argument("--as", dest="as_user", metavar="UPN", help="local runtime: sign in as this user ...")
    group.add_argument("--roles", default="", help="... holding these app roles (comma-separated)")
    group.add_argument("--ca", help="a CA bundle to trust (a private endpoint's or the twins' certificate)")
    group.add_argument("--poll", type=float, default=5.0, help="seconds between status reads while following (5)")


def run_command(args: argparse.Namespace) -> int:
    """Run `failover <verb>` or `whatif`; print problems to stderr and return the exit code."""
    try:
        tandem = connect(args)
        if args.command == "whatif":
            return _whatif(tandem, args)
        return _failover(tandem, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return REFUSED


def _failover(tandem: Tandem, args: argparse.Namespace) -> int:
    verb = args.verb
    if verb in ("start", "drill"):
        mode = "drill" if verb == "drill" else args.mode
        answer = tandem.ok("POST", "failover", "failover_start",
                           {"source": args.source, "target": args.target, "mode": mode, "reason": args.reason})  # fmt: skip
        instance = answer["instance"]
        print(f"{instance}: {mode} {args.source} -> {args.target} " + ("already running" if answer.get("running") else "started"))
        if verb == "start" and not args.follow:
            return DONE
        code = follow(tandem, instance, args.poll)
        if verb == "drill":
            print(f"report: {_save_report(tandem, instance, args.report)}")
        return code
    instance = urllib.parse.quote(args.instance)
    if verb == "report":
        print(_save_report(tandem, args.instance, args.out))
        return DONE
    if verb == "status":
        if args.follow:
            return follow(tandem, args.instance, args.poll)
        status = tandem.ok("GET", f"failover/{instance}", "failover_status")
        status.pop("links", None)
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            for step in (status.get("custom_status") or {}).get("steps") or []:
                print(_step_line(step))
            print(f"{args.instance}: {outcome_of(status)[0]}{_summary(status)}")
        return outcome_of(status)[1] or DONE
    answer = tandem.ok("POST", f"failover/{instance}/{verb}", "failover_decide", {})
    print(f"{args.instance}: {answer.get('sent', verb)} sent")
    return follow(tandem, args.instance, args.poll) if args.follow else DONE


def _save_report(tandem: Tandem, instance: str, out: Path) -> str:
    """Fetch an instance's evidence report into `out`; its file URI."""
    page = tandem.ok("GET", f"failover/{urllib.parse.quote(instance)}/report", "failover_report")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(str(page), encoding="utf-8")
    return out.resolve().as_uri()


def _whatif(tandem: Tandem, args: argparse.Namespace) -> int:
    query = urllib.parse.urlencode({k: v for k, v in (("pool", args.pool), ("policy", args.policy)) if v})
    decision = tandem.ok("GET", f"autoscale/whatif?{query}", "autoscale_whatif")
    print(json.dumps(decision, indent=2))
    return DONE
