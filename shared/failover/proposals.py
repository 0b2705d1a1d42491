"""What an alert-borne proposal turns into: a VM share counted per region, a debounce, and the failover request.

The Event Grid handler parses the event (signals.py), then asks this module; it holds no policy of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.config.model import Topology
from shared.failover import signals
from shared.failover.steps import pool_refs


def vm_share(topology: Topology, gateway: Any, health: signals.VmHealth) -> signals.Proposal | signals.Ignored:
    """Record a session host VM's health; propose when more than the policy's share of a region is down."""
    from shared.state.tables import safe_key, table

    for region in topology.regions:
        reads = gateway.read_pools(pool_refs(region))
        vms = {h.vm_id.lower() for s in reads.states.values() for h in s.hosts if h.vm_id}
        if health.vm_id.lower() not in vms:
            continue
        records = table("failoverhealth")
        records.upsert_entity({"PartitionKey": region.name, "RowKey": safe_key(health.vm_id.lower()),
                               "down": not health.available})
        down = sum(1 for e in records.query_entities("PartitionKey eq @r", parameters={"r": region.name}) if e["down"])
        share = 100 * down / max(1, len(vms))
        if share > topology.policies.failover.unhealthy_hosts_pct:
            return signals.Proposal(region.name, f"{down} of {len(vms)} session host VMs unavailable ({share:.0f}%)")
        return signals.Ignored(f"{down} of {len(vms)} session host VMs unavailable in {region.name}")
    return signals.Ignored(f"{health.vm_id} is not a session host of the estate")


def pair_id(source: str, target: str) -> str:
    """The instance id of a region pair's failover: one instance per pair, whichever way it runs."""
    return "failover-" + "-".join(sorted([source, target]))


def instance_ids(topology: Topology) -> set[str]:
    """Every instance id Tandem starts: one per pairing."""
    return {pair_id(p.primary, p.secondary) for p in topology.pairings}


def target_of(topology: Topology, region: str) -> str | None:
    """The region `region` fails over to, or None when it is not paired."""
    pairing = next((p for p in topology.pairings if region in (p.primary, p.secondary)), None)
    if pairing is None:
        return None
    return pairing.secondary if region == pairing.primary else pairing.primary


def debounced(topology: Topology, last_updated: datetime | None, now: datetime) -> bool:
    """Did the pair's last instance end so recently that a new proposal is a flap?"""
    if last_updated is None:
        return False
    last = last_updated if last_updated.tzinfo else last_updated.replace(tzinfo=now.tzinfo)
    return now - last < topology.policies.failover.debounce


def policy(topology: Topology) -> dict[str, Any]:
    """The failover policy as the orchestration reads it (its `admit` activity builds it from the topology)."""
    f = topology.policies.failover
    return {"drain_wait_s": f.drain_wait.total_seconds(), "warning_message": f.warning_message,
            "auto_approve": f.auto_approve_unplanned, "max_rpo_s": f.max_rpo.total_seconds(),
            "approval_timeout_s": f.approval_timeout.total_seconds(), "detach_wait_s": f.detach_wait.total_seconds(),
            "job_deadline_s": f.replication_deadline.total_seconds(), "job_s": 120.0, "revert_s": 30.0}


def proposal_request(topology: Topology, proposal: signals.Proposal, target: str) -> dict[str, Any]:
    """The orchestration input for an alert's proposal: an unplanned failover that waits for approval."""
    return {"source": proposal.region, "target": target, "mode": "unplanned", "reason": proposal.reason,
            "requested_by": "alert"}
