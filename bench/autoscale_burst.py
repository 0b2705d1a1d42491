"""Autoscale burst: logon misses, p95 wait and VM-hours of each policy and reference on identical seeded days.

One host pool (60 hosts x 10 sessions, breadth-first) simulated by the ARM twin's behavioural model in-process
on a virtual clock. Every scaling policy runs through Tandem's own evaluation step
(`shared.autoscale.evaluate.step`: observe, forecast, plan, execute with the real executor), against a
gateway-shaped adapter over the model. Tandem first lives through 14 days of history (it learns its arrival
curves from what it observes); then each scenario is one Monday, played for every policy from the same trace,
for each seed.

What is compared, and why each is fair:
- `native`: the scaling-plan algorithm at the settings Microsoft's scaling-plan docs use as their example
  (ramp-up 07:00 with a 20% minimum and a 60% capacity threshold, peak 09:00, ramp-down 17:00 at 10% and 90%,
  off-peak 20:00), evaluated every minute (the service is event-driven; a minute is generous to it).
- `native_same`: the same algorithm at exactly Tandem's settings (its phases, its 90% threshold, no minimum
  percentage, the one working-hours host Tandem keeps as 1%), so the algorithm's share of the saving is its own row.
- `legacy`: the Azure Automation runbook (basicScale.ps1) every 15 minutes at its defaults, a 12-host minimum.
- `prestage`: Nerdio-style: pre-staged hosts ready by 07:00 (started one p95 boot earlier), sized to the
  peak concurrent sessions recorded over the 14 days of history at the 60% burst threshold, held to 17:00,
  with native-style burst scaling at 60% and one active host outside.
- `clairvoyant`: knows the day's logons and stays in advance, runs on the same broker and boot distribution:
  it starts each host one p95 boot time before the first session that needs it, keeps exactly the hosts the
  known sessions fill at 100%, drains the least-loaded excess hosts and stops each one as soon as it is empty
  and no known logon needs it. No policy can know more; it is the reference Tandem is held to.
- `lower_bound`: perfect repacking (every session moved every minute into ceil(sessions / 10) hosts, each start
  charged one median boot, nothing charged for stopping). No broker can place users like that; it bounds
  every policy from below and is reported for scale, not as a goal.

Fixed parameters, the same for every row: 20% of hosts on at 06:00; boot-to-Available lognormal, median 4 min,
p95 8 min; a logon that finds no free slot is a miss and retries every 2 minutes until it lands.
"""

from __future__ import annotations

import concurrent.futures
import copy
import math
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.runtime.clock import VirtualClock
from local.twins.arm.model import Delay, Estate, Host, Pool, Vm
from local.twins.arm.seed import GENERATED_SUBSCRIPTION, Seed, build_estate, pool_seed
from shared.autoscale.evaluate import announce_to, step
from shared.autoscale.forecast import ArrivalHistory
from shared.autoscale.planner import minimum_hosts
from shared.autoscale.store import PoolMemory
from shared.azure.models import HostState, Outcome, PoolRef, PoolState, UserSession
from shared.config.model import AutoscalePolicy

HOSTS, LIMIT, USERS_MAX = 60, 10, 800
DAY_START, DAY_END = 6, 24
MEASURED = date(2026, 11, 30)  # a Monday
HISTORY_DAYS = 14
SEEDS = (1, 2, 3, 4, 5)
SCENARIOS = ("typical", "surprise_2x", "failover_storm", "quiet", "new_team")
RETRY = timedelta(minutes=2)
BOOT = Delay("lognormal", 239, 479)  # boot to Available: the agent_ready distribution (VM boot itself 1 s)
CURVE_STEP = 5  # minutes between the points of a day's curve (what `scripts/tandem report` plots)
REF = PoolRef(GENERATED_SUBSCRIPTION, "rg-avd", "hp0", ("rg-hosts",))
PRESTAGE_READY, PRESTAGE_UNTIL, BURST_PCT = (7, 0), "17:00", 60
TANDEM_PHASES = (("ramp_up", "07:00"), ("peak", "09:00"), ("ramp_down", "17:00"), ("off_peak", "20:00"))
CADENCE = {"legacy": timedelta(minutes=15)}  # every other policy is evaluated every minute


def _policy(algorithm: str, phases: list[dict[str, Any]], **extra: Any) -> AutoscalePolicy:
    return AutoscalePolicy.model_validate({"algorithm": algorithm, "time_zone": "UTC", "phases": phases, **extra})


