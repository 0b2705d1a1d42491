"""`scripts/demo [--out DIR]`: play the day on a virtual clock, print a readable timeline, save the run as JSON
with its HTML report (`DIR`, `out/demo` by default) and print one summary line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from local.demo.estate import TOPOLOGY, running
from local.runtime import LocalHost, VirtualClock
from local.twins.arm import ArmTwin, load_seed
from local.twins.qumulo.api import QumuloTwin
from shared.config import TopologyError, load_topology

MORNING = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)  # 05:30 in America/New_York, a Monday


class Timeline:
    """Prints `HH:MM  what happened` lines in the estate's local time."""

    def __init__(self, clock: VirtualClock, zone: str) -> None:
        self.clock = clock
        self.zone = ZoneInfo(zone)

    def say(self, text: str) -> None:
        print(f"{self.clock.now().astimezone(self.zone):%a %H:%M %Z}  {text}", flush=True)


def play(storage: str, out: Path = Path("out/demo")) -> int:
    """Run the day, save it as `out/run.json` and its report as `out/report.html`; return the process exit code."""
    try:
        topology = load_topology(TOPOLOGY)
    except TopologyError as exc:
        print(f"demo: the example topology is invalid:\n{exc}", file=sys.stderr)
        return 1
    clock = VirtualClock(MORNING)
    line = Timeline(clock, next(iter(topology.policies.autoscale.values())).time_zone)
    # the demo evaluates autoscale every 5 minutes to keep the day short; a deployment's default is every minute
    with running(storage, clock, hub="tandemdemo", settings={"AUTOSCALE_SCHEDULE": "0 */5 * * * *"}, replica_first=False) as estate:
        host, arm, east, central = estate.host, estate.arm, estate.anq["east"], estate.anq["central"]
        pools = [f"{p.name} ({r.name})" for r in topology.regions for p in r.host_pools]
        line.say(f"estate loaded: regions {', '.join(r.name for r in topology.regions)}; pools {', '.join(pools)}")
        line.say(
            f"local runtime up at {host.front_door.base_url}: {len(host.functions)} function(s) indexed; "
            f"ARM twin at {arm.base_url}; ANQ twins at {east.base_url} and {central.base_url}"
        )
        denied, _ = host.http("GET", "health")
        line.say(f"GET /api/health without a function key -> {denied}")
        status, report = host.http("GET", "health", function="health")
        line.say(f"GET /api/health with its key -> {status}: {json.dumps(report)}")
        run: dict[str, Any] = {"day": f"{clock.now().astimezone(line.zone):%A %Y-%m-%d}", "pools": {}, "failovers": []}
        storm = morning_storm(host, arm, line, east, run["pools"])
        snaps = {
            name: len([s for s in twin.cluster.created if s.suffix.startswith("tandem-")])
            for name, twin in (("east", east), ("central", central))
        }
        alerts = [e for e in host.received if e["type"].startswith("Tandem.Snapshots.")]
        line.say(f"snapshots taken today: east {snaps['east']}, central {snaps['central']}; snapshot alerts: {len(alerts)}")
        _, points = host.http("GET", "snapshots", function="snapshots_report")
        run["clusters"] = points.get("clusters", [])  # type: ignore[union-attr]
        for cluster in points.get("clusters", []):  # type: ignore[union-attr]
            for d in cluster.get("directories", []):
                line.say(
                    f"recovery points of {d['path']} on {cluster['cluster']}: {len(d['recovery_points'])}, "
                    f"newest {d['newest'][11:16]}Z, fresh {d['fresh']}"
                )
        checked = profile_drill(estate, line, run["failovers"])
        drill = regional_outage(estate, line, run["failovers"])
    ok = (
        denied == 401
        and status == 200
        and report.get("ok") is True
        and storm["misses"] == 0
        and storm["stopped"] > 0
        and snaps["east"] > 0
        and snaps["central"] > 0
        and storm["outage_alerts"] > 0
        and drill["failover"] == "completed"
        and drill["failback"] == "completed"
        and drill["moved_in"] == drill["users"]
        and drill["lost"] == drill["expected_lost"]
        and checked == ["aborted", "drill"]
        and drill["own_profile"] == drill["users"]
        and drill["new_profile"] == 0
        and drill["failed_signin"] == 0
    )
    summary = (
        f"demo summary: {'OK' if ok else 'FAILED'}: {len(topology.regions)} regions, "
        f"{sum(len(r.host_pools) for r in topology.regions)} host pools, health {status}, unauthenticated {denied}, "
        f"storm {storm['logons']} logons {storm['misses']} misses, hosts started {storm['started']} "
        f"stopped {storm['stopped']}, peak {storm['peak']} running, snapshots east {snaps['east']} central "
        f"{snaps['central']}, outage alerts {storm['outage_alerts']}, failover {drill['failover']} "
        f"(RPO {drill['rpo_s']:.0f} s, {drill['lost']} profile writes lost, {drill['own_profile']} of {drill['users']} "
        f"moved users in their own profile), failback {drill['failback']}; drills {' then '.join(checked)}"
    )
    print(f"the day's report: {save(out, {**run, 'summary': summary})}")
    print(summary)
    return 0 if ok else 1


