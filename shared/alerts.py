"""What an Azure Monitor alert asks of Tandem: the routing behind `POST /api/alerts` (an action group's Azure
Function receiver, common alert schema on).

- A log-search or metric alert naming a host pool (dimension `_ResourceId`, or a host pool among its targets):
  the pool's logon rate, to autoscale; resolved, the rate it set is cleared.
- Service Health: a failover proposal only for an active incident (`incidentType` Incident, stage Active, not
  synthetic unless the policy lets test alerts propose) naming one of `watched_services` in a region that has a
  pair; resolved, the proposal it made is withdrawn while it still waits for approval.
- Resource Health on a region's ANQ resource going Unavailable, not by the customer's own hand: a proposal.
- Anything else in the common schema is ignored with the reason.

Action groups retry a receiver up to five times on 408, 429, 503 and 504: a delivery is recorded by `alertId`
and `monitorCondition` once it was handled, and a repeat changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared import payloads
from shared.autoscale import signals as autoscale_signals
from shared.config.model import Topology
from shared.failover import signals as failover_signals
from shared.failover.proposals import paired_regions

DELIVERIES = "alertdeliveries"
_ACTIVE_STAGES = ("Active", "")  # Service Health's stage of an ongoing incident (Resolved, RCA, Complete end it)


LogonRate = autoscale_signals.LogonRate  # autoscale: the pool's alerted logon rate (0 when the alert resolved)
Propose = failover_signals.Proposal  # failover: propose failing `region` over to its pair


@dataclass(frozen=True)
class Withdraw:
    """Failover: the alert that proposed for `region` resolved; a proposal still awaiting approval is cancelled."""

    region: str
    reason: str


Ignore = autoscale_signals.Ignored  # nothing for Tandem to do, and why


Route = LogonRate | Propose | Withdraw | Ignore


def _norm(location: str) -> str:
    return re.sub(r"[^a-z0-9]", "", location.lower())


def route(topology: Topology, alert: payloads.CommonAlert) -> Route:
    """Where one alert goes. InputError when its alertContext does not have its service's published shape."""
    essentials = alert.essentials
    resolved = essentials.monitorCondition == "Resolved"
    service = essentials.monitoringService
    if service == "ServiceHealth":
        return _service_health(topology, alert, resolved)
    if service == "Resource Health":
        return _resource_health(topology, alert, resolved)
    if essentials.signalType in ("Log", "Metric"):
        return _logon_rate(alert, resolved)
    return Ignore(f"a {essentials.signalType or 'signal'} alert from {service or 'an unnamed service'}: nothing Tandem acts on"[:300])


def _logon_rate(alert: payloads.CommonAlert, resolved: bool) -> Route:
    return autoscale_signals.logon_rate(alert, resolved=resolved)


def _service_health(topology: Topology, alert: payloads.CommonAlert, resolved: bool) -> Route:
    props = payloads.validate(payloads.ServiceHealthContext, alert.context, "alertContext").properties
    policy = topology.policies.failover
    if props.incidentType != "Incident":
        return Ignore(f"Service Health {props.incidentType}, not an incident"[:300])
    if props.is_synthetic and not policy.test_alerts_propose:
        return Ignore("a Service Health test alert (synthetic); test_alerts_propose is off")
    watched = {s.lower() for s in policy.watched_services}
    hit = next(
        (
            r
            for s in props.impactedServices
            if s.ServiceName.lower() in watched
            for r in paired_regions(topology)
            if any(_norm(i.RegionName) == _norm(r.location) for i in s.ImpactedRegions)
        ),
        None,
    )
    if hit is None:
        names = sorted({s.ServiceName for s in props.impactedServices})
        return Ignore(f"the incident names no watched service in a paired region (services: {names})"[:300])
    reason = f"Service Health incident {props.trackingId or ''}: {props.title}".strip()[:200]
    if resolved or (props.stage or "") not in _ACTIVE_STAGES:
        return Withdraw(hit.name, reason)
    return Propose(hit.name, reason)


