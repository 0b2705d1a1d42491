"""Autoscale burst: logon misses, p95 wait and VM-hours of each policy on identical seeded days.

One host pool (60 hosts x 10 sessions, breadth-first) simulated by the ARM twin's behavioural model in-process
on a virtual clock. Every policy runs through Tandem's own evaluation step (`shared.autoscale.service.step`:
observe, forecast, plan, execute with the real executor), against a gateway-shaped adapter over the model.
Tandem first lives through 14 days of history (it learns its arrival curves from what it observes); then each
scenario is one Monday, played for every policy from the same trace.

Fixed parameters (none tuned per policy): 20% of hosts on at 06:00; boot-to-Available lognormal, median
4 min, p95 8 min; a logon that finds no free slot is a miss and retries every 2 minutes until it lands.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.runtime.clock import VirtualClock
from local.twins.arm.model import Estate, Host, Pool
from local.twins.arm.seed import GENERATED_SUBSCRIPTION, Seed, build_estate, pool_seed
from shared.autoscale.forecast import ArrivalHistory
from shared.autoscale.service import PoolMemory, announce_to, step
from shared.azure.models import HostState, Outcome, PoolRef, PoolState, UserSession
from shared.config.model import AutoscalePolicy

HOSTS, LIMIT, USERS_MAX = 60, 10, 800
DAY_START, DAY_END = 6, 24
MEASURED = date(2026, 11, 30)  # a Monday
HISTORY_DAYS = 14
RETRY = timedelta(minutes=2)
REF = PoolRef(GENERATED_SUBSCRIPTION, "rg-avd", "hp0", ("rg-hosts",))


def _policy(algorithm: str, phases: list[dict[str, Any]], **extra: Any) -> AutoscalePolicy:
    return AutoscalePolicy.model_validate({"algorithm": algorithm, "time_zone": "UTC", "phases": phases, **extra})


POLICIES: dict[str, tuple[AutoscalePolicy, timedelta]] = {
    "native": (_policy("native", [
        {"phase": "ramp_up", "start": "07:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 20},
        {"phase": "peak", "start": "09:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 20},
        {"phase": "ramp_down", "start": "17:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 10},
        {"phase": "off_peak", "start": "20:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 10}]),
        timedelta(minutes=1)),
    "legacy": (_policy("legacy", [{"phase": "peak", "start": "07:00"}, {"phase": "off_peak", "start": "18:00"}],
                       legacy={"minimum_hosts": 12}), timedelta(minutes=15)),
    "prestage": (_policy("native", [
        {"phase": "off_peak", "start": "00:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 0},
        {"phase": "ramp_up", "start": "07:30", "capacity_threshold_pct": 60, "min_hosts": 30, "minimum_hosts_pct": 50},
        {"phase": "peak", "start": "09:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 50},
        {"phase": "ramp_down", "start": "18:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 0}]),
        timedelta(minutes=1)),
    "tandem": (_policy("tandem", [
        {"phase": "ramp_up", "start": "07:00", "capacity_threshold_pct": 90},
        {"phase": "peak", "start": "09:00", "capacity_threshold_pct": 90},
        {"phase": "ramp_down", "start": "17:00", "capacity_threshold_pct": 90},
        {"phase": "off_peak", "start": "20:00", "capacity_threshold_pct": 90}],
        weekdays_only=False, cooldown="5m", boot_lead="10m"), timedelta(minutes=1)),
}


@dataclass(frozen=True)
class Visit:
    """One user's day: when they first try to sign in and how long they stay."""

    upn: str
    arrive: datetime
    stay: timedelta


