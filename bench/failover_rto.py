"""Failover RTO and data loss on the twins: Tandem through the real function app on the local runtime, beside the
documented manual runbook executed step by step against the same twins, and a lower bound from physics.

RTO runs from the start (the request, or the runbook's first step) to the moment the moved users can log on: the
target directory writable, the assignments moved and enough target hosts Available for them. Every request to a
twin costs its caller virtual time (ARM 0.3 s, Qumulo 0.05 s), so an activity takes the time its calls take.
While Tandem runs, its autoscale timer fires every minute and the snapshot timer every 15 minutes, as in
production. Each user who loses their session tries to sign in to the target every 30 s (a container opens on
sign-in and closes, with its last write, 30 s after sign-out); `users_stranded` counts the users turned away by a sign-in
attempt made once the target counted as usable, `profile_writes_lost` every profile write the target does not have;
`own_profile`, `new_profile` and `failed_signin` count what each moved user's first sign-in found (the twins'
FSLogix model), `own_profile_at_replica_version` those whose container held exactly the replica's content
version (detach writes included, and refused ones counted).

`lower_bound_s` comes from the parameters the twins and the policy are configured with, never from a run: the
boot distribution's p95 (only when the target lacks Available hosts for the users at the start), the drain wait,
FSLogix's detach delay, the replication job time (the twin's model: a fixed time per job whatever changed),
make-writable's revert and reconnect's time; each output carries its formula and terms. `sequential_rto_s` is
`bench.runbook` executed on a fresh estate in the same starting state.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.runbook import CENTRAL, EAST, Runbook, Side, _arm_environment
from local.demo.estate import Estate, Twins, running, twins
from local.runtime import VirtualClock

START = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
USERS = 16  # what the demo estate's two running east hosts seat (8 sessions each)
BUSY = {"AUTOSCALE_SCHEDULE": "0 */1 * * * *", "SNAPSHOT_SCHEDULE": "0 */15 * * * *"}
INSTANCE = "failover-central-east"
Place = Twins | Estate  # the twins alone (the runbook's world) or with Tandem running on them
CALL_COST_S = {"arm": 0.3, "qumulo": 0.05}
RETRY_EVERY_S = 30
MIN_ON = 4  # the demo policy's 20% peak minimum of 20 hosts, which a scaling plan at the same settings keeps on too
MODES = ("planned", "unplanned", "failback")


def _pool(t: Place, side: Side) -> Any:
    return t.arm.estate.pool(side.subscription, side.resource_group, side.pool)


def _usable(t: Place, side: Side) -> bool:
    """The moved users can log on: their directory writable, assigned, and seats Available."""
    arm = t.arm.estate
    now = arm.clock.now()
    writable = not t.anq[side.region].cluster.directory(side.directory).read_only
    assigned = bool(arm.assignments_at(arm.app_group(side.subscription, side.resource_group, side.app_group).id))
    pool = _pool(t, side)
    seats = sum(pool.max_session_limit for h in pool.hosts.values() if h.allow_new_session and h.status(now) == "Available")
    return writable and assigned and seats >= USERS


def _morning(t: Place, advance: Callable[[timedelta], Any], mode: str) -> list[str]:
    """Users sign in to east and replication catches up; for an unplanned failover, seven users save after the last
    job started and east is lost. Returns the users whose writes that costs."""
    users = [f"user{i:03d}@contoso.com" for i in range(1, USERS + 1)]
    east, arm = t.anq["east"], t.arm.estate
    for side in (EAST, CENTRAL):  # both worlds start with the hosts a peak-phase minimum keeps on
        vms = [h.vm for h in _pool(t, side).hosts.values() if h.vm is not None]
        on = sum(1 for vm in vms if vm.power(arm.clock.now()) in ("starting", "running"))
        for vm in [vm for vm in vms if vm.power(arm.clock.now()) == "deallocated"][: max(0, MIN_ON - on)]:
            arm.start_vm(vm)
    advance(timedelta(minutes=6))  # longer than the slowest boot the model draws (45 s + 240 s)
    for upn in users:  # a morning's sign-ins: FSLogix opens each container on east
        arm.logon(_pool(t, EAST), upn)
    east.cluster.settle()  # continuous replication starts its job
    advance(timedelta(minutes=3))
    east.cluster.settle()  # the morning's writes are replicated; the relationship is idle
    if mode != "unplanned":
        return []
    advance(timedelta(minutes=2))
    for upn in users[:7]:  # saved after the last job started: what losing the region costs
        east.cluster.write_profile("/profiles/fslogix", upn)
    east.server.hang_s = 1
    east.outage(True)
    return users[:7]


def _work_in_central(t: Place, advance: Callable[[timedelta], Any]) -> None:
    """Everyone works in central for half an hour; east stands by with the hosts it had (drained by the failover)."""
    for upn in (f"user{i:03d}@contoso.com" for i in range(1, USERS + 1)):
        t.arm.estate.logon(_pool(t, CENTRAL), upn)
    advance(timedelta(minutes=30))


# ----------------------------------------------------------------------------------------------- lower bound


def lower_bound(t: Place, mode: str, target: Side, drain_wait: timedelta) -> dict[str, Any]:
    """The shortest RTO the configured physics allows, with its formula and terms (seconds)."""
    arm = t.arm.estate
    pool = _pool(t, target)
    now = arm.clock.now()
    available = sum(1 for h in pool.hosts.values() if h.allow_new_session and h.status(now) == "Available")
    short = max(0, math.ceil(USERS / pool.max_session_limit) - available)
    boot = arm.timings.boot.total_seconds() + arm.timings.agent_ready.p95 if short else 0.0
    rel = next(iter(t.anq["central"].cluster.relationships.values()))
    terms = {
        "boot_p95": round(boot, 1),
        "drain_wait": drain_wait.total_seconds(),
        "detach": t.anq["east"].cluster.detach_delay.total_seconds(),
        "job": rel.timings.job.total_seconds(),
        "revert": rel.timings.revert.total_seconds(),
        "reconnect": rel.timings.reconnect.total_seconds(),
    }
    if mode == "planned":
        formula = "max(boot_p95, drain_wait + detach + job + revert)"
        value = max(terms["boot_p95"], terms["drain_wait"] + terms["detach"] + terms["job"] + terms["revert"])
    elif mode == "unplanned":
        formula, value = "max(boot_p95, revert)", max(terms["boot_p95"], terms["revert"])
    else:  # re-protection can overlap the drain; the one job after the fence carries every change home
        formula = "max(boot_p95, max(drain_wait + detach, reconnect) + job + revert)"
        value = max(terms["boot_p95"], max(terms["drain_wait"] + terms["detach"], terms["reconnect"]) + terms["job"] + terms["revert"])
    why = f"{short} of the target's hosts must boot" if short else "the target already has Available hosts for the users"
    return {"lower_bound_s": round(value, 1), "formula": formula, "terms_s": terms, "hosts": why}


# ----------------------------------------------------------------------------------------------- Tandem


def _start(estate: Estate, body: dict[str, Any]) -> None:
    status, answer = estate.host.http(
        "POST",
        "failover",
        body={**body, "reason": "bench"},
        function="failover_start",
        roles=["Tandem.Failover.Operator"],
        name="bench",
    )
    if status != 202:
        raise RuntimeError(f"failover start answered {status}: {answer}")


def _run_tandem(estate: Estate, source: Side, target: Side, mode: str, drain_wait: timedelta) -> dict[str, Any]:
    """Start one failover (or failback) and play the users until each is seated in the target."""
    arm = estate.arm.estate
    users = [f"user{i:03d}@contoso.com" for i in range(1, USERS + 1)]
    bound = lower_bound(estate, mode, target, drain_wait)
    began = estate.host.clock.now()
    rel = next(iter(estate.anq["central"].cluster.relationships.values()))
    rpo_s = (began - rel.recovery_point).total_seconds() if rel.recovery_point else None
    calls = {name: len(twin.server.log()) for name, twin in (("arm", estate.arm), *estate.anq.items())}
    _start(estate, {"source": source.region, "target": target.region, "mode": mode})
    from_pool, to_pool = _pool(estate, source), _pool(estate, target)
    lost_at: dict[str, datetime] = {u: began for u in users} if mode == "unplanned" else {}
    seated: dict[str, datetime] = {}
    next_try: dict[str, datetime] = {}
    stranded: set[str] = set()
    approved, usable_at = False, None
    while len(seated) < len(users):
        estate.host.wait_idle()
        now = estate.host.clock.now()
        if mode == "unplanned" and not approved:
            status = estate.host.durable.status(INSTANCE) or {}
            if (status.get("customStatus") or {}).get("state") == "awaiting approval":
                answer, _ = estate.host.http(
                    "POST",
                    f"failover/{INSTANCE}/approve",
                    body={},
                    function="failover_decide",
                    roles=["Tandem.Failover.Approver"],
                    name="bench-approver",
                )  # four eyes
                approved = answer == 202
        present = {x.upn for h in from_pool.hosts.values() for x in h.sessions.values()}
        for upn in users:
            if upn in seated:
                continue
            if upn not in lost_at and upn not in present:
                lost_at[upn] = now  # signed out by the failover
            if upn not in lost_at or now < next_try.get(upn, lost_at[upn]):
                continue
            next_try[upn] = now + timedelta(seconds=RETRY_EVERY_S)
            if arm.logon(to_pool, upn).outcome in ("connected", "reconnected"):
                seated[upn] = now
            elif usable_at is not None:
                stranded.add(upn)  # turned away after the target counted as usable
        if usable_at is None and _usable(estate, target):
            usable_at = now
        estate.host.advance(timedelta(seconds=5))
        if estate.host.clock.now() - began > timedelta(hours=2):
            raise RuntimeError(f"{mode} never seated everyone: {estate.host.durable.status(INSTANCE)}")
    assert usable_at is not None
    rto = (usable_at - began).total_seconds()
    steps = [
        {
            "step": e["step"],
            "status": e["status"],
            **{f"{k}_s": round((datetime.fromisoformat(e[k]) - began).total_seconds(), 1) for k in ("started", "ended") if e.get(k)},
        }
        for e in ((estate.host.durable.status(INSTANCE) or {}).get("customStatus") or {}).get("steps", [])
    ]
    target_dir = estate.anq[target.region].cluster.directory(target.directory)
    source_dir = estate.anq[source.region].cluster
    source_dir.settle()
    written = source_dir.directory(source.directory).profiles
    lost = sum(1 for u, p in written.items() if u not in target_dir.profiles or target_dir.profiles[u].version < p.version)
    refused = len(source_dir.lost_writes)
    first = estate.fslogix.first_sign_ins(began, to_pool.name)  # as the twins' FSLogix resolved each one
    expected = {u: (target_dir.profiles[u].version if u in target_dir.profiles else None) for u in users}
    facts: dict[str, Any] = {
        "tandem_rto_s": rto,
        "users_stranded": len(stranded),
        "profile_writes_lost": lost + refused,
        "detach_writes": len(source_dir.detach_writes),
        "detach_writes_refused": refused,
        **dict(zip(("own_profile", "new_profile", "failed_signin"), estate.fslogix.counts(first.values()).values(), strict=True)),
        "own_profile_at_replica_version": sum(1 for u, s in first.items() if s.outcome == "own" and s.version == expected[u]),
        "requests": {name: len(twin.server.log()) - calls[name] for name, twin in (("arm", estate.arm), *estate.anq.items())},
        **bound,
        "tandem_steps": steps,
    }
    if mode == "unplanned":
        facts["rpo_s"] = rpo_s
    return facts


def _tandem(mode: str) -> dict[str, Any]:
    clock = VirtualClock(START)
    with running(
        os.environ["AzureWebJobsStorage"], clock, hub=f"benchrto{mode[:4]}", settings=BUSY, call_cost_s=CALL_COST_S
    ) as estate:
        from shared.config.loader import load_topology

        drain_wait = load_topology(estate.topology_path).policies.failover.drain_wait
        late = _morning(estate, estate.host.advance, mode)
        if mode != "failback":
            facts = _run_tandem(estate, EAST, CENTRAL, mode, drain_wait)
            return {**facts, **({"expected_lost_writes": len(late)} if mode == "unplanned" else {})}
        _run_tandem(estate, EAST, CENTRAL, "planned", drain_wait)
        done = estate.host.durable.status(INSTANCE) or {}
        while done.get("runtimeStatus") not in ("Completed", "Failed", "Terminated"):
            estate.host.advance(timedelta(minutes=1))
            done = estate.host.durable.status(INSTANCE) or {}
        _work_in_central(estate, estate.host.advance)
        return _run_tandem(estate, CENTRAL, EAST, "failback", drain_wait)


# ----------------------------------------------------------------------------------------------- the runbook


def _runbook(mode: str) -> dict[str, Any]:
    clock = VirtualClock(START)
    with twins(clock, call_cost_s=CALL_COST_S) as t, _arm_environment(t):
        from shared.config.loader import load_topology

        drain_wait = load_topology(t.topology_path).policies.failover.drain_wait

        def advance(by: timedelta) -> None:
            clock.advance(by)
            t.settle()

        _morning(t, advance, mode)
        if mode == "failback":
            with Runbook(t, clock, users=USERS, drain_wait=drain_wait) as first:
                first.planned(EAST, CENTRAL)
            _work_in_central(t, advance)
        source, target = (CENTRAL, EAST) if mode == "failback" else (EAST, CENTRAL)
        with Runbook(t, clock, users=USERS, drain_wait=drain_wait) as book:
            calls = {name: len(twin.server.log()) for name, twin in (("arm", t.arm), *t.anq.items())}
            getattr(book, mode)(source, target)
        usable_at = clock.now()
        while not _usable(t, target):  # the runbook's last step returned: the users can sign in once this holds
            advance(timedelta(seconds=5))
            usable_at = clock.now()
        return {
            "sequential_rto_s": round((usable_at - book.began).total_seconds(), 1),
            "runbook_steps": book.steps,
            "runbook_requests": {name: len(twin.server.log()) - calls[name] for name, twin in (("arm", t.arm), *t.anq.items())},
        }


def run() -> dict[str, Any]:
    """Planned, unplanned and failback: Tandem, the runbook, the bound."""
    began = time.perf_counter()
    result: dict[str, Any] = {"call_cost_s": CALL_COST_S}
    for mode in MODES:
        facts = {**_tandem(mode), **_runbook(mode)}
        facts["tandem_vs_runbook"] = round(facts["tandem_rto_s"] / facts["sequential_rto_s"], 3)
        facts["tandem_vs_lower_bound"] = round(facts["tandem_rto_s"] / facts["lower_bound_s"], 3)
        result[mode] = {k: round(v, 3 if k.startswith("tandem_vs") else 1) if isinstance(v, float) else v for k, v in facts.items()}
    result["wall_s"] = round(time.perf_counter() - began, 1)
    return result


def markdown(result: dict[str, Any]) -> str:
    """The README's table: each mode's RTOs side by side, the bound's formula, and what the users kept."""
    lines = [
        "| mode | Tandem RTO | runbook RTO | lower bound | bound's formula | RPO | writes lost (expected) | stranded | own profile |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        x = result[mode]
        rpo = f"{x['rpo_s']:g} s" if x.get("rpo_s") is not None else "none lost"
        lost = f"{x['profile_writes_lost']} ({x.get('expected_lost_writes', 0)})"
        lines.append(
            f"| {mode} | {x['tandem_rto_s']:g} s | {x['sequential_rto_s']:g} s | {x['lower_bound_s']:g} s | "
            f"`{x['formula']}` | {rpo} | {lost} | {x['users_stranded']} | {x['own_profile']}/{USERS} |"
        )
    return "\n".join(lines)