def _resource_health(topology: Topology, alert: payloads.CommonAlert, resolved: bool) -> Route:
    props = payloads.validate(payloads.ResourceHealthContext, alert.context, "alertContext").properties
    region = next(
        (
            r
            for t in alert.essentials.alertTargetIDs
            for r in paired_regions(topology)
            if r.anq.resource_id and r.anq.resource_id.lower() == t.lower()
        ),
        None,
    )
    if region is None:
        return Ignore("a Resource Health alert on a resource that is not a paired region's ANQ cluster")
    reason = f"Resource Health alert {alert.essentials.alertRule}: {region.anq.name} {props.currentHealthStatus}"[:200]
    if resolved or props.currentHealthStatus == "Available":
        return Withdraw(region.name, reason)
    if props.currentHealthStatus != "Unavailable":
        return Ignore(f"{region.anq.name} is {props.currentHealthStatus}, not unavailable")
    if (props.cause or "").lower() == "userinitiated":
        return Ignore(f"{region.anq.name} is unavailable by the customer's own action")
    return Propose(region.name, reason)


def _key(alert: payloads.CommonAlert) -> tuple[str, str]:
    return alert.essentials.monitorCondition, hashlib.sha256(alert.essentials.alertId.encode()).hexdigest()


def seen(alert: payloads.CommonAlert) -> bool:
    """Was this alert's activation (or resolution) handled already?"""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.state.tables import table

    partition, row = _key(alert)
    try:
        table(DELIVERIES).get_entity(partition, row)
    except ResourceNotFoundError:
        return False
    return True


def record(alert: payloads.CommonAlert, outcome: str) -> None:
    """Remember a handled delivery, so the action group's retries and repeats change nothing."""
    from shared.state.tables import table

    partition, row = _key(alert)
    table(DELIVERIES).upsert_entity(
        {
            "PartitionKey": partition,
            "RowKey": row,
            "alert": alert.essentials.alertId[:1000],
            "rule": alert.essentials.alertRule[:200],
            "outcome": outcome[:500],
        }
    )


@dataclass(frozen=True)
class Handled:
    """What came of one delivery: `repeat` (handled before), `ignored` (nothing to do) or `accepted`, and why."""

    status: str
    detail: str


async def handle(client: Any, alert: payloads.CommonAlert, autoscaler: Callable[[], Any]) -> Handled:
    """Deduplicate, route and act on one alert: a logon rate to `autoscaler()`, a proposal or its
    withdrawal to the failover control plane (through the Durable `client`). InputError for an alert that routes
    nowhere valid (a 400), DependencyError when storage or a dependency failed (a 503: the action group retries)."""
    import asyncio

    from shared.autoscale import react
    from shared.config.loader import get_topology
    from shared.errors import InputError
    from shared.failover import control
    from shared.telemetry import get_logger, log_event

    log = get_logger("alerts")
    essentials = alert.essentials
    try:
        if await asyncio.to_thread(seen, alert):
            log_event(log, "alerts.repeat", alert=essentials.alertId[:200], condition=essentials.monitorCondition)
            return Handled("repeat", "this alert's delivery was handled already")
        routed = route(get_topology(), alert)
        if isinstance(routed, LogonRate):
            outcome = await asyncio.to_thread(react.on_logon_rate, autoscaler(), routed.pool_id, routed.per_minute)
        elif isinstance(routed, Propose):
            outcome = await control.propose(client, routed.region, routed.reason, essentials.alertId[:200])
        elif isinstance(routed, Withdraw):
            outcome = await control.withdraw(client, routed.region, routed.reason, essentials.alertId[:200])
        else:
            outcome = f"ignored: {routed.why}"
        await asyncio.to_thread(record, alert, outcome)
    except InputError as exc:
        raise InputError(str(exc), title="Invalid alert") from exc
    log_event(log, "alerts.handled", alert=essentials.alertId[:200], rule=essentials.alertRule[:200],
              condition=essentials.monitorCondition, outcome=outcome)  # fmt: skip
    if outcome.startswith("ignored"):
        return Handled("ignored", outcome.removeprefix("ignored").lstrip(": ") or "nothing to do")
    return Handled("accepted", outcome)