def save(out: Path, run: dict[str, Any]) -> str:
    """Write the run as `run.json` and its report as `report.html` in `out`; return the report's file URI."""
    from local.report import render

    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    report = out / "report.html"
    report.write_text(render(run, "Tandem demo: a day in the life of a two-region estate"), encoding="utf-8")
    return report.resolve().as_uri()


def evidence(estate: Any, instance: str) -> dict[str, Any]:
    """An instance's status in the shape its evidence report is drawn from (as `GET /api/failover/{id}/report`)."""
    status = estate.host.durable.status(instance) or {}
    return {"instance": instance, "runtime_status": status.get("runtimeStatus"), "input": status.get("input"),
            "custom_status": status.get("customStatus"), "output": status.get("output")}  # fmt: skip


def _until(estate: Any, instance: str, done: Any, limit: timedelta, *, since: datetime | None = None) -> dict[str, Any]:
    """Advance until `done(status)` or the instance ends; with `since`, an instance created before it is not yet
    the one awaited (an earlier run of the same pair)."""
    host = estate.host
    end = host.clock.now() + limit
    while True:
        host.wait_idle()
        status = host.durable.status(instance) or {}
        if since is not None and status and datetime.fromisoformat(status["createdTime"].replace("Z", "+00:00")) < since:
            status = {}
        if status.get("runtimeStatus") in ("Completed", "Failed") or done(status) or host.clock.now() >= end:
            return status
        host.advance(timedelta(seconds=15))


def profile_drill(estate: Any, line: Timeline, failovers: list[dict[str, Any]]) -> list[str]:
    """The operator drills east -> central: Tandem reads where central's FSLogix looks and refuses (central's
    image looks only in its own share); the administrator fixes the GPO; the drill passes."""
    from local.demo.estate import REPLICA_FIRST, look_at_replica

    outcomes = []
    for attempt in ("first", "second"):
        began = estate.host.clock.now()
        status, started = estate.host.http(
            "POST",
            "failover",
            body={"source": "east", "target": "central", "mode": "drill", "reason": "quarterly DR test"},
            function="failover_start",
            roles=["Tandem.Failover.Operator"],
            name="ana@contoso.com",
        )
        final = _until(estate, started.get("instance", ""), lambda s: False, timedelta(minutes=30), since=began)
        out = final.get("output") or {}
        outcomes.append(str(out.get("outcome")))
        failovers.append(evidence(estate, started.get("instance", "")))
        if out.get("outcome") == "aborted":
            problem = next(
                (p for p in out.get("problems", []) if "FSLogix" in p or "looks for profiles" in p), "; ".join(out.get("problems", []))
            )
            line.say(f"the {attempt} DR drill (POST /api/failover -> {status}) refuses: {problem}")
            look_at_replica(estate.arm)
            line.say(
                "the administrator changes central's FSLogix GPO: VHDLocations = " + ", then ".join(REPLICA_FIRST["VHDLocations"])
            )
        else:
            paths = "; ".join(f"{p['pool']} looks in {p['locations'][0]}" for p in out.get("profile_paths", []))
            line.say(f"the {attempt} DR drill passes: {paths}; expected RTO {out.get('expected_rto_s', 0):.0f} s")
    return outcomes


