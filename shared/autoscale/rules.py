"""From a topology policy and a moment to the phase in force and the planner's rules."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.autoscale.planner import Rules
from shared.config.model import AutoscalePolicy, PhaseSettings


def local_time(policy: AutoscalePolicy, when: datetime) -> datetime:
    """`when` in the policy's time zone."""
    return when.astimezone(ZoneInfo(policy.time_zone))


def is_off_day(policy: AutoscalePolicy, local: datetime) -> bool:
    """A weekend (when the policy is weekdays-only) or a holiday: the off-peak settings hold all day."""
    return local.date() in policy.holidays or (policy.weekdays_only and local.weekday() >= 5)


def phase_at(policy: AutoscalePolicy, when: datetime) -> PhaseSettings:
    """The phase in force: the last one started today, else the last one of the day before."""
    local = local_time(policy, when)
    if is_off_day(policy, local):
        return next((p for p in policy.phases if p.phase == "off_peak"), policy.phases[-1])
    started = [p for p in policy.phases if p.start <= local.time().replace(second=0, microsecond=0)]
    return started[-1] if started else policy.phases[-1]


def rules_for(policy: AutoscalePolicy, phase: PhaseSettings) -> Rules:
    """The planner's rules for one phase of a policy."""
    legacy = policy.legacy
    return Rules(
        capacity_threshold_pct=phase.capacity_threshold_pct,
        minimum_hosts_pct=phase.minimum_hosts_pct,
        min_hosts=phase.min_hosts,
        max_hosts=phase.max_hosts,
        force_logoff=policy.force_logoff,
        logoff_wait=policy.logoff_wait,
        stop_hosts_when=policy.stop_hosts_when,
        exclude_tagged_from_minimum=policy.exclude_tagged_from_minimum,
        cooldown=policy.cooldown,
        boot_lead=policy.boot_lead,
        session_threshold_per_cpu=legacy.session_threshold_per_cpu,
        minimum_hosts=legacy.minimum_hosts,
        cores_per_host=legacy.cores_per_host,
        limit_seconds_to_force_logoff=legacy.limit_seconds_to_force_logoff,
    )
