"""Which Event Grid events bear on failover, parsed strictly (anything else is an InputError or ignored).

The HealthResources system topic speaks for virtual machines (and scale sets) only: `AvailabilityStatusChanged`
for a session host VM counts towards its region's share of unavailable hosts, and `ResourceAnnotated` says
whether the change was the customer's own (a deallocation by Tandem or an administrator), which never counts.
Events must come from a topic under one of the topology's subscriptions. Alerts come through `POST /api/alerts`
(shared/alerts.py); the ANQ clusters are watched by Tandem itself (shared/failover/watch.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared import payloads
from shared.config.model import Topology
from shared.errors import InputError
from shared.payloads import HEALTH_ANNOTATED, HEALTH_CHANGED


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
class VmAnnotation:
    """Why a session host VM changed: `customer` when the customer (or Tandem, its automation) did it."""

    vm_id: str
    customer: bool
    what: str


@dataclass(frozen=True)
class Ignored:
    """A well-formed event that proposes nothing."""

    why: str


def check_topic(topology: Topology, topic: str | None) -> None:
    """Events must come from a topic under one of the estate's subscriptions."""
    subscriptions = {r.subscription_id.lower() for r in topology.regions} | {
        (p.subscription_id or "").lower() for r in topology.regions for p in r.host_pools
    }
    match = re.match(r"^/subscriptions/([0-9a-fA-F-]{36})", topic or "")
    if match is None or match.group(1).lower() not in subscriptions:
        raise InputError(f"event from unknown topic {topic!r}")


def parse(topology: Topology, event_type: str, topic: str | None, data: Any) -> VmHealth | VmAnnotation | Ignored:
    """What one event means for failover."""
    check_topic(topology, topic)
    if event_type == HEALTH_CHANGED:
        props = payloads.validate(payloads.HealthChanged, data, "AvailabilityStatusChanged").properties
        if props.targetResourceType.lower() == "microsoft.compute/virtualmachines":
            return VmHealth(props.targetResourceId, props.availabilityState != "Unavailable")
        return Ignored(f"health of a {props.targetResourceType}: the HealthResources topic speaks for VMs only")
    if event_type == HEALTH_ANNOTATED:
        note = payloads.validate(payloads.HealthAnnotated, data, "ResourceAnnotated").properties
        if note.targetResourceType.lower() != "microsoft.compute/virtualmachines":
            return Ignored(f"annotation of {note.targetResourceType}, not a session host VM")
        return VmAnnotation(
            note.targetResourceId,
            (note.context or "").lower() == "customer initiated",
            f"{note.annotationName}: {note.reason or ''}"[:200],
        )
    raise InputError(f"unknown event type {event_type!r}"[:200])