def trace(day: date, scenario: str, seed: int) -> list[Visit]:
    """A seeded day of logons; the same for every policy."""
    rng = random.Random(f"{seed}-{day}-{scenario}")
    weekend = day.weekday() >= 5
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)

    def users(count: int, centre: timedelta, start: int) -> list[Visit]:
        out = []
        for i in range(count):
            if rng.random() < 0.10:
                at = base + timedelta(hours=rng.uniform(6.5, 17.0))  # the tenth spread over the day
            else:
                at = base + centre + timedelta(minutes=rng.gauss(0, 20))
            stay = timedelta(hours=max(0.5, rng.gauss(8, 1)))
            out.append(Visit(f"user{start + i:03d}@contoso.com", at, stay))
        return out

    eight, half_seven = timedelta(hours=8), timedelta(hours=7, minutes=30)
    if weekend:
        visits = users(30, eight, 1)
    elif scenario == "surprise_2x":
        visits = users(500, half_seven, 1)
    elif scenario == "quiet":
        visits = users(60, eight, 1)
    else:
        visits = users(250, eight, 1)
        if scenario == "failover_storm":
            visits += [Visit(f"user{251 + i:03d}@contoso.com", base + timedelta(hours=10, minutes=rng.uniform(0, 10)),
                             timedelta(hours=max(0.5, rng.gauss(8, 1)))) for i in range(250)]
    return sorted(visits, key=lambda v: v.arrive)


class ModelGateway:
    """The gateway's interface over the in-process model (what the ARM twin would do over HTTPS)."""

    def __init__(self, estate: Estate, pool: Pool) -> None:
        self.estate, self.pool = estate, pool
        self.by_vm = {h.vm.id: h for h in pool.hosts.values() if h.vm is not None}

    def read(self) -> PoolState:
        now = self.estate.settle()
        hosts = tuple(HostState(h.name, h.vm.id if h.vm else "", h.status(now), h.allow_new_session,
                                h.vm.power(now) if h.vm else "running", dict(h.vm.tags) if h.vm else {},
                                tuple(UserSession(str(s.id), s.upn, s.state, s.created) for s in h.sessions.values()))
                      for h in self.pool.hosts.values())
        return PoolState(REF, self.pool.load_balancer_type, self.pool.max_session_limit, False, hosts)

    def _host(self, name: str) -> Host:
        return self.pool.hosts[name]

    def set_drain(self, ref: PoolRef, hosts: Any, drain: bool) -> list[Outcome]:
        for name in hosts:
            self.estate.set_drain(self._host(name), not drain)
        return [Outcome(n, "drain" if drain else "undrain", "done") for n in hosts]

    def start_vms(self, vm_ids: Any) -> list[Outcome]:
        return [Outcome(v, "start", "done" if self.estate.start_vm(self.by_vm[v].vm) else "already")  # type: ignore[arg-type]
                for v in vm_ids]

    def deallocate_vms(self, vm_ids: Any) -> list[Outcome]:
        return [Outcome(v, "deallocate", "done" if self.estate.deallocate_vm(self.by_vm[v].vm) else "already")  # type: ignore[arg-type]
                for v in vm_ids]

    def send_message(self, ref: PoolRef, host: str, session_id: str, title: str, body: str) -> Outcome:
        self.estate.send_message(self._host(host), session_id, title, body)
        return Outcome(f"{host}/{session_id}", "message", "done")

    def host_sessions(self, ref: PoolRef, host: str) -> list[UserSession]:
        self.estate.settle()
        return [UserSession(str(s.id), s.upn, s.state, s.created) for s in self._host(host).sessions.values()]

    def logoff(self, ref: PoolRef, host: str, session_id: str) -> Outcome:
        self.estate.logoff(self._host(host), session_id)
        return Outcome(f"{host}/{session_id}", "logoff", "done")


