"""The autoscale planner: (pool snapshot, rules, forecast) -> target host count and actions. Pure: no I/O, no clock.

Three policies share one interface, `plan(policy, snapshot, rules, forecast)`:

- `native`:  the documented scaling-plan algorithm for pooled host pools (the baseline);
- `legacy`:  the Azure Automation scaling runbook (basicScale.ps1 v0.1.40);
- `tandem`:  native's safety rules plus a forecast one boot time ahead, surge extrapolation, per-phase
             minimum and maximum hosts, exclusion from the minimum and a cool-down.

Hosts are counted like this throughout:
- *managed*: not carrying the exclusion tag (nothing here ever starts, stops or drains a tagged host);
- *serving*: managed, powered on or starting, healthy or still booting, and accepting new sessions;
- *leaving*: managed, on, drained (they hold sessions that are being consolidated away).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

Policy = Literal["native", "legacy", "tandem"]
Phase = Literal["ramp_up", "peak", "ramp_down", "off_peak"]
ActionName = Literal["start", "drain", "undrain", "message", "logoff", "deallocate"]
POLICIES: tuple[Policy, ...] = ("native", "legacy", "tandem")
PHASES: tuple[Phase, ...] = ("ramp_up", "peak", "ramp_down", "off_peak")
ON = ("running", "starting")
HEALTHY = ("Available", "NeedsAssistance")


@dataclass(frozen=True)
class HostView:
    """One session host as the planner sees it."""

    name: str
    power: str = "running"  # running | starting | deallocated | deallocating | stopped
    status: str = "Available"  # AVD status: Available, Unavailable, Shutdown, NeedsAssistance, ...
    sessions: int = 0  # active + disconnected
    active_sessions: int = 0
    allow_new_session: bool = True
    excluded: bool = False  # carries the exclusion (maintenance) tag
    booting: bool = False  # on, not yet Available, within its boot allowance (counts as coming capacity)
    notified_at: datetime | None = None  # when its users were warned of a force logoff

    @property
    def on(self) -> bool:
        """Powered on or starting (billed)."""
        return self.power in ON

    @property
    def healthy(self) -> bool:
        """Available to the broker, or on its way there."""
        return self.on and (self.status in HEALTHY or self.booting or self.power == "starting")


@dataclass(frozen=True)
class PoolSnapshot:
    """A host pool at one moment."""

    time: datetime
    phase: Phase
    max_session_limit: int
    hosts: tuple[HostView, ...]
    load_balancer: Literal["breadth_first", "depth_first"] = "breadth_first"
    last_scale_out: datetime | None = None  # when hosts were last started or undrained for load


@dataclass(frozen=True)
class Rules:
    """The settings in force for one evaluation (a phase's settings, resolved)."""

    capacity_threshold_pct: int = 60
    minimum_hosts_pct: int = 0
    min_hosts: int | None = None  # tandem: per-phase floor, in hosts
    max_hosts: int | None = None  # tandem: per-phase ceiling, in hosts
    force_logoff: bool = False
    logoff_wait: timedelta = timedelta(minutes=30)
    stop_hosts_when: Literal["ZeroSessions", "ZeroActiveSessions"] = "ZeroSessions"
    exclude_tagged_from_minimum: bool = False
    cooldown: timedelta = timedelta(0)
    boot_lead: timedelta = timedelta(minutes=10)  # tandem: how far ahead hosts are started
    reserve_hosts: int = 0  # every policy: hosts kept serving for a failover's incoming users (a target hold)
    # the legacy runbook's parameters
    session_threshold_per_cpu: float = 1.0
    minimum_hosts: int = 1
    cores_per_host: int = 8
    limit_seconds_to_force_logoff: int = 900


@dataclass(frozen=True)
class Forecast:
    """What Tandem expects of the next minutes (built from recorded history; see forecast.py)."""

    net_per_minute: tuple[float, ...] = ()  # expected change in sessions for each of the next minutes
    observed_rate: float = 0.0  # logons per minute seen over the last five minutes
    expected_rate: float = 0.0  # logons per minute the history expected over those minutes
    incoming: int = 0  # sessions announced (e.g. by a failover) that have not arrived yet
    previous_rate: float | None = None  # logons per minute over the five minutes before (the trend)


@dataclass(frozen=True)
class Step:
    """One action on one host, with the reason an administrator will read in the ledger."""

    action: ActionName
    host: str
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """What a policy wants: `target_hosts` counts the managed hosts it wants serving."""

    policy: str
    target_hosts: int
    actions: tuple[Step, ...] = ()
    reason: str = ""
    facts: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The documented what-if answer."""
        return {
            "policy": self.policy,
            "target_hosts": self.target_hosts,
            "reason": self.reason,
            "actions": [{"action": s.action, "host": s.host, "reason": s.reason} for s in self.actions],
            "facts": self.facts,
        }


def plan(policy: Policy, snapshot: PoolSnapshot, rules: Rules, forecast: Forecast | None = None) -> Decision:
    """Decide for one pool."""
    if snapshot.max_session_limit < 1:
        raise ValueError("max_session_limit must be at least 1")
    if policy == "native":
        return _native(snapshot, rules)
    if policy == "legacy":
        return _legacy(snapshot, rules)
    if policy == "tandem":
        return _tandem(snapshot, rules, forecast or Forecast())
    raise ValueError(f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}")


# ----------------------------------------------------------------------------------------------- shared pieces


def hosts_needed(sessions: float, limit: int, threshold_pct: int) -> int:
    """ceil(S / (L x T)) in integers, so an exact fit (used == threshold) needs no more hosts."""
    return math.ceil(max(0.0, sessions) * 100 / (limit * threshold_pct) - 1e-9)


def minimum_hosts(pct: int, total: int) -> int:
    """A percentage of all hosts, rounded up (30% of 6 is 2; 10% of 7 is 1)."""
    return math.ceil(pct * total / 100 - 1e-9)


def _managed(s: PoolSnapshot) -> list[HostView]:
    return [h for h in s.hosts if not h.excluded]


def _serving(s: PoolSnapshot) -> list[HostView]:
    return [h for h in _managed(s) if h.healthy and h.allow_new_session]


def _leaving(s: PoolSnapshot) -> list[HostView]:
    return [h for h in _managed(s) if h.on and not h.allow_new_session]


def _sessions(s: PoolSnapshot) -> int:
    """Active + disconnected sessions on the managed hosts that are on."""
    return sum(h.sessions for h in _managed(s) if h.on)


def _startable(s: PoolSnapshot) -> list[HostView]:
    return sorted((h for h in _managed(s) if h.power in ("deallocated", "stopped")), key=lambda h: h.name)


def _stoppable(h: HostView, rules: Rules) -> bool:
    return h.sessions == 0 if rules.stop_hosts_when == "ZeroSessions" else h.active_sessions == 0


def _scale_out(s: PoolSnapshot, missing: int, reason: str) -> list[Step]:
    """Add `missing` serving hosts: undrain drained ones first (instant), then start deallocated ones."""
    steps: list[Step] = []
    missing = max(0, missing)
    for host in sorted(_leaving(s), key=lambda h: (-h.sessions, h.name))[:missing]:
        if host.healthy:
            steps.append(Step("undrain", host.name, reason))
    for host in _startable(s)[: missing - len(steps)]:
        steps.append(Step("start", host.name, reason))
    return steps


def _scale_in(s: PoolSnapshot, rules: Rules, excess: int, *, force: bool, consolidate: bool, at_once: bool = False) -> list[Step]:
    """Stop up to `excess` serving hosts: empty ones now; otherwise drain the least-loaded and wait (or force).

    Native drains one host at a time; `at_once` (tandem) drains every excess host in one go, since the hosts
    left serving already hold the capacity the forecast needs and draining never disturbs a session."""
    steps: list[Step] = []
    candidates = sorted(_serving(s), key=lambda h: (h.sessions, h.name))
    empty = [h for h in candidates if _stoppable(h, rules)][:excess]
    steps += [Step("deallocate", h.name, f"no sessions ({rules.stop_hosts_when}) and capacity to spare") for h in empty]
    left = excess - len(empty)
    if left <= 0 or (not consolidate and not force) or (not force and not at_once and _leaving(s)):
        return steps  # without force, one drained host at a time waits for its users to leave
    busy = [h for h in candidates if h not in empty]
    for host in busy[: left if force or at_once else 1]:
        steps.append(Step("drain", host.name, f"least-loaded host ({host.sessions} sessions): consolidate"))
        if force:
            steps.append(Step("message", host.name, f"force logoff in {int(rules.logoff_wait.total_seconds() // 60)} min"))
    return steps


def _finish_leaving(s: PoolSnapshot, rules: Rules, *, force: bool, wait: timedelta) -> list[Step]:
    """Drained hosts: stop the empty ones; in a force-logoff window warn, then after the wait log off and stop."""
    steps: list[Step] = []
    for host in sorted(_leaving(s), key=lambda h: h.name):
        if _stoppable(host, rules):
            steps.append(Step("deallocate", host.name, "drained host has emptied"))
        elif force and host.notified_at is None:
            steps.append(Step("message", host.name, "force logoff warning"))
        elif force and host.notified_at is not None and s.time - host.notified_at >= wait:
            steps += [
                Step("logoff", host.name, f"force logoff after {int(wait.total_seconds() // 60)} min warning"),
                Step("deallocate", host.name, "force logoff done"),
            ]
    return steps


# ----------------------------------------------------------------------------------------------- native


def _native(s: PoolSnapshot, rules: Rules) -> Decision:
    """The documented scaling-plan algorithm for pooled host pools."""
    limit, threshold = s.max_session_limit, rules.capacity_threshold_pct
    sessions = _sessions(s)
    serving = _serving(s)
    eligible = [h for h in _managed(s) if h.healthy or h.power in ("deallocated", "stopped")]
    floor = max(minimum_hosts(rules.minimum_hosts_pct, len(s.hosts)), rules.reserve_hosts)  # tagged hosts count
    target = min(len(eligible), max(hosts_needed(sessions, limit, threshold), floor))
    facts = {
        "sessions": sessions,
        "serving": len(serving),
        "floor": floor,
        "used_pct": round(100 * sessions / (limit * len(serving)), 1) if serving else 0.0,
    }
    over = sessions * 100 > limit * threshold * len(serving)  # strictly greater: equal does nothing
    force = s.phase == "ramp_down" and rules.force_logoff
    if over or len(serving) < floor:
        reason = (
            f"used capacity above {threshold}%"
            if over
            else (f"below the minimum of {floor} hosts" + (" (failover reserve)" if floor == rules.reserve_hosts else ""))
        )
        return Decision("native", target, tuple(_scale_out(s, target - len(serving), reason)), reason, facts)
    steps: list[Step] = []
    under = sessions * 100 < limit * threshold * len(serving)
    if s.phase != "ramp_up" and under and len(serving) > target:
        steps = _scale_in(s, rules, len(serving) - target, force=force, consolidate=True)
    if s.phase != "ramp_up":
        steps += _finish_leaving(s, rules, force=force, wait=rules.logoff_wait)
    else:  # no scale-in during ramp-up: hosts left drained (say, from last night) take sessions again
        steps += [Step("undrain", h.name, "ramp-up: no scale-in") for h in _leaving(s) if h.healthy]
    return Decision("native", target, tuple(steps), "scale in" if steps else "within threshold", facts)


# ----------------------------------------------------------------------------------------------- legacy


def _legacy(s: PoolSnapshot, rules: Rules) -> Decision:
    """basicScale.ps1: peak never stops hosts; the 90% rule raises the minimum; off-peak drains down to it."""
    limit, cores = s.max_session_limit, rules.cores_per_host
    managed = _managed(s)
    running = [h for h in managed if h.power == "running" and h.status in HEALTHY and h.allow_new_session]
    starting = [h for h in managed if h.power == "starting" or h.booting]
    sessions = sum(h.sessions for h in running)
    minimum = max(rules.minimum_hosts, rules.reserve_hosts)
    if sessions > math.floor(minimum * limit * 0.9):
        minimum = math.ceil(sessions / (limit * 0.9))
    n_running = len(running) + len(starting)
    running_cores = max(1, n_running * cores)
    vms_to_start = max(0, minimum - n_running)
    cores_to_start = 0
    peak = s.phase in ("ramp_up", "peak")
    if peak and sessions / running_cores > rules.session_threshold_per_cpu:
        cores_to_start = math.ceil(sessions / rules.session_threshold_per_cpu - running_cores)
    facts: dict[str, float] = {"sessions": sessions, "running": n_running, "minimum": minimum}
    steps: list[Step] = []
    if vms_to_start > 0 or cores_to_start > 0:
        for host in _startable(s):
            if not host.allow_new_session:
                continue
            if vms_to_start <= 0 and cores_to_start <= 0:
                break
            steps.append(Step("start", host.name, "below the minimum" if vms_to_start > 0 else "sessions per core"))
            vms_to_start -= 1
            cores_to_start -= cores
        return Decision("legacy", n_running + len(steps), tuple(steps), "scale out", facts)
    if not peak and n_running > minimum:
        to_stop = n_running - minimum
        force = rules.limit_seconds_to_force_logoff > 0
        wait = timedelta(seconds=rules.limit_seconds_to_force_logoff)
        for host in sorted(running, key=lambda h: (h.sessions, h.name)):
            if to_stop <= 0:
                break
            if host.sessions and not force:
                break
            steps.append(
                Step("deallocate", host.name, "off-peak above the minimum")
                if not host.sessions
                else Step("drain", host.name, "off-peak above the minimum")
            )
            if host.sessions:
                steps.append(Step("message", host.name, f"logoff in {rules.limit_seconds_to_force_logoff} s"))
            to_stop -= 1
        steps += _finish_leaving(s, replace(rules, stop_hosts_when="ZeroSessions"), force=force, wait=wait)
        return Decision("legacy", minimum, tuple(steps), "off-peak scale in", facts)
    return Decision("legacy", n_running, (), "nothing to do", facts)


# ----------------------------------------------------------------------------------------------- tandem


def projected_sessions(sessions: int, forecast: Forecast, lead_minutes: int) -> tuple[float, str]:
    """The most sessions expected within the lead time, and why: history, a surge, or an announced arrival."""
    running, peak = 0.0, 0.0
    for delta in forecast.net_per_minute[:lead_minutes]:
        running += delta
        peak = max(peak, running)
    why = "forecast"
    surge = forecast.observed_rate > 1.25 * forecast.expected_rate + 0.5
    if surge:  # arrivals outrun the history: extrapolate the observed rate, and its growth, over the lead time
        growth = 1.0
        if forecast.previous_rate is not None:
            growth = min(3.0, max(1.0, forecast.observed_rate / max(forecast.previous_rate, 0.2)))
        extrapolated = sum(forecast.observed_rate * growth ** (k / 5) for k in range(1, lead_minutes + 1))
        if extrapolated > peak:
            peak, why = extrapolated, f"surge {forecast.observed_rate:.1f}/min"
    if forecast.incoming:
        peak += forecast.incoming
        why += f" + {forecast.incoming} announced"
    return sessions + peak, why


def _tandem(s: PoolSnapshot, rules: Rules, forecast: Forecast) -> Decision:
    """Native's rules, sized for the sessions expected one boot time ahead, within per-phase bounds."""
    limit, threshold = s.max_session_limit, rules.capacity_threshold_pct
    sessions = _sessions(s)
    serving = _serving(s)
    managed = _managed(s)
    eligible = [h for h in managed if h.healthy or h.power in ("deallocated", "stopped")]
    total = len(managed) if rules.exclude_tagged_from_minimum else len(s.hosts)
    floor = max(minimum_hosts(rules.minimum_hosts_pct, total), rules.min_hosts or 0, rules.reserve_hosts)
    if s.phase in ("ramp_up", "peak") or any(x > 0 for x in forecast.net_per_minute):
        floor = max(floor, 1)  # no host serving sees no demand: keep one in working hours or when anyone is expected
    lead = max(1, int(rules.boot_lead.total_seconds() // 60))
    projected, why = projected_sessions(sessions, forecast, lead)
    needed = max(hosts_needed(sessions, limit, threshold), hosts_needed(projected, limit, threshold), floor)
    ceiling = len(eligible) if rules.max_hosts is None else min(len(eligible), max(rules.max_hosts, rules.reserve_hosts))
    target = min(needed, ceiling)
    facts = {"sessions": sessions, "projected": round(projected, 1), "serving": len(serving), "floor": floor, "ceiling": ceiling}
    if len(serving) < target:
        by_demand = max(hosts_needed(sessions, limit, threshold), hosts_needed(projected, limit, threshold))
        reason = (
            f"{why}: {projected:.0f} sessions within {lead} min need {by_demand} hosts"
            if by_demand >= floor
            else f"phase minimum of {floor} hosts"
        )
        return Decision("tandem", target, tuple(_scale_out(s, target - len(serving), reason)), reason, facts)
    cooling = s.last_scale_out is not None and s.time - s.last_scale_out < rules.cooldown
    force = s.phase == "ramp_down" and rules.force_logoff
    steps: list[Step] = []
    if s.phase != "ramp_up" and not cooling and len(serving) > target:
        steps = _scale_in(s, rules, len(serving) - target, force=force, consolidate=True, at_once=True)
    if s.phase != "ramp_up" and not cooling:
        steps += _finish_leaving(s, rules, force=force, wait=rules.logoff_wait)
    else:  # never keep a host drained while scale-in is not allowed: it would sit idle and billed
        room = max(0, ceiling - len(serving))
        steps += [Step("undrain", h.name, "scale-in not allowed now") for h in _leaving(s) if h.healthy and h.notified_at is None][
            :room
        ]
    reason = "cool-down after scale-out" if cooling and len(serving) > target else ("scale in" if steps else "steady")
    return Decision("tandem", target, tuple(steps), reason, facts)


def step_hosts(steps: Iterable[Step], action: ActionName) -> list[str]:
    """The hosts one action applies to, in order."""
    return [s.host for s in steps if s.action == action]
