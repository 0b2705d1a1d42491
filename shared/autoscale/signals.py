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
from datetime import datetime, timedelta
from typing import Any

from shared.errors import InputError

HEALTH_CHANGED = "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged"
ALERT_TYPES = ("Microsoft.AlertsManagement.Alert.Activated", "Microsoft.AlertsManagement.Alert.Resolved")
FAILOVER_STARTED = "Tandem.Failover.Started"
COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
_POOL_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.desktopvirtualization/"
                      r"hostpools/[^/]+$", re.I)
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


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


def _get(doc: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            raise InputError(f"missing field {'.'.join(path)}")
        doc = doc[part]
    return doc


def _minutes(condition: dict[str, Any]) -> float:
    size = condition.get("windowSize")
    if isinstance(size, str):
        match = _DURATION.match(size)
        if match and any(match.groups()):
            h, m, s = (int(x or 0) for x in match.groups())
            return max(1.0, (h * 3600 + m * 60 + s) / 60)
    try:
        start = datetime.fromisoformat(str(condition["windowStartTime"]))
        end = datetime.fromisoformat(str(condition["windowEndTime"]))
    except (KeyError, ValueError):
        return 5.0
    return max(1.0, (end - start) / timedelta(minutes=1))


def parse_alert(payload: Any) -> Signal:
    """A common-alert-schema document about the logon rate."""
    if not isinstance(payload, dict) or payload.get("schemaId") != COMMON_SCHEMA:
        raise InputError(f"not an alert in the common alert schema (schemaId must be {COMMON_SCHEMA})")
    essentials = _get(payload, "data", "essentials")
    if essentials.get("monitorCondition") != "Fired":
        return Ignored(f"alert {essentials.get('alertRule')} is {essentials.get('monitorCondition')}")
    if essentials.get("signalType") != "Log":
        raise InputError(f"alert {essentials.get('alertRule')}: signalType {essentials.get('signalType')!r} is not a "
                         "log-search alert on the logon rate")
    condition = _get(payload, "data", "alertContext", "condition")
    criteria = condition.get("allOf") if isinstance(condition, dict) else None
    if not isinstance(criteria, list) or not criteria:
        raise InputError("alertContext.condition.allOf is missing or empty")
    first = criteria[0]
    pool = next((d.get("value") for d in first.get("dimensions") or [] if isinstance(d, dict)
                 and str(d.get("name", "")).lower() in ("_resourceid", "resourceid", "hostpool")), None)
    if pool is None:
        pool = next((t for t in essentials.get("alertTargetIDs") or [] if _POOL_ID.match(str(t))), None)
    if not isinstance(pool, str) or not _POOL_ID.match(pool):
        raise InputError("the alert names no host pool (dimension _ResourceId or a host pool in alertTargetIDs)")
    try:
        value = float(first["metricValue"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("alertContext.condition.allOf[0].metricValue is missing or not a number") from exc
    return LogonRate(pool, max(0.0, value) / _minutes(condition))


def parse(event_type: str, data: Any) -> Signal:
    """What one event asks for; InputError for anything malformed or of an unknown type."""
    if event_type in ALERT_TYPES or (event_type and isinstance(data, dict) and data.get("schemaId") == COMMON_SCHEMA):
        return parse_alert(data)
    if event_type == FAILOVER_STARTED:
        try:
            source, target, sessions = str(_get(data, "source")), str(_get(data, "target")), int(_get(data, "sessions"))
        except (TypeError, ValueError) as exc:
            raise InputError("Tandem.Failover.Started needs source, target and an integer sessions") from exc
        if sessions < 0:
            raise InputError("sessions must not be negative")
        return FailoverStarted(source, target, sessions)
    if event_type == HEALTH_CHANGED:
        props = _get(data, "resourceInfo", "properties")
        target, state = str(_get(props, "targetResourceId")), str(_get(props, "availabilityState"))
        if str(props.get("targetResourceType", "")).lower() != "microsoft.compute/virtualmachines":
            return Ignored(f"health change for {props.get('targetResourceType')}, not a session host VM")
        if state == "Available":
            return Ignored(f"{target} is available again")
        return HostHealth(target, state)
    raise InputError(f"unknown event type {event_type!r}")