def regional_outage(estate: Any, line: Timeline, failovers: list[dict[str, Any]], users: int = 40) -> dict[str, Any]:
    """The evening shift in east; east's storage fails; Tandem's ANQ watch proposes a failover; the on-call
    approver approves over HTTP; users move to central; east returns fenced; the operator fails back."""
    host, arm = estate.host, estate.arm
    east, central = estate.anq["east"].cluster, estate.anq["central"].cluster
    sub_e, sub_c = "00000000-0000-4000-8000-0000000000e1", "00000000-0000-4000-8000-0000000000c1"
    east_pool = arm.estate.pool(sub_e, "rg-avd-east", "hp-east-pooled")
    central_pool = arm.estate.pool(sub_c, "rg-avd-central", "hp-central-pooled")
    shift = [f"user{i:03d}@contoso.com" for i in range(1, users + 1)]
    east.settle()
    host.advance(timedelta(minutes=5))
    east.settle()  # replication is current
    line.say(f"the evening shift: {users} of east's users keep working; their profiles replicate to central")
    late = shift[:5]
    for upn in late:  # saved just before the outage: newer than the last replication job
        east.write_profile("/profiles/fslogix", upn)
    estate.anq["east"].server.hang_s = 0.5
    estate.anq["east"].outage(True)
    line.say("east's ANQ stops answering; Tandem's own watch probes it every minute")
    instance, began = "failover-central-east", host.clock.now()
    waiting = _until(
        estate,
        instance,
        lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval",
        timedelta(minutes=10),
        since=began,
    )
    approval = next(s for s in waiting["customStatus"]["steps"] if s["step"] == "approval")
    line.say(
        f"after {waiting['input']['reason'].split(' (')[0].split('answered Tandem for ')[-1]} without an answer "
        f"Tandem proposes an unplanned failover east -> central and waits: {approval['detail']}"
    )
    status, _ = host.http(
        "POST",
        f"failover/{instance}/approve",
        body={},
        function="failover_decide",
        roles=["Tandem.Failover.Approver"],
        name="oncall@contoso.com",
    )
    line.say(f"the on-call approver approves over HTTP -> {status}")
    for upn in shift:  # their sessions died with the storage
        arm.estate.logoff_user(east_pool, upn)
    _until(estate, instance, lambda s: (s.get("customStatus") or {}).get("state") == "verify", timedelta(hours=1))
    line.say("central's profiles are writable and the users are assigned there; they sign in again")
    since = host.clock.now()
    landed = [arm.estate.logon(central_pool, upn).outcome for upn in shift]
    pending = [u for u, o in zip(shift, landed, strict=True) if o == "no_capacity"]
    for _ in range(10):  # the moved users' storm: those without a seat retry every 2 minutes
        if not pending:
            break
        host.advance(timedelta(minutes=2))
        pending = [u for u in pending if arm.estate.logon(central_pool, u).outcome == "no_capacity"]
    moved_in = sum(1 for h in central_pool.hosts.values() for _ in h.sessions)
    counts = estate.fslogix.counts(estate.fslogix.first_sign_ins(since, central_pool.name).values())
    line.say(
        f"{moved_in} of {users} moved users are working in central; FSLogix attached {counts['own']} own "
        f"profiles from the replica, made {counts['new']} new ones, failed {counts['failed']}"
    )
    moved = _until(
        estate,
        instance,
        lambda s: any(st["step"] == "completed" for st in (s.get("customStatus") or {}).get("steps", [])),
        timedelta(hours=1),
    )
    rpo = next((st["detail"] for st in moved["customStatus"]["steps"] if st["step"] == "completed"), "")
    line.say(f"failover complete ({rpo})")
    source, target = east.directory("/profiles/fslogix").profiles, central.directory("/profiles-dr/fslogix").profiles
    lost = [u for u, p_ in source.items() if u not in target or target[u].version < p_.version]
    line.say(f"profile writes lost: {len(lost)} (exactly those after the recovery point: {len(late)})")
    for upn in shift:
        central.write_profile("/profiles-dr/fslogix", upn)
        arm.estate.logoff_user(central_pool, upn)
    estate.anq["east"].outage(False)
    fenced = _until(estate, instance, lambda s: False, timedelta(minutes=30))
    failovers.append(evidence(estate, instance))
    line.say(
        f"east is back and fenced: directory read-only {east.directory('/profiles/fslogix').read_only}, "
        f"hosts drained {not any(h.allow_new_session for h in east_pool.hosts.values())}"
    )
    status, _ = host.http(
        "POST",
        "failover",
        body={"source": "central", "target": "east", "mode": "failback", "reason": "east is healthy again"},
        function="failover_start",
        roles=["Tandem.Failover.Operator"],
        name="oncall@contoso.com",
    )
    line.say(f"the operator starts the failback over HTTP -> {status}")
    back = _until(estate, instance, lambda s: False, timedelta(hours=2))
    failovers.append(evidence(estate, instance))
    home = sum(
        1
        for u in shift
        if east.directory("/profiles/fslogix").profiles[u].version == central.directory("/profiles-dr/fslogix").profiles[u].version
    )
    line.say(
        f"failback {(back.get('output') or {}).get('outcome')}: {home} of {users} profiles are home with "
        f"central's changes; central is the read-only standby again"
    )
    return {
        "failover": fenced.get("output", {}).get("outcome") if fenced.get("output") else "?",
        "failback": (back.get("output") or {}).get("outcome"),
        "rpo_s": float(rpo.split()[1]) if rpo else 0.0,
        "lost": len(lost),
        "expected_lost": len(late),
        "moved_in": moved_in,
        "users": users,
        "own_profile": counts["own"],
        "new_profile": counts["new"],
        "failed_signin": counts["failed"],
    }


