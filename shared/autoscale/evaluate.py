"""One evaluation of one pool, as the service, the what-if and the benchmark run it: the pool as the planner sees
it, what it observes (logons and departures into the history), the forecast, and what it remembers afterwards."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.autoscale.executor import Applied, execute
from shared.autoscale.forecast import ArrivalHistory, build_forecast
from shared.autoscale.planner import Decision, Forecast, HostView, Policy, PoolSnapshot, plan
from shared.autoscale.rules import local_time, phase_at, rules_for
from shared.autoscale.store import PoolMemory
from shared.azure.models import PoolRef, PoolState
from shared.config.model import NO_AUTOSCALE, AutoscalePolicy, HostPool, Region, Topology

BOOT_ALLOWANCE = timedelta(minutes=15)  # a host Tandem started counts as coming capacity this long
RECENT = timedelta(minutes=5)  # the window for the observed logon rate


@dataclass(frozen=True)
class Target:
    """A pool of the topology with where it lives and its policy."""

    region: Region
    pool: HostPool
    ref: PoolRef
    policy: AutoscalePolicy

    @property
    def managed(self) -> bool:
        """Tandem autoscales the pool (autoscale_policy is not none)."""
        return self.pool.autoscale_policy != NO_AUTOSCALE

    def left_alone(self, state: PoolState) -> str:
        """Why Tandem's autoscale leaves the pool to itself or to another scaler now ('' when it scales it)."""
        if not self.managed:
            return "autoscale_policy is none"
        if state.scaling_plan and self.pool.scaling_plan == "defer":
            return f"scaling plan {state.scaling_plan.rsplit('/', 1)[-1]} is enabled on the pool"
        return ""


@dataclass(frozen=True)
class Evaluation:
    """One pool's evaluation: its decision and what was applied."""

    pool: str
    decision: Decision
    applied: tuple[Applied, ...] = ()
    error: str = ""


def targets(topology: Topology) -> list[Target]:
    """Every pool of the topology with its policy."""
    found = []
    for region in topology.regions:
        for pool in region.host_pools:
            found.append(Target(region, pool, PoolRef.of(region, pool), policy_of(topology, pool)))
    return found


def policy_of(topology: Topology, pool: HostPool) -> AutoscalePolicy:
    """The pool's autoscale policy; a pool with `none` is warmed by a failover with the `default` policy's
    thresholds (or the first policy's)."""
    policies = topology.policies.autoscale
    if pool.autoscale_policy == NO_AUTOSCALE:
        return policies.get("default") or next(iter(policies.values()))
    return policies[pool.autoscale_policy]


def snapshot_of(state: PoolState, memory: PoolMemory, policy: AutoscalePolicy, now: datetime) -> PoolSnapshot:
    """The planner's view of a pool read through the gateway, with what earlier evaluations remember."""
    phase = phase_at(policy, now)
    views = []
    for h in state.hosts:
        started = memory.started.get(h.name)
        booting = (
            h.power == "running"
            and h.status not in ("Available", "NeedsAssistance")
            and started is not None
            and now - started < BOOT_ALLOWANCE
        )
        views.append(
            HostView(
                h.name,
                h.power,
                h.status,
                len(h.sessions),
                h.active,
                h.allow_new_session,
                policy.exclusion_tag in h.tags,
                booting,
                memory.notified.get(h.name),
            )
        )
    return PoolSnapshot(now, phase.phase, state.max_session_limit, tuple(views), phase.load_balancer, memory.last_scale_out)


