"""What an event asks of autoscale, parsed strictly: anything malformed or unknown is an InputError.

- (through `POST /api/alerts`, shared/alerts.py) an Azure Monitor log-search or metric alert on a host pool's
  logon rate (a query over WVDConnections grouped by the host pool's `_ResourceId`): evaluate that pool now with
  the alerted rate; resolved, forget it.
- Event Grid `Tandem.Failover.Started`: the target region must take the source region's users now.
- Resource Health `AvailabilityStatusChanged` for a session host VM: replace lost capacity now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared import payloads
from shared.errors import InputError
from shared.payloads import HEALTH_CHANGED

FAILOVER_STARTED = "Tandem.Failover.Started"
_POOL_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.desktopvirtualization/"
    r"hostpools/[^/]+$",
    re.I,
)


@dataclass(frozen=True)
class LogonRate:
    """A logon-rate alert fired for a pool: `per_minute` logons over the alert window."""

    pool_id: str
    per_minute: float


@dataclass(frozen=True)
class FailoverStarted:
    """A failover began: `target` region takes `sessions` users from `source` now."""

    source: str
    target: str
    sessions: int


@dataclass(frozen=True)
class HostHealth:
    """A session host VM's availability changed."""

    vm_id: str
    state: str


@dataclass(frozen=True)
class Ignored:
    """A well-formed event that needs nothing from autoscale (a resolved alert, a VM back to Available)."""

    why: str


Signal = LogonRate | FailoverStarted | HostHealth | Ignored


def logon_rate(alert: payloads.CommonAlert, *, resolved: bool = False) -> LogonRate | Ignored:
    """A log-search or metric alert's logon rate for the host pool it names (0 once resolved); see shared/alerts.py."""
    condition = payloads.validate(payloads.ConditionContext, alert.context, "alertContext").condition
    first = condition.allOf[0]
    pool = next((d.value for d in first.dimensions if d.name.lower() in ("_resourceid", "resourceid", "hostpool")), None)
    if pool is None or not _POOL_ID.match(pool):
        pool = next((t for t in alert.essentials.alertTargetIDs if _POOL_ID.match(t)), None)
    if pool is None:
        return Ignored(f"alert {alert.essentials.alertRule} names no host pool")
    if resolved:
        return LogonRate(pool, 0.0)
    if first.metricValue is None:
        raise InputError("alertContext.condition.allOf[0].metricValue is missing")
    rate = first.metricValue / payloads.window_minutes(condition)
    if rate > payloads.MAX_RATE:
        raise InputError(f"a logon rate of {rate:.0f} per minute is beyond any pool (at most {payloads.MAX_RATE:.0f})")
    return LogonRate(pool, rate)


def parse(event_type: str, data: Any) -> Signal:
    """What one event asks for; InputError for anything malformed or of an unknown type."""
    if event_type == FAILOVER_STARTED:
        started = payloads.validate(payloads.FailoverStarted, data, FAILOVER_STARTED)
        return FailoverStarted(started.source, started.target, started.sessions)
    if event_type == HEALTH_CHANGED:
        props = payloads.validate(payloads.HealthChanged, data, "AvailabilityStatusChanged").properties
        if props.targetResourceType.lower() != "microsoft.compute/virtualmachines":
            return Ignored(f"health change for {props.targetResourceType}, not a session host VM")
        if props.availabilityState == "Available":
            return Ignored(f"{props.targetResourceId} is available again")
        return HostHealth(props.targetResourceId, props.availabilityState)
    raise InputError(f"unknown event type {event_type!r}"[:200])