def _estate(day: date) -> tuple[VirtualClock, Estate, Pool]:
    clock = VirtualClock(datetime(day.year, day.month, day.day, DAY_START, tzinfo=UTC))
    seed = pool_seed(HOSTS, running=HOSTS // 5, users=USERS_MAX, max_sessions=LIMIT)
    seed["timings"] = {"boot": "1s", "deallocate": "60s", "agent_ready": {"lognormal": ["239s", "479s"]}}
    seed["seed"] = day.toordinal()
    estate = build_estate(Seed.model_validate(seed), clock)
    return clock, estate, estate.pool(GENERATED_SUBSCRIPTION, "rg-avd", "hp0")


@dataclass
class DayResult:
    misses: int = 0
    waits: list[float] = field(default_factory=list)
    vm_minutes: int = 0


def play(day: date, scenario: str, name: str, history: ArrivalHistory, seed: int) -> DayResult:
    """One policy through one day; `history` is what Tandem has learned (it keeps learning)."""
    policy, cadence = POLICIES[name]
    clock, estate, pool = _estate(day)
    gateway = ModelGateway(estate, pool)
    memory = PoolMemory()
    visits = trace(day, scenario, seed)
    pending = [(v.arrive, i, v) for i, v in enumerate(visits)]
    leaves: list[tuple[datetime, str]] = []
    first_try = {v.upn: v.arrive for v in visits}
    result = DayResult()
    t = clock.now()
    end = t.replace(hour=0) + timedelta(hours=DAY_END)
    announced = False
    while t < end:
        t += timedelta(minutes=1)
        due = sorted(p for p in pending if p[0] <= t)
        pending = [p for p in pending if p[0] > t]
        for at, i, visit in due:
            clock.set(max(clock.now(), at))
            logon = estate.logon(pool, visit.upn)
            if logon.outcome == "no_capacity":
                result.misses += 1
                pending.append((at + RETRY, i, visit))
            elif logon.outcome == "connected":
                result.waits.append((at - first_try[visit.upn]).total_seconds())
                leaves.append((at + visit.stay, visit.upn))
        for _, upn in [x for x in leaves if x[0] <= t]:
            estate.logoff_user(pool, upn)
        leaves = [x for x in leaves if x[0] > t]
        clock.set(t)
        if scenario == "failover_storm" and not announced and t >= t.replace(hour=9, minute=55):
            announced = True
            if name == "tandem":  # only Tandem hears Tandem.Failover.Started
                announce_to(memory, gateway.read(), 250, t, timedelta(hours=1))
        minute = int((t - t.replace(hour=0, minute=0)).total_seconds() // 60)
        if minute % int(cadence.total_seconds() // 60) == 0:
            step(gateway, gateway.read(), memory, history, policy, t, algorithm=policy.algorithm)
        result.vm_minutes += sum(1 for h in pool.hosts.values() if h.vm and h.vm.power(t) != "deallocated")
    return result


def oracle(day: date, scenario: str, seed: int) -> DayResult:
    """The physical limit: ceil(concurrent / 10) hosts, each started one median boot before its first logon."""
    visits = trace(day, scenario, seed)
    base = datetime(day.year, day.month, day.day, DAY_START, tzinfo=UTC)
    minutes = (DAY_END - DAY_START) * 60
    concurrent = [0] * (minutes + 1)
    for v in visits:
        start = max(0, int((v.arrive - base).total_seconds() // 60))
        stop = min(minutes, int((v.arrive + v.stay - base).total_seconds() // 60))
        for m in range(start, stop):
            concurrent[m] += 1
    hosts = [math.ceil(c / LIMIT) for c in concurrent]
    starts = sum(max(0, b - a) for a, b in zip([0, *hosts], hosts, strict=False))
    return DayResult(0, [0.0], sum(hosts) + starts * 4)


def _summary(r: DayResult) -> dict[str, Any]:
    waits = sorted(r.waits) or [0.0]
    return {"logon_misses": r.misses, "p95_wait_s": round(waits[min(len(waits) - 1, int(0.95 * len(waits)))], 1),
            "vm_hours": round(r.vm_minutes / 60, 1)}


def run(seed: int = 7) -> dict[str, Any]:
    """Learn for 14 days, then play each scenario's Monday with every policy."""
    began = time.perf_counter()
    history = ArrivalHistory()
    for back in range(HISTORY_DAYS, 0, -1):
        play(MEASURED - timedelta(days=back), "typical", "tandem", history, seed)
    scenarios: dict[str, dict[str, Any]] = {}
    for scenario in ("typical", "surprise_2x", "failover_storm", "quiet"):
        row = {name: _summary(play(MEASURED, scenario, name, copy.deepcopy(history), seed)) for name in POLICIES}
        row["oracle"] = _summary(oracle(MEASURED, scenario, seed))
        scenarios[scenario] = row
    typical = scenarios["typical"]
    return {"scenarios": scenarios,
            "tandem_vs_oracle_typical": round(typical["tandem"]["vm_hours"] / typical["oracle"]["vm_hours"], 3),
            "wall_s": round(time.perf_counter() - began, 1)}
