"""The autoscale service: evaluates many pools at once (one batched read, bounded parallelism, a lease per pool),
within the failover holds, and hands each pool's evaluation to evaluate.step; the what-if decides without acting."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.autoscale import publish
from shared.autoscale.evaluate import (
    Evaluation,
    Target,
    announce_to,
    forecast_for,
    observe,
    snapshot_of,
    step,
    targets,
)
from shared.autoscale.executor import execute
from shared.autoscale.forecast import ArrivalHistory, DayCounts
from shared.autoscale.planner import Decision, Policy, Step, plan
from shared.autoscale.rules import local_time, phase_at, rules_for
from shared.autoscale.store import AutoscaleStore
from shared.azure.models import PoolState
from shared.config.model import AutoscalePolicy, Topology
from shared.errors import NotFoundError
from shared.telemetry import get_logger, log_event

log = get_logger("autoscale")


class Autoscaler:
    """Evaluates the topology's pools through the gateway; `now` is injectable for the local runtime."""

    def __init__(
        self,
        topology: Topology,
        gateway: Any = None,
        store: AutoscaleStore | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        max_workers: int = 8,
    ) -> None:
        from shared.azure.gateway import AzureGateway

        self.topology = topology
        self.gateway = gateway or AzureGateway()
        self.store = store or AutoscaleStore()
        from shared import clock

        self.now = now or clock.now
        self.max_workers = max_workers
        self.targets = {t.ref.key: t for t in targets(topology)}

    def close(self) -> None:
        """Close the gateway's connections."""
        close = getattr(self.gateway, "close", None)
        if callable(close):
            close()

    def find(self, name: str) -> Target:
        """A pool by name (or key); InputError when the topology has no such pool."""
        for key, target in self.targets.items():
            if name.lower() in (key, target.pool.name.lower()):
                return target
        raise NotFoundError(f"no host pool {name!r} in the topology", title="Unknown pool")

    def region_targets(self, region: str) -> list[Target]:
        """The pools of one region."""
        return [t for t in self.targets.values() if t.region.name == region]

    def recorded_sessions(self, region: str) -> int:
        """A region's sessions from what Tandem recorded, for when its pools cannot be read (an outage): per pool,
        the larger of the last evaluation's count (if within the hour) and the history's usual count for now."""
        from shared.autoscale.forecast import expected_concurrent

        now = self.now()
        total = 0
        for t in self.region_targets(region):
            try:
                memory = self.store.load(t.ref.key)
                recent = memory.last_eval is not None and now - memory.last_eval <= timedelta(hours=1)
                local = local_time(t.policy, now)
                usual = expected_concurrent(self.store.history(t.ref.key, local.date()), local, t.policy.holidays)
                last = (memory.last_sessions or 0) if recent else 0
                total += max(last, usual)
            except Exception as exc:  # storage too: nothing recorded to go on for this pool
                log_event(log, "autoscale.record_unreadable", level=30, pool=t.ref.key, error=type(exc).__name__)
        return total

    def pool_of_vm(self, vm_id: str) -> Target | None:
        """The pool whose session host runs on this VM (from a fresh read), or None."""
        reads = self.gateway.read_pools([t.ref for t in self.targets.values()])
        for key, state in reads.states.items():
            if any(h.vm_id.lower() == vm_id.lower() for h in state.hosts):
                return self.targets[key]
        return None

    def run(
        self,
        pools: Iterable[Target] | None = None,
        *,
        dry_run: bool | None = None,
        wait_s: float = 0.0,
        announce: int | None = None,
        alert_rate: float | None = None,
    ) -> list[Evaluation]:
        """Evaluate pools (default: all): the region holds, a lease per pool, one batched read, then per-pool
        planning and actions in parallel.

        A pool another evaluation is working on is skipped (after waiting up to `wait_s`). `announce` (sessions
        spread over the chosen pools by host count) and `alert_rate` (logons per minute) are recorded in the
        pools' memory under their lease, so no concurrent evaluation overwrites them."""
        from shared.errors import DependencyError
        from shared.state import holds as region_holds
        from shared.state.lease import try_lease

        chosen = list(pools) if pools is not None else list(self.targets.values())
        if not chosen:
            return []
        try:
            held = region_holds.read()
        except DependencyError as exc:  # an unreadable hold is no scale action, never "no hold"
            publish.holds_unreadable(chosen, str(exc))
            return [
                Evaluation(t.ref.key, Decision("held", 0, (), "region holds unreadable: no scale action"), (), str(exc))
                for t in chosen
            ]
        results: list[Evaluation] = []
        leases: dict[str, Any] = {}
        try:
            for t in chosen:
                lease = try_lease(f"autoscale/{t.ref.key}", wait_s=wait_s)
                if lease is None:
                    results.append(Evaluation(t.ref.key, Decision("none", 0, (), "another evaluation is running"), (), "busy"))
                    log_event(log, "autoscale.pool_busy", pool=t.ref.key)
                else:
                    leases[t.ref.key] = lease
            chosen = [t for t in chosen if t.ref.key in leases]
            if not chosen:
                return results
            now = self.now()
            reads = self.gateway.read_pools([t.ref for t in chosen])
            for key, error in reads.errors.items():
                log_event(log, "autoscale.read_failed", level=40, pool=key, error=str(error))
                results.append(Evaluation(key, Decision("none", 0, (), "read failed"), (), str(error)))
            work = [t for t in chosen if t.ref.key in reads.states]
            shares = (
                {}
                if announce is None
                else _seated(split_by_hosts(announce, {t.ref.key: len(reads.states[t.ref.key].hosts) for t in work}), reads.states)
            )
            free: list[Target] = []
            for t in work:
                hold = held.get(t.region.name)
                if hold is None or hold.allows_scaling:
                    free.append(t)
                else:
                    results.append(self._held(t, reads.states[t.ref.key], hold, now))
            with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(free) or 1))) as pool:
                results += list(
                    pool.map(
                        lambda t: self._evaluate(
                            t, reads.states[t.ref.key], now, dry_run, held.get(t.region.name), shares.get(t.ref.key), alert_rate
                        ),
                        free,
                    )
                )
            return results
        finally:
            for lease in leases.values():
                lease.release()

    def _held(self, target: Target, state: PoolState, hold: Any, now: datetime) -> Evaluation:
        """A held region: a failover's source is left alone; a fenced region is kept drained."""
        reason = f"held by {hold.instance} ({hold.kind})"
        steps: tuple[Step, ...] = ()
        if hold.kind == "fenced":
            steps = tuple(Step("drain", h.name, "region fenced by a failover") for h in state.hosts if h.allow_new_session)
        decision = Decision("held", 0, steps, reason)
        applied = (
            execute(
                self.gateway,
                state,
                decision,
                rules_for(target.policy, phase_at(target.policy, now)),
                message=target.policy.logoff_message,
            )
            if steps
            else []
        )
        log_event(log, "autoscale.held", pool=target.ref.key, instance=hold.instance, kind=hold.kind, actions=len(applied))
        return Evaluation(target.ref.key, decision, tuple(applied))

    def _evaluate(
        self,
        target: Target,
        state: PoolState,
        now: datetime,
        dry_run: bool | None,
        hold: Any = None,
        announce: int | None = None,
        alert_rate: float | None = None,
    ) -> Evaluation:
        key, policy = target.ref.key, target.policy
        try:
            memory = self.store.load(key)
            if announce is not None:
                announce_to(memory, state, announce, now, timedelta(hours=1))
            if alert_rate is not None:
                memory.alert_rate, memory.alert_until = alert_rate, now + timedelta(minutes=15)
            today = local_time(policy, now).date()
            history = self.store.history(key, today)
            seen = history.days.get(today)
            base = DayCounts(list(seen.arrivals), list(seen.departures)) if seen else None
            dry = policy.dry_run if dry_run is None else dry_run
            reserve = _reserve(hold, key, state, policy, now)
            leave = "" if announce is not None or reserve else target.left_alone(state)  # a failover warms it anyway
            if state.scaling_plan and not leave and target.managed:
                log_event(log, "autoscale.scaling_plan_taken_over", level=30, pool=key, scaling_plan=state.scaling_plan)
            decision, applied = step(self.gateway, state, memory, history, policy, now, dry_run=dry, reserve=reserve, leave=leave)
            self.store.save(key, memory)
            self.store.save_day(key, today, history, base)
            if applied:
                self.store.ledger(key, now, policy.algorithm, decision, applied)
                publish.actions(target, decision, applied)
            if leave:
                log_event(log, "autoscale.left_alone", pool=key, reason=leave)
            else:
                log_event(
                    log,
                    "autoscale.decision",
                    pool=key,
                    policy=policy.algorithm,
                    target_hosts=decision.target_hosts,
                    reason=decision.reason,
                    actions=len(decision.actions),
                    dry_run=dry,
                    hosts=len(state.hosts),
                    hosts_running=sum(1 for h in state.hosts if h.power == "running"),
                    hosts_serving=sum(
                        1 for h in state.hosts if h.power == "running" and h.status == "Available" and h.allow_new_session
                    ),
                    sessions=sum(len(h.sessions) for h in state.hosts),
                )
            return Evaluation(key, decision, tuple(applied))
        except Exception as exc:  # one pool failing never stops the others
            log_event(log, "autoscale.pool_failed", level=40, pool=key, error=f"{type(exc).__name__}: {exc}")
            return Evaluation(key, Decision(policy.algorithm, 0, (), "failed"), (), f"{type(exc).__name__}: {exc}")

    def what_if(self, name: str, algorithm: Policy | None = None) -> tuple[Target, Decision]:
        """The decision for a pool now, without acting or recording anything (a held region says so)."""
        from shared.errors import DependencyError
        from shared.state import holds as region_holds

        target = self.find(name)
        try:
            hold = region_holds.read().get(target.region.name)
        except DependencyError:
            return target, Decision("held", 0, (), "region holds unreadable: no scale action")
        if hold is not None and not hold.allows_scaling:
            return target, Decision("held", 0, (), f"held by {hold.instance} ({hold.kind})")
        now = self.now()
        try:
            state = self.gateway.read_pool(target.ref)
        except DependencyError as exc:  # ARM's failure, passed on: a 502 for the what-if caller
            raise DependencyError(str(exc), title="Azure did not answer", http_status=502) from exc
        memory = self.store.load(target.ref.key)
        history = self.store.history(target.ref.key, local_time(target.policy, now).date())
        rate = observe(state, memory, ArrivalHistory(), target.policy, now)  # a scratch history: nothing is recorded
        policy = target.policy
        reserve = _reserve(hold, target.ref.key, state, policy, now)
        leave = "" if reserve else target.left_alone(state)
        if leave:
            return target, Decision("left", 0, (), leave)
        rules = replace(rules_for(policy, phase_at(policy, now)), reserve_hosts=reserve)
        decision = plan(
            algorithm or policy.algorithm,
            snapshot_of(state, memory, policy, now),
            rules,
            forecast_for(state, memory, history, policy, now, rate),
        )
        return target, decision