def hosts_pct(hosts: int) -> int:
    """The smallest minimum percentage the native planner turns into at least `hosts` of the pool's hosts."""
    return next(p for p in range(101) if minimum_hosts(p, HOSTS) >= min(hosts, HOSTS))


def prestage_hosts(peak_sessions: int) -> int:
    """Nerdio's hosts to be ready at the start of work: the recorded peak at the burst threshold."""
    return min(HOSTS, math.ceil(peak_sessions * 100 / (LIMIT * BURST_PCT)))


def policies(recorded_peak: int) -> dict[str, AutoscalePolicy]:
    """Every scaling policy that runs through Tandem's evaluation step; `recorded_peak` sizes the pre-stage."""
    lead = math.ceil(BOOT.p95 / 60) + 2  # started a p95 boot and two evaluations before the work day begins
    staged = datetime(2026, 1, 1, *PRESTAGE_READY) - timedelta(minutes=lead)
    one, staged_pct = hosts_pct(1), hosts_pct(prestage_hosts(recorded_peak))
    return {
        "native": _policy(
            "native",
            [
                {"phase": "ramp_up", "start": "07:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 20},
                {"phase": "peak", "start": "09:00", "capacity_threshold_pct": 60, "minimum_hosts_pct": 20},
                {"phase": "ramp_down", "start": "17:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 10},
                {"phase": "off_peak", "start": "20:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 10},
            ],
        ),
        "native_same": _policy(
            "native",
            [
                {"phase": p, "start": at, "capacity_threshold_pct": 90, "minimum_hosts_pct": one if p in ("ramp_up", "peak") else 0}
                for p, at in TANDEM_PHASES
            ],
        ),
        "legacy": _policy(
            "legacy", [{"phase": "peak", "start": "07:00"}, {"phase": "off_peak", "start": "18:00"}], legacy={"minimum_hosts": 12}
        ),
        "prestage": _policy(
            "native",
            [
                {"phase": "off_peak", "start": "00:00", "capacity_threshold_pct": BURST_PCT, "minimum_hosts_pct": one},
                {
                    "phase": "ramp_up",
                    "start": staged.strftime("%H:%M"),
                    "capacity_threshold_pct": BURST_PCT,
                    "minimum_hosts_pct": staged_pct,
                },
                {"phase": "peak", "start": "09:00", "capacity_threshold_pct": BURST_PCT, "minimum_hosts_pct": staged_pct},
                {"phase": "ramp_down", "start": PRESTAGE_UNTIL, "capacity_threshold_pct": BURST_PCT, "minimum_hosts_pct": one},
            ],
        ),
        "tandem": _policy(
            "tandem",
            [{"phase": p, "start": at, "capacity_threshold_pct": 90} for p, at in TANDEM_PHASES],
            weekdays_only=False,
            cooldown="5m",
            boot_lead="10m",
        ),
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
            visits += [
                Visit(
                    f"user{251 + i:03d}@contoso.com",
                    base + timedelta(hours=10, minutes=rng.uniform(0, 10)),
                    timedelta(hours=max(0.5, rng.gauss(8, 1))),
                )
                for i in range(250)
            ]
        elif scenario == "new_team":  # 150 people the history never saw, arriving together, unannounced
            visits += [
                Visit(
                    f"user{251 + i:03d}@contoso.com",
                    base + timedelta(hours=9, minutes=30 + rng.gauss(0, 10)),
                    timedelta(hours=max(0.5, rng.gauss(8, 1))),
                )
                for i in range(150)
            ]
    return sorted(visits, key=lambda v: v.arrive)


def concurrency(visits: list[Visit], day: date) -> list[int]:
    """Sessions present in each minute from DAY_START to DAY_END, had every logon landed at once."""
    base = datetime(day.year, day.month, day.day, DAY_START, tzinfo=UTC)
    minutes = (DAY_END - DAY_START) * 60
    present = [0] * (minutes + 1)
    for v in visits:
        start = max(0, int((v.arrive - base).total_seconds() // 60))
        stop = min(minutes, int((v.arrive + v.stay - base).total_seconds() // 60))
        for m in range(start, stop):
            present[m] += 1
    return present


def _vm(host: Host) -> Vm:
    if host.vm is None:
        raise ValueError(f"{host.name} has no VM in the model")
    return host.vm


class ModelGateway:
    """The gateway's interface over the in-process model (what the ARM twin would do over HTTPS)."""

    def __init__(self, estate: Estate, pool: Pool) -> None:
        self.estate, self.pool = estate, pool
        self.by_vm = {h.vm.id: h for h in pool.hosts.values() if h.vm is not None}

    def read(self) -> PoolState:
        now = self.estate.settle()
        hosts = tuple(
            HostState(
                h.name,
                h.vm.id if h.vm else "",
                h.status(now),
                h.allow_new_session,
                h.vm.power(now) if h.vm else "running",
                dict(h.vm.tags) if h.vm else {},
                tuple(UserSession(str(s.id), s.upn, s.state, s.created) for s in h.sessions.values()),
            )
            for h in self.pool.hosts.values()
        )
        return PoolState(REF, self.pool.load_balancer_type, self.pool.max_session_limit, False, hosts)

    def _host(self, name: str) -> Host:
        return self.pool.hosts[name]

    def set_drain(self, ref: PoolRef, hosts: Any, drain: bool) -> list[Outcome]:
        for name in hosts:
            self.estate.set_drain(self._host(name), not drain)
        return [Outcome(n, "drain" if drain else "undrain", "done") for n in hosts]

    def start_vms(self, vm_ids: Any) -> list[Outcome]:
        return [Outcome(v, "start", "done" if self.estate.start_vm(_vm(self.by_vm[v])) else "already") for v in vm_ids]

    def deallocate_vms(self, vm_ids: Any) -> list[Outcome]:
        return [Outcome(v, "deallocate", "done" if self.estate.deallocate_vm(_vm(self.by_vm[v])) else "already") for v in vm_ids]

    def send_message(self, ref: PoolRef, host: str, session_id: str, title: str, body: str) -> Outcome:
        self.estate.send_message(self._host(host), session_id, title, body)
        return Outcome(f"{host}/{session_id}", "message", "done")

    def host_sessions(self, ref: PoolRef, host: str) -> list[UserSession]:
        self.estate.settle()
        return [UserSession(str(s.id), s.upn, s.state, s.created) for s in self._host(host).sessions.values()]

    def logoff(self, ref: PoolRef, host: str, session_id: str) -> Outcome:
        self.estate.logoff(self._host(host), session_id)
        return Outcome(f"{host}/{session_id}", "logoff", "done")


def _estate(day: date, seed: int) -> tuple[VirtualClock, Estate, Pool]:
    clock = VirtualClock(datetime(day.year, day.month, day.day, DAY_START, tzinfo=UTC))
    doc = pool_seed(HOSTS, running=HOSTS // 5, users=USERS_MAX, max_sessions=LIMIT)
    doc["timings"] = {"boot": "1s", "deallocate": "60s", "agent_ready": {"lognormal": [f"{BOOT.a:g}s", f"{BOOT.b:g}s"]}}
    doc["seed"] = day.toordinal() * 1000 + seed  # the boot draws differ by seed, never by policy
    doc["subscriptions"][0]["resource_groups"][0]["host_pools"][0]["start_vm_on_connect"] = True  # docs pair it with 0%
    estate = build_estate(Seed.model_validate(doc), clock)
    return clock, estate, estate.pool(GENERATED_SUBSCRIPTION, "rg-avd", "hp0")


@dataclass
class DayResult:
    misses: int = 0
    waits: list[float] = field(default_factory=list)
    vm_minutes: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)  # every CURVE_STEP: hosts on and serving, sessions, logons, misses


class Clairvoyant:
    """Knows the day's logons and stays; acts on the pool each minute with the tools every policy has (start,
    drain, undrain, deallocate), on the same broker and boot distribution."""

    def __init__(self, visits: list[Visit], day: date) -> None:
        self.base = datetime(day.year, day.month, day.day, DAY_START, tzinfo=UTC)
        self.need = [math.ceil(c / LIMIT) for c in concurrency(visits, day)]
        self.lead = math.ceil(BOOT.p95 / 60) + 1  # one p95 boot, plus the minute between acting and the next logons

    def act(self, estate: Estate, pool: Pool, now: datetime) -> None:
        minute = int((now - self.base).total_seconds() // 60)
        want = max(self.need[minute : minute + self.lead + 1] or [0])
        on = [h for h in pool.hosts.values() if h.vm is not None and h.vm.power(now) in ("starting", "running")]
        serving = [h for h in on if h.allow_new_session]
        leaving = [h for h in on if not h.allow_new_session]
        if len(serving) < want:
            missing = want - len(serving)
            for host in sorted(leaving, key=lambda h: (-len(h.sessions), h.name))[:missing]:
                estate.set_drain(host, True)
                leaving.remove(host)
                missing -= 1
            off = sorted(
                (h for h in pool.hosts.values() if h.vm is not None and h.vm.power(now) == "deallocated"), key=lambda h: h.name
            )
            for host in off[:missing]:
                estate.start_vm(_vm(host))
        for host in sorted(serving, key=lambda h: (len(h.sessions), h.name))[: max(0, len(serving) - want)]:
            if host.sessions:
                estate.set_drain(host, False)  # consolidate: the known sessions fit on the others
            else:
                estate.deallocate_vm(_vm(host))
        for host in leaving:
            if not host.sessions:
                estate.deallocate_vm(_vm(host))


def play(day: date, scenario: str, name: str, history: ArrivalHistory, seed: int, policy: AutoscalePolicy | None = None) -> DayResult:
    """One policy (or the clairvoyant reference when `policy` is None) through one day; `history` is what Tandem
    has learned (it keeps learning)."""
    clock, estate, pool = _estate(day, seed)
    gateway = ModelGateway(estate, pool)
    memory = PoolMemory()
    visits = trace(day, scenario, seed)
    seer = Clairvoyant(visits, day) if policy is None else None
    cadence = int(CADENCE.get(name, timedelta(minutes=1)).total_seconds() // 60)
    pending = [(v.arrive, i, v) for i, v in enumerate(visits)]
    leaves: list[tuple[datetime, str]] = []
    first_try = {v.upn: v.arrive for v in visits}
    result = DayResult()
    t = clock.now()
    end = t.replace(hour=0) + timedelta(hours=DAY_END)
    announced = False
    landed = missed = 0
    while t < end:
        t += timedelta(minutes=1)
        due = sorted(p for p in pending if p[0] <= t)
        pending = [p for p in pending if p[0] > t]
        for at, i, visit in due:
            clock.set(max(clock.now(), at))
            logon = estate.logon(pool, visit.upn)
            if logon.outcome == "no_capacity":
                result.misses += 1
                missed += 1
                pending.append((at + RETRY, i, visit))
            elif logon.outcome == "connected":
                landed += 1
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
        if seer is not None:
            seer.act(estate, pool, t)
        elif policy is not None and minute % cadence == 0:
            step(gateway, gateway.read(), memory, history, policy, t, algorithm=policy.algorithm)
        result.vm_minutes += sum(1 for h in pool.hosts.values() if h.vm and h.vm.power(t) != "deallocated")
        if minute % CURVE_STEP == 0:
            result.curve.append(pool.point(t, landed, missed))
            landed = missed = 0
    return result


def lower_bound(day: date, scenario: str, seed: int) -> DayResult:
    """Perfect repacking: ceil(concurrent / 10) hosts every minute, each start charged one median boot."""
    hosts = [math.ceil(c / LIMIT) for c in concurrency(trace(day, scenario, seed), day)]
    starts = sum(max(0, b - a) for a, b in zip([0, *hosts], hosts, strict=False))
    return DayResult(0, [0.0], sum(hosts) + starts * round(BOOT.a / 60))


def _summary(r: DayResult) -> dict[str, Any]:
    waits = sorted(r.waits) or [0.0]
    return {
        "logon_misses": r.misses,
        "p95_wait_s": round(waits[min(len(waits) - 1, int(0.95 * len(waits)))], 1),
        "vm_hours": round(r.vm_minutes / 60, 1),
    }


def recorded_peak(seed: int) -> int:
    """The most concurrent sessions on any day of the history: what an administrator reads off two weeks of
    insights to size a pre-stage."""
    return max(
        max(concurrency(trace(MEASURED - timedelta(days=back), "typical", seed), MEASURED - timedelta(days=back)))
        for back in range(HISTORY_DAYS, 0, -1)
    )


def one_seed(seed: int) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, list[dict[str, Any]]]]]:
    """Learn for 14 days, then play each scenario's Monday with every policy and reference: the figures, and each
    scenario's day curve per policy."""
    rows = policies(recorded_peak(seed))
    history = ArrivalHistory()
    for back in range(HISTORY_DAYS, 0, -1):
        play(MEASURED - timedelta(days=back), "typical", "tandem", history, seed, rows["tandem"])
    scenarios: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for scenario in SCENARIOS:
        days = {name: play(MEASURED, scenario, name, copy.deepcopy(history), seed, policy) for name, policy in rows.items()}
        days["clairvoyant"] = play(MEASURED, scenario, "clairvoyant", ArrivalHistory(), seed)
        scenarios[scenario] = {name: _summary(day) for name, day in days.items()}
        scenarios[scenario]["lower_bound"] = _summary(lower_bound(MEASURED, scenario, seed))
        curves[scenario] = {name: day.curve for name, day in days.items()}
    return scenarios, curves


FIGURES = ("logon_misses", "vm_hours", "p95_wait_s")


def aggregate(per_seed: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> dict[str, Any]:
    """Mean and worst of each figure, per scenario and policy, over the seeds."""
    first = next(iter(per_seed.values()))
    return {
        scenario: {
            name: {
                f: {
                    "mean": round(statistics.fmean(s[scenario][name][f] for s in per_seed.values()), 1),
                    "max": max(s[scenario][name][f] for s in per_seed.values()),
                }
                for f in FIGURES
            }
            for name in first[scenario]
        }
        for scenario in first
    }


def goals(scenarios: dict[str, Any], per_seed: dict[str, Any]) -> dict[str, Any]:
    """The goals, reported (never asserted): what Tandem reached against each reference."""

    def hours(scenario: str, name: str) -> float:
        return float(scenarios[scenario][name]["vm_hours"]["mean"])

    return {
        "tandem_zero_misses_every_seed": all(r["tandem"]["logon_misses"] == 0 for s in per_seed.values() for r in s.values()),
        "tandem_misses_worst": {sc: scenarios[sc]["tandem"]["logon_misses"]["max"] for sc in scenarios},
        "tandem_vs_clairvoyant_typical": round(hours("typical", "tandem") / hours("typical", "clairvoyant"), 3),
        "tandem_vs_clairvoyant": {sc: round(hours(sc, "tandem") / hours(sc, "clairvoyant"), 3) for sc in scenarios},
        "tandem_vs_lower_bound_typical": round(hours("typical", "tandem") / hours("typical", "lower_bound"), 3),
        "below_native_same_every_scenario": all(hours(sc, "tandem") < hours(sc, "native_same") for sc in scenarios),
        "below_native_every_scenario": all(hours(sc, "tandem") < hours(sc, "native") for sc in scenarios),
        "tandem_vs_native_same": {sc: round(hours(sc, "tandem") / hours(sc, "native_same"), 3) for sc in scenarios},
        "tandem_vs_native": {sc: round(hours(sc, "tandem") / hours(sc, "native"), 3) for sc in scenarios},
    }


def run(seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    """Every seed (in parallel, one process per core), then the aggregate."""
    began = time.perf_counter()
    workers = max(1, min(len(seeds), os.cpu_count() or 1))
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        played = dict(zip(seeds, pool.map(one_seed, seeds), strict=True))
    per_seed = {str(seed): figures for seed, (figures, _) in played.items()}
    scenarios = aggregate(per_seed)
    return {
        "seeds": list(seeds),
        "scenarios": scenarios,
        "per_seed": per_seed,
        "goals": goals(scenarios, per_seed),
        "curves": {"seed": seeds[0], **played[seeds[0]][1]},  # the first seed's day, per scenario and policy
        "wall_s": round(time.perf_counter() - began, 1),
    }


POLICY_ORDER = ("native", "native_same", "legacy", "prestage", "tandem", "clairvoyant", "lower_bound")


def markdown(result: dict[str, Any]) -> str:
    """The README's table: mean (worst) of misses, p95 wait and VM-hours per scenario and policy."""
    names = [n for n in POLICY_ORDER if n in next(iter(result["scenarios"].values()))]
    lines = ["| scenario | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for scenario, row in result["scenarios"].items():
        cells = []
        for n in names:
            m, w, h = (row[n][f] for f in ("logon_misses", "p95_wait_s", "vm_hours"))
            cells.append(f"{m['mean']:g} ({m['max']:g}) / {w['mean']:g} s / {h['mean']:g} h ({h['max']:g})")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
