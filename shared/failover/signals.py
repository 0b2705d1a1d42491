"""Which events propose an unplanned failover, parsed strictly (anything else is an InputError or ignored).

- Resource Health `AvailabilityStatusChanged` for a region's ANQ resource (`anq.resource_id`) going
  Unavailable; or for session host VMs, when more than `unhealthy_hosts_pct` of a region's VMs are reported
  unavailable (counted from the events themselves);
- Azure Monitor alerts in the common alert schema: Resource Health alerts on the ANQ resource, and Service
  Health incidents naming the region's location.
Events must come from a topic under one of the topology's subscriptions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.config.model import Region, Topology
from shared.errors import InputError

HEALTH_CHANGED = "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged"
ALERT_TYPES = ("Microsoft.AlertsManagement.Alert.Activated",)


@dataclass(frozen=True)
class Proposal:
    """Propose failing `region` over to its pair."""

    region: str
    reason: str


@dataclass(frozen=True)
class VmHealth:
    """A session host VM's availability, to be counted against its region's share."""

    vm_id: str
    available: bool


@dataclass(frozen=True)
class Ignored:
    """A well-formed event that proposes nothing."""

    why: str


def _norm(location: str) -> str:
    return re.sub(r"[^a-z0-9]", "", location.lower())


def check_topic(topology: Topology, topic: str | None) -> None:
    """Events must come from a topic under one of the estate's subscriptions."""
    subscriptions = {r.subscription_id.lower() for r in topology.regions} | {
        (p.subscription_id or "").lower() for r in topology.regions for p in r.host_pools}
    match = re.match(r"^/subscriptions/([0-9a-fA-F-]{36})", topic or "")
    if match is None or match.group(1).lower() not in subscriptions:
        raise InputError(f"event from unknown topic {topic!r}")


def _anq_region(topology: Topology, resource_id: str) -> Region | None:
    return next((r for r in topology.regions if r.anq.resource_id and r.anq.resource_id.lower() == resource_id.lower()),
                None)


def parse(topology: Topology, event_type: str, topic: str | None, data: Any) -> Proposal | VmHealth | Ignored:
    """What one event means for failover."""
    check_topic(topology, topic)
    if not isinstance(data, dict):
        raise InputError("event data is not an object")
    if event_type == HEALTH_CHANGED:
        try:
            props = data["resourceInfo"]["properties"]
            target, state = str(props["targetResourceId"]), str(props["availabilityState"])
        except (KeyError, TypeError) as exc:
            raise InputError("missing resourceInfo.properties.targetResourceId/availabilityState") from exc
        region = _anq_region(topology, target)
        if region is not None:
            if state == "Unavailable":
                return Proposal(region.name, f"Resource Health: {region.anq.name} is Unavailable")
            return Ignored(f"{region.anq.name} is {state}")
        if str(props.get("targetResourceType", "")).lower() == "microsoft.compute/virtualmachines":
            return VmHealth(target, state == "Available")
        return Ignored(f"health of {target} does not concern failover")
    if event_type in ALERT_TYPES or data.get("schemaId") == "azureMonitorCommonAlertSchema":
        return _alert(topology, data)
    raise InputError(f"unknown event type {event_type!r}")


def _alert(topology: Topology, payload: dict[str, Any]) -> Proposal | Ignored:
    try:
        essentials = payload["data"]["essentials"]
        context = payload["data"].get("alertContext") or {}
    except (KeyError, TypeError) as exc:
        raise InputError("not an alert in the common alert schema") from exc
    if essentials.get("monitorCondition") != "Fired":
        return Ignored(f"alert {essentials.get('alertRule')} is {essentials.get('monitorCondition')}")
    service = str(essentials.get("monitoringService", ""))
    if service == "Resource Health":
        for target in essentials.get("alertTargetIDs") or []:
            region = _anq_region(topology, str(target))
            status = (context.get("properties") or {}).get("currentHealthStatus")
            if region is not None and status == "Unavailable":
                return Proposal(region.name, f"Resource Health alert {essentials.get('alertRule')}: {region.anq.name}")
        return Ignored("resource health alert not about an ANQ cluster going unavailable")
    if service == "ServiceHealth":
        props = context.get("properties") or {}
        if props.get("incidentType") != "Incident":
            return Ignored(f"service health {props.get('incidentType')}, not an incident")
        impacted = props.get("impactedServices")
        if isinstance(impacted, str):
            try:
                impacted = json.loads(impacted)
            except ValueError as exc:
                raise InputError("impactedServices is not JSON") from exc
        names = {_norm(r.get("RegionName", "")) for s in impacted or [] for r in s.get("ImpactedRegions") or []}
        for region in topology.regions:
            if _norm(region.location) in names:
                return Proposal(region.name, f"Service Health incident: {props.get('title', '')}"[:200])
        return Ignored("service health incident in no region of the estate")
    return Ignored(f"alert from {service} does not concern failover")