def observe(
    state: PoolState, memory: PoolMemory, history: ArrivalHistory, policy: AutoscalePolicy, now: datetime
) -> tuple[float, float]:
    """Record logons and departures since the last evaluation; return the logon rates (per minute) of the last
    five minutes and of the five before."""
    sessions = [s for h in state.hosts for s in h.sessions]
    recent = sum(1 for s in sessions if s.created is not None and now - RECENT < s.created <= now)
    before = sum(1 for s in sessions if s.created is not None and now - 2 * RECENT < s.created <= now - RECENT)
    if memory.last_eval is not None and memory.last_sessions is not None and now - memory.last_eval <= RECENT * 2:
        arrivals = sum(1 for s in sessions if s.created is not None and memory.last_eval < s.created <= now)
        departures = max(0, arrivals - (len(sessions) - memory.last_sessions))
        history.record(local_time(policy, now) - timedelta(minutes=1), arrivals, departures)
    memory.last_eval, memory.last_sessions = now, len(sessions)
    minutes = RECENT.total_seconds() / 60
    return recent / minutes, before / minutes


def forecast_for(
    state: PoolState, memory: PoolMemory, history: ArrivalHistory, policy: AutoscalePolicy, now: datetime, rates: tuple[float, float]
) -> Forecast:
    """The forecast the tandem policy plans with: history, the observed (or alerted) rate, announced arrivals."""
    observed_rate, previous_rate = rates
    sessions = sum(len(h.sessions) for h in state.hosts)
    incoming = 0
    if memory.incoming_until is not None and now < memory.incoming_until:
        incoming = max(0, memory.incoming - max(0, sessions - memory.incoming_base))
    if memory.alert_until is not None and now < memory.alert_until:
        observed_rate = max(observed_rate, memory.alert_rate)
    lead = int(policy.boot_lead.total_seconds() // 60) + 20  # the planner sizes on the lead; the rest wakes the first host
    forecast = build_forecast(
        history,
        local_time(policy, now),
        horizon_minutes=lead,
        observed_rate=observed_rate,
        incoming=incoming,
        holidays=policy.holidays,
    )
    return replace(forecast, previous_rate=previous_rate)


def remember(memory: PoolMemory, decision: Decision, applied: list[Applied], now: datetime) -> None:
    """Update the memory with what was done: hosts started, users warned, hosts stopped."""
    for a in applied:
        if not a.ok or a.result == "dry_run":
            continue
        if a.step.action in ("start", "undrain"):
            memory.last_scale_out = now
        if a.step.action == "start":
            memory.started[a.step.host] = now
        elif a.step.action == "message":
            memory.notified.setdefault(a.step.host, now)
        elif a.step.action in ("deallocate", "undrain"):
            memory.notified.pop(a.step.host, None)
            memory.started.pop(a.step.host, None)
    memory.started = {h: t for h, t in memory.started.items() if now - t < BOOT_ALLOWANCE}


def step(
    gateway: Any,
    state: PoolState,
    memory: PoolMemory,
    history: ArrivalHistory,
    policy: AutoscalePolicy,
    now: datetime,
    *,
    algorithm: Policy | None = None,
    dry_run: bool = False,
    reserve: int = 0,
    leave: str = "",
) -> tuple[Decision, list[Applied]]:
    """One evaluation of one read pool: observe, forecast, plan, execute, remember. The service and the
    benchmark both run exactly this. `reserve` is the hosts a failover's target hold keeps serving; `leave` says
    why the pool is left to itself (it is still observed, so its history stays whole)."""
    rate = observe(state, memory, history, policy, now)
    memory.left = leave
    if leave:
        return Decision("left", 0, (), leave), []
    rules = replace(rules_for(policy, phase_at(policy, now)), reserve_hosts=reserve)
    decision = plan(
        algorithm or policy.algorithm,
        snapshot_of(state, memory, policy, now),
        rules,
        forecast_for(state, memory, history, policy, now, rate),
    )
    applied = execute(gateway, state, decision, rules, message=policy.logoff_message, dry_run=dry_run)
    remember(memory, decision, applied, now)
    return decision, applied


def announce_to(memory: PoolMemory, state: PoolState, sessions: int, now: datetime, until: timedelta) -> None:
    """Expect `sessions` more sessions in this pool within `until` (a failover's users)."""
    memory.incoming = sessions
    memory.incoming_base = sum(len(h.sessions) for h in state.hosts)
    memory.incoming_until = now + until
