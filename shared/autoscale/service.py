"""One autoscale evaluation for one or many pools: read (batched), observe, forecast, plan, execute, record.

State per pool lives in Table storage:
- `autoscalestate`:  last evaluation, last session count, last scale-out, hosts started / warned, announced arrivals;
- `logonhistory`:    one row per pool and local day with logons and departures per 5-minute slot (the forecast);
- `autoscaleledger`: every action with its reason and result (and every dry-run decision).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.autoscale.executor import Applied, execute
from shared.autoscale.forecast import ArrivalHistory, DayCounts, build_forecast, from_entity, to_entity
from shared.autoscale.planner import Decision, Forecast, HostView, Policy, PoolSnapshot, Step, plan
from shared.autoscale.rules import local_time, phase_at, rules_for
from shared.azure.models import PoolRef, PoolState
from shared.clock import iso
from shared.config.model import NO_AUTOSCALE, AutoscalePolicy, HostPool, Region, Topology
from shared.errors import NotFoundError
from shared.telemetry import get_logger, log_event

log = get_logger("autoscale")
BOOT_ALLOWANCE = timedelta(minutes=15)  # a host Tandem started counts as coming capacity this long
RECENT = timedelta(minutes=5)  # the window for the observed logon rate


@dataclass
class PoolMemory:
    """What one evaluation leaves for the next."""

    last_eval: datetime | None = None
    last_sessions: int | None = None
    last_scale_out: datetime | None = None
    started: dict[str, datetime] = field(default_factory=dict)
    notified: dict[str, datetime] = field(default_factory=dict)
    incoming: int = 0
    incoming_base: int = 0
    incoming_until: datetime | None = None
    alert_rate: float = 0.0
    alert_until: datetime | None = None
    left: str = ""  # why the last evaluation left the pool alone ('' when Tandem scaled it)

    def to_entity(self) -> dict[str, Any]:
        """Table columns."""
        started = {k: v.isoformat() for k, v in self.started.items()}
        warned = {k: v.isoformat() for k, v in self.notified.items()}
        return {
            "state": json.dumps(
                {
                    "last_eval": iso(self.last_eval),
                    "last_sessions": self.last_sessions,
                    "last_scale_out": iso(self.last_scale_out),
                    "started": started,
                    "notified": warned,
                    "incoming": self.incoming,
                    "incoming_base": self.incoming_base,
                    "incoming_until": iso(self.incoming_until),
                    "alert_rate": self.alert_rate,
                    "alert_until": iso(self.alert_until),
                    "left": self.left,
                }
            ),
            "left": self.left,
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any] | None) -> PoolMemory:
        """The inverse of to_entity (an unreadable row starts afresh)."""
        try:
            d = json.loads(str((entity or {})["state"]))
        except (KeyError, ValueError):
            return cls()
        return cls(
            last_eval=_dt(d.get("last_eval")),
            last_sessions=d.get("last_sessions"),
            last_scale_out=_dt(d.get("last_scale_out")),
            started={k: v for k, v in ((k, _dt(v)) for k, v in d.get("started", {}).items()) if v},
            notified={k: v for k, v in ((k, _dt(v)) for k, v in d.get("notified", {}).items()) if v},
            incoming=int(d.get("incoming") or 0),
            incoming_base=int(d.get("incoming_base") or 0),
            incoming_until=_dt(d.get("incoming_until")),
            alert_rate=float(d.get("alert_rate") or 0.0),
            alert_until=_dt(d.get("alert_until")),
            left=str(d.get("left") or ""),
        )


def _merged(newer: list[int], mine: list[int], base: list[int]) -> list[int]:
    """The newer row plus what this evaluation added over the row it had read."""
    return [n + max(0, m - b) for n, m, b in zip(newer, mine, base, strict=True)]


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class AutoscaleStore:
    """Table-backed state, history and ledger; history is cached per process (only today's row changes)."""

    def __init__(self) -> None:
        self._history: dict[str, ArrivalHistory] = {}
        self._etags: dict[tuple[str, date], str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _table(name: str) -> Any:
        from shared.state.tables import table

        return table(name)

    def load(self, key: str) -> PoolMemory:
        """A pool's memory (empty for a new pool)."""
        from azure.core.exceptions import ResourceNotFoundError

        from shared.state.tables import safe_key

        try:
            return PoolMemory.from_entity(self._table("autoscalestate").get_entity("pool", safe_key(key)))
        except ResourceNotFoundError:
            return PoolMemory()

    def save(self, key: str, memory: PoolMemory) -> None:
        """Write a pool's memory."""
        from shared.state.tables import safe_key

        self._table("autoscalestate").upsert_entity(
            {"PartitionKey": "pool", "RowKey": safe_key(key), "pool": key, **memory.to_entity()}
        )

    def history(self, key: str, today: date) -> ArrivalHistory:
        """A pool's recorded days: past days read once per process, today's row read fresh (other instances write
        it), with its ETag kept for `save_day`."""
        from azure.core.exceptions import ResourceNotFoundError

        from shared.state.tables import safe_key

        with self._lock:
            past = self._history.get(key)
        if past is None:
            since = (today - timedelta(days=35)).isoformat()
            rows = self._table("logonhistory").query_entities(
                "PartitionKey eq @p and RowKey ge @d", parameters={"p": safe_key(key), "d": since}
            )
            past = ArrivalHistory({date.fromisoformat(r["RowKey"]): from_entity(r) for r in rows if r["RowKey"] < today.isoformat()})
            with self._lock:
                past = self._history.setdefault(key, past)
        days = dict(past.days)
        try:
            row = self._table("logonhistory").get_entity(safe_key(key), today.isoformat())
            days[today] = from_entity(row)
            self._etags[(key, today)] = row.metadata["etag"]
        except ResourceNotFoundError:
            self._etags.pop((key, today), None)
        return ArrivalHistory(days)

    def save_day(self, key: str, day: date, history: ArrivalHistory, base: DayCounts | None = None) -> None:
        """Write one day of a pool's history. The write is conditional on the row read by `history()`; when another
        writer changed it meanwhile, this evaluation's additions (over `base`) are merged into the newer row."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        from shared.state.tables import safe_key

        counts = history.days.get(day)
        if counts is None:
            return
        table = self._table("logonhistory")
        pk, rk = safe_key(key), day.isoformat()
        for _ in range(3):
            etag = self._etags.get((key, day))
            entity = {"PartitionKey": pk, "RowKey": rk, **to_entity(counts)}
            try:
                if etag is None:
                    table.create_entity(entity)
                else:
                    table.update_entity(entity, etag=etag, match_condition=MatchConditions.IfNotModified)
                self._etags.pop((key, day), None)
                return
            except (ResourceModifiedError, ResourceExistsError, ResourceNotFoundError):
                try:
                    row = table.get_entity(pk, rk)
                except ResourceNotFoundError:  # deleted meanwhile: create it afresh with what we have
                    self._etags.pop((key, day), None)
                    continue
                newer = from_entity(row)
                mine = base or DayCounts()
                counts = DayCounts(
                    _merged(newer.arrivals, counts.arrivals, mine.arrivals),
                    _merged(newer.departures, counts.departures, mine.departures),
                )
                base = newer
                self._etags[(key, day)] = row.metadata["etag"]
        log_event(log, "autoscale.history_conflict", level=30, pool=key, day=day.isoformat())  # left as the others wrote it

    def ledger(self, key: str, when: datetime, policy: str, decision: Decision, applied: list[Applied]) -> None:
        """Record every action and its reason (one transaction per evaluation)."""
        from shared.state.tables import safe_key

        stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        rows = [
            {
                "PartitionKey": safe_key(key),
                "RowKey": f"{stamp}-{i:03d}",
                "time": when.isoformat(),
                "policy": policy,
                "action": a.step.action,
                "host": a.step.host,
                "reason": a.step.reason,
                "result": a.result,
                "detail": a.detail[:1000],
                "target_hosts": decision.target_hosts,
            }
            for i, a in enumerate(applied)
        ]
        table = self._table("autoscaleledger")
        for chunk in range(0, len(rows), 100):
            table.submit_transaction([("upsert", row) for row in rows[chunk : chunk + 100]])

    def ledger_rows(self, key: str) -> list[dict[str, Any]]:
        """A pool's ledger, oldest first."""
        from shared.state.tables import safe_key

        return list(self._table("autoscaleledger").query_entities("PartitionKey eq @p", parameters={"p": safe_key(key)}))


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
            _holds_unreadable(chosen, str(exc))
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
                _publish(target, decision, applied)
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


def _holds_unreadable(chosen: list[Target], error: str) -> None:
    """The alert: autoscale stood still in these regions because it could not tell whether they are held."""
    from shared import events

    regions = sorted({t.region.name for t in chosen})
    log_event(log, "autoscale.holds_unreadable", level=40, regions=regions, error=error)
    events.publish("Tandem.Autoscale.HoldsUnreadable", "holds", {"regions": regions, "error": error[:300]})


EVENT_TYPES = {
    "start": "Tandem.Autoscale.HostStarted",
    "deallocate": "Tandem.Autoscale.HostStopped",
    "drain": "Tandem.Autoscale.HostDrained",
    "undrain": "Tandem.Autoscale.HostUndrained",
    "logoff": "Tandem.Autoscale.UsersLoggedOff",
    "message": "Tandem.Autoscale.UsersWarned",
}


def _publish(target: Target, decision: Decision, applied: list[Applied]) -> None:
    from shared import events

    batch = [
        (
            EVENT_TYPES[a.step.action],
            f"{target.ref.key}/{a.step.host}",
            {
                "pool": target.pool.name,
                "region": target.region.name,
                "host": a.step.host,
                "action": a.step.action,
                "reason": a.step.reason,
                "result": a.result,
                "target_hosts": decision.target_hosts,
            },
        )
        for a in applied
        if a.ok and a.result != "dry_run"
    ]
    events.publish_many(batch)