def morning_storm(
    host: LocalHost, arm: ArmTwin, line: Timeline, east: QumuloTwin, curves: dict[str, list[dict[str, Any]]], users: int = 100
) -> dict[str, int]:
    """East's users sign in around 08:00 and out around 17:00 (New York); Tandem's timer and its storm response
    start hosts ahead of them and stop them after. Every logon goes through the twin's broker; every sign-out
    writes the user's profile container on east's ANQ. East's ANQ is dark from 13:00 to 14:30. Every pool's day
    curve (every 5 minutes) goes in `curves`."""
    import random

    from shared.autoscale.store import AutoscaleStore

    sub = next(s.id for s in load_seed().subscriptions if s.resource_groups[0].name == "rg-avd-east")
    pool = arm.estate.pool(sub, "rg-avd-east", "hp-east-pooled")
    rng = random.Random(30)
    day = host.clock.now().astimezone(line.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    arrive = sorted((day + timedelta(hours=8, minutes=rng.gauss(0, 15)), f"user{i:03d}@contoso.com") for i in range(1, users + 1))
    leave = {upn: at + timedelta(hours=8, minutes=rng.gauss(30, 20)) for at, upn in arrive}
    pending, misses, peak, landed, outage_alerts, rejected = list(arrive), 0, 0, 0, 0, False
    pools = {f"{p.name} ({p.location})": p for p in arm.estate.pools.values()}
    since = {"landed": 0, "misses": 0}  # at the last curve point
    said = set()
    end = day + timedelta(hours=19)
    while host.clock.now() < end:
        now = host.clock.now()
        for item in [p for p in pending if p[0] <= now]:
            pending.remove(item)
            if arm.estate.logon(pool, item[1]).outcome == "no_capacity":
                misses += 1
                pending.append((now + timedelta(minutes=2), item[1]))
            else:
                landed += 1
        for upn, at in list(leave.items()):
            if at <= now:
                arm.estate.logoff_user(pool, upn)
                east.cluster.write_profile("/profiles/fslogix", upn)
                del leave[upn]
        local = now.astimezone(line.zone)
        if (local.hour, local.minute) == (13, 0):
            east.server.hang_s = 0.3
            east.outage(True)
            line.say("east's ANQ cluster stops answering (a regional storage outage)")
        proposal = host.durable.status("failover-central-east") if east.cluster.down and not rejected else None
        if proposal and (proposal.get("customStatus") or {}).get("state") == "awaiting approval":
            code, _ = host.http(
                "POST",
                "failover/failover-central-east/reject",
                body={},
                function="failover_decide",
                roles=["Tandem.Failover.Approver"],
                name="oncall@contoso.com",
            )
            rejected = True
            line.say(
                f"Tandem's watch proposes a failover ({proposal['input']['reason'].split(';')[0]}); the on-call "
                f"rejects it, the storage team expects the cluster back -> {code}"
            )
        elif (local.hour, local.minute) == (14, 30):
            east.outage(False)
            alerts = [e for e in host.received if e["type"] == "Tandem.Snapshots.ClusterUnreachable"]
            outage_alerts = len(alerts)
            line.say(
                f"east's ANQ is back; Tandem raised {outage_alerts} 'cluster unreachable' alerts meanwhile "
                f"(first: {alerts[0]['data']['detail'][:90] if alerts else 'none'})"
            )
        if now.minute % 5 == 0:
            for name, each in pools.items():
                ours = each is pool
                curves.setdefault(name, []).append(each.point(now, landed - since["landed"] if ours else 0,
                                                              misses - since["misses"] if ours else 0, f"{local:%H:%M}"))  # fmt: skip
            since = {"landed": landed, "misses": misses}
        running = sum(1 for h in pool.hosts.values() if h.vm and h.vm.power(now) in ("running", "starting"))
        peak = max(peak, running)
        hour = now.astimezone(line.zone).hour
        if hour in (7, 8, 9, 12, 17, 18) and (hour, now.minute // 30) not in said and now.minute % 30 == 0:
            said.add((hour, now.minute // 30))
            sessions = sum(len(h.sessions) for h in pool.hosts.values())
            line.say(
                f"hp-east-pooled: {sessions} sessions on {running} running hosts; {landed} of {users} signed in, "
                f"{misses} logon misses so far"
            )
        host.advance(timedelta(minutes=1))
    ledger = AutoscaleStore().ledger_rows(f"{sub}/rg-avd-east/hp-east-pooled".lower())
    done = [r for r in ledger if r["result"] == "done"]
    for r in done[:3] + done[-2:]:
        line.say(f"ledger: {r['time'][11:16]}Z {r['action']} {r['host'].split('.')[0]}: {r['reason']}")
    return {
        "logons": landed,
        "misses": misses,
        "peak": peak,
        "started": sum(1 for r in done if r["action"] == "start"),
        "stopped": sum(1 for r in done if r["action"] == "deallocate"),
        "outage_alerts": outage_alerts,
    }


def main(argv: list[str]) -> int:
    """`scripts/demo [--out DIR]`."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="where run.json and report.html go (out/demo)")
    return play(os.environ["AzureWebJobsStorage"], parser.parse_args(argv).out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
