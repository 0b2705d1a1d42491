"""Which events propose an unplanned failover, parsed strictly (anything else is an InputError or ignored).

- Resource Health `AvailabilityStatusChanged` for a region's ANQ resource (`anq.resource_id`) going
  Unavailable; or for session host VMs, when more than `unhealthy_hosts_pct` of a region's VMs are reported
  unavailable (counted from the events themselves);
- Azure Monitor alerts in the common alert schema: Resource Health alerts on the ANQ resource, and Service
  Health incidents naming the region's location.
Events must come from a topic under one of the topology's subscriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared import payloads
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
    if event_type == HEALTH_CHANGED:
        props = payloads.validate(payloads.HealthChanged, data, "AvailabilityStatusChanged").properties
        target, state = props.targetResourceId, props.availabilityState
        region = _anq_region(topology, target)
        if region is not None:
            if state == "Unavailable":
                return Proposal(region.name, f"Resource Health: {region.anq.name} is Unavailable")
            return Ignored(f"{region.anq.name} is {state}")
        if props.targetResourceType.lower() == "microsoft.compute/virtualmachines":
            return VmHealth(target, state == "Available")
        return Ignored(f"health of {target} does not concern failover")
    if event_type in ALERT_TYPES or (isinstance(data, dict) and data.get("schemaId") == "azureMonitorCommonAlertSchema"):
        return _alert(topology, payloads.validate(payloads.CommonAlert, data, "alert"))
    raise InputError(f"unknown event type {event_type!r}"[:200])


def _alert(topology: Topology, alert: payloads.CommonAlert) -> Proposal | Ignored:
    essentials = alert.essentials
    if essentials.monitorCondition != "Fired":
        return Ignored(f"alert {essentials.alertRule} is {essentials.monitorCondition}")
    service = essentials.monitoringService
    if service == "Resource Health":
        status = payloads.validate(payloads.ResourceHealthContext, alert.context, "alertContext").properties
        for target in essentials.alertTargetIDs:
            region = _anq_region(topology, target)
            if region is not None and status.currentHealthStatus == "Unavailable":
                return Proposal(region.name, f"Resource Health alert {essentials.alertRule}: {region.anq.name}"[:200])
        return Ignored("resource health alert not about an ANQ cluster going unavailable")
    if service == "ServiceHealth":
        props = payloads.validate(payloads.ServiceHealthContext, alert.context, "alertContext").properties
        if props.incidentType != "Incident":
            return Ignored(f"service health {props.incidentType}, not an incident"[:200])
        names = {_norm(r.RegionName) for s in props.impactedServices for r in s.ImpactedRegions}
        for region in topology.regions:
            if _norm(region.location) in names:
                return Proposal(region.name, f"Service Health incident: {props.title}"[:200])
        return Ignored("service health incident in no region of the estate")
    return Ignored(f"alert from {service} does not concern failover"[:200])
