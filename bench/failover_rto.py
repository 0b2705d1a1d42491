"""Failover RTO and data loss on the twins, through the real function app on the local runtime.

RTO runs from the start request to the moment the moved users can log on: the target directory writable,
the assignments moved and enough target hosts Available for them. The autoscale timer runs every minute and
the snapshot timer every 15 minutes, as in production. Each user who loses their session tries to sign in to
the target every 30 s (a container opens on sign-in and closes, with its last write, 30 s after sign-out);
`users_stranded` counts the users who were without a session for longer than the RTO, `profile_writes_lost`
every profile write the target does not have; `own_profile`, `new_profile` and `failed_signin` count what each
moved user's first sign-in to central found (the twins' FSLogix model), `own_profile_at_replica_version` those whose
container held exactly the replica's content version
(detach writes included, and refused ones counted). The lower bound is the longest chain of
modelled durations that cannot overlap (for the hosts: when, as modelled, the last of the hosts needed for
the moved users registered); the sequential runbook does the same steps one after another
(hosts warmed only once storage is done). Durations come from the twins' models: VM boot 45 s plus agent
registration uniform 60-240 s, a replication job 2 min, make-writable's revert 30 s, the drain wait 10 min.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from local.demo.estate import Estate, running
from local.runtime import VirtualClock

START = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
EAST_SUB, CENTRAL_SUB = "00000000-0000-4000-8000-0000000000e1", "00000000-0000-4000-8000-0000000000c1"
USERS = 16  # what the demo estate's two running east hosts seat (8 sessions each)
BUSY = {"AUTOSCALE_SCHEDULE": "0 */1 * * * *", "SNAPSHOT_SCHEDULE": "0 */15 * * * *"}
INSTANCE = "failover-central-east"


def _start(estate: Estate, mode: str) -> None:
    status, answer = estate.host.http("POST", "failover", body={"source": "east", "target": "central", "mode": mode,
                                                                "reason": "bench"},
                                      function="failover_start", roles=["Tandem.Failover.Operator"], name="bench")
    if status != 202:
        raise RuntimeError(f"failover start answered {status}: {answer}")


def _usable(estate: Estate) -> bool:
    arm = estate.arm.estate
    now = estate.host.clock.now()
    writable = not estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only
    group = arm.app_group(CENTRAL_SUB, "rg-avd-central", "dag-central-desktop")
    assigned = bool(arm.assignments_at(group.id))
    pool = arm.pool(CENTRAL_SUB, "rg-avd-central", "hp-central-pooled")
    seats = sum(pool.max_session_limit for h in pool.hosts.values()
                if h.allow_new_session and h.status(now) == "Available")
    return writable and assigned and seats >= USERS


def _scenario(mode: str) -> dict[str, Any]:
    clock = VirtualClock(START)
    with running(os.environ["AzureWebJobsStorage"], clock, hub=f"benchrto{mode[:3]}", settings=BUSY) as estate:
        arm, east = estate.arm.estate, estate.anq["east"]
        pool = arm.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
        users = [f"user{i:03d}@contoso.com" for i in range(1, USERS + 1)]
        for upn in users:  # a morning's sign-ins: FSLogix opens each container on east
            arm.logon(pool, upn)
        east.cluster.settle()  # continuous replication starts its job
        estate.host.advance(timedelta(minutes=3))
        east.cluster.settle()  # the morning's writes are replicated; the relationship is idle
        late: list[str] = []
        if mode == "unplanned":
            estate.host.advance(timedelta(minutes=2))
            late = users[:7]
            for upn in late:  # saved after the last job started: what losing the region costs
                east.cluster.write_profile("/profiles/fslogix", upn)
            east.server.hang_s = 1
            east.outage(True)
        began = estate.host.clock.now()
        recovery = estate.anq["central"].cluster.relationships
        rel = next(iter(recovery.values()))
        rpo_s = (began - rel.recovery_point).total_seconds() if rel.recovery_point else None
        _start(estate, mode)
        central = arm.pool(CENTRAL_SUB, "rg-avd-central", "hp-central-pooled")
        lost_at: dict[str, datetime] = {u: began for u in users} if mode == "unplanned" else {}
        seated: dict[str, datetime] = {}
        approved, usable_at = False, None
        while len(seated) < len(users):
            estate.host.wait_idle()
            now = estate.host.clock.now()
            if mode == "unplanned" and not approved:
                status = estate.host.durable.status(INSTANCE) or {}
                if (status.get("customStatus") or {}).get("state") == "awaiting approval":
                    answer, _ = estate.host.http("POST", f"failover/{INSTANCE}/approve", body={},
                                                 function="failover_decide", roles=["Tandem.Failover.Approver"],
                                                 name="bench-approver")  # four eyes: not the operator who started it
                    approved = answer == 202
            present = {x.upn for h in pool.hosts.values() for x in h.sessions.values()}
            for upn in users:
                if upn in seated:
                    continue
                if upn not in lost_at and upn not in present:
                    lost_at[upn] = now  # signed out by the failover
                if upn in lost_at and now >= lost_at[upn] and int((now - began).total_seconds()) % 30 == 0 \
                        and arm.logon(central, upn).outcome == "connected":
                    seated[upn] = now
            if usable_at is None and _usable(estate):
                usable_at = now
            estate.host.advance(timedelta(seconds=5))
            if estate.host.clock.now() - began > timedelta(hours=2):
                raise RuntimeError(f"{mode} failover never seated everyone: {estate.host.durable.status(INSTANCE)}")
        assert usable_at is not None
        rto = (usable_at - began).total_seconds()
        stranded = sum(1 for u in users if (seated[u] - lost_at[u]).total_seconds() > rto)
        ready = sorted(max(0.0, (h.agent_ready_at - began).total_seconds()) for h in central.hosts.values()
                       if h.agent_ready_at is not None)
        boot = next((t for n, t in enumerate(ready, 1) if n * central.max_session_limit >= USERS), ready[-1])
        job, revert = rel.timings.job.total_seconds(), rel.timings.revert.total_seconds()
        drain = 600.0
        source = east.cluster.directory("/profiles/fslogix").profiles
        target = estate.anq["central"].cluster.directory("/profiles-dr/fslogix").profiles
        east.cluster.settle()
        lost = sum(1 for u, p in source.items() if u not in target or target[u].version < p.version)
        refused = len(east.cluster.lost_writes)
        first = estate.fslogix.first_sign_ins(began, central.name)  # as the twins' FSLogix resolved each one
        expected = {u: (target[u].version if u in target else None) for u in users}
        facts = {"tandem_rto_s": rto, "users_stranded": stranded, "profile_writes_lost": lost + refused,
                 "detach_writes": len(east.cluster.detach_writes), "detach_writes_refused": refused,
                 **dict(zip(("own_profile", "new_profile", "failed_signin"),
                            estate.fslogix.counts(first.values()).values(), strict=True)),
                 "own_profile_at_replica_version": sum(1 for u, s in first.items()
                                                       if s.outcome == "own" and s.version == expected[u])}
        if mode == "planned":
            return {**facts, "lower_bound_s": max(drain + job + revert, boot),
                    "sequential_rto_s": drain + job + revert + boot}
        return {**facts, "lower_bound_s": max(revert, boot), "sequential_rto_s": revert + boot, "rpo_s": rpo_s,
                "expected_lost_writes": len(late)}


def run() -> dict[str, Any]:
    """Both scenarios."""
    began = time.perf_counter()
    result = {mode: {k: round(v, 1) if isinstance(v, float) else v for k, v in _scenario(mode).items()}
              for mode in ("planned", "unplanned")}
    result["wall_s"] = round(time.perf_counter() - began, 1)  # type: ignore[assignment]
    return result