def split_by_hosts(sessions: int, hosts: dict[str, int]) -> dict[str, int]:
    """`sessions` spread over pools in proportion to their host counts (`hosts`, by pool key), rounded up so a
    failover's seats are never short; evenly when no pool has a host."""
    total = sum(hosts.values())
    if not total:
        return {key: -(-sessions // max(1, len(hosts))) for key in hosts}
    return {key: -(-sessions * n // total) for key, n in hosts.items()}


def _seated(shares: dict[str, int], states: dict[str, PoolState]) -> dict[str, int]:
    """An announcement never asks a pool for more than its seats (every host at its session limit)."""
    capped = {}
    for key, share in shares.items():
        seats = len(states[key].hosts) * max(1, states[key].max_session_limit)
        if share > seats:
            log_event(log, "autoscale.announce_capped", level=30, pool=key, announced=share, seats=seats)
        capped[key] = min(share, seats)
    return capped


def _reserve(hold: Any, key: str, state: PoolState, policy: AutoscalePolicy, now: datetime) -> int:
    """Hosts a target hold keeps serving in this pool: its incoming seats at the phase's capacity threshold."""
    from shared.autoscale.planner import hosts_needed

    if hold is None or hold.kind != "target":
        return 0
    seats = hold.pool_seats.get(key, 0)
    return hosts_needed(seats, state.max_session_limit, rules_for(policy, phase_at(policy, now)).capacity_threshold_pct)
