"""What an Event Grid event asks of autoscale, parsed strictly: anything malformed or unknown is an InputError.

- An Azure Monitor log-search alert in the common alert schema on the logon rate (a query over WVDConnections
  grouped by the host pool's `_ResourceId`), delivered as `Microsoft.AlertsManagement.Alert.Activated` or as a
  plain common-alert-schema document: evaluate that pool now with the alerted rate.
- `Tandem.Failover.Started`: the target region must take the source region's users now.
- Resource Health `AvailabilityStatusChanged` for a session host VM: replace lost capacity now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared import payloads
from shared.errors import InputError

HEALTH_CHANGED = "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged"
ALERT_TYPES = ("Microsoft.AlertsManagement.Alert.Activated", "Microsoft.AlertsManagement.Alert.Resolved")
FAILOVER_STARTED = "Tandem.Failover.Started"
COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
_POOL_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.desktopvirtualization/"
                      r"hostpools/[^/]+$", re.I)


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


def parse_alert(payload: Any) -> Signal:
    """A common-alert-schema document about the logon rate."""
    alert = payloads.validate(payloads.CommonAlert, payload, "alert")
    essentials = alert.essentials
    if essentials.monitorCondition != "Fired":
        return Ignored(f"alert {essentials.alertRule} is {essentials.monitorCondition}")
    if essentials.signalType != "Log":
        raise InputError(f"alert {essentials.alertRule}: signalType {essentials.signalType!r} is not a "
                         "log-search alert on the logon rate")
    condition = payloads.validate(payloads.ConditionContext, alert.context, "alertContext").condition
    first = condition.allOf[0]
    pool = next((d.value for d in first.dimensions if d.name.lower() in ("_resourceid", "resourceid", "hostpool")), None)
    if pool is None:
        pool = next((t for t in essentials.alertTargetIDs if _POOL_ID.match(t)), None)
    if pool is None or not _POOL_ID.match(pool):
        raise InputError("the alert names no host pool (dimension _ResourceId or a host pool in alertTargetIDs)")
    if first.metricValue is None:
        raise InputError("alertContext.condition.allOf[0].metricValue is missing")
    rate = first.metricValue / payloads.window_minutes(condition)
    if rate > payloads.MAX_RATE:
        raise InputError(f"a logon rate of {rate:.0f} per minute is beyond any pool (at most {payloads.MAX_RATE:.0f})")
    return LogonRate(pool, rate)


def parse(event_type: str, data: Any) -> Signal:
    """What one event asks for; InputError for anything malformed or of an unknown type."""
    if event_type in ALERT_TYPES or (event_type and isinstance(data, dict) and data.get("schemaId") == COMMON_SCHEMA):
        return parse_alert(data)
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
