"""What an alert-borne proposal turns into: a VM share counted per region, a debounce, and the failover request.

The Event Grid handler parses the event (signals.py), then asks this module; it holds no policy of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.config.model import Region, Topology
from shared.failover import signals
from shared.failover.estate import pool_refs

RECORD_TTL = timedelta(hours=1)  # a VM's health record older than this no longer counts
HEALTH = "failoverhealth"


def vm_share(
    topology: Topology, gateway: Any, signal: signals.VmHealth | signals.VmAnnotation, now: datetime
) -> signals.Proposal | signals.Ignored:
    """Record what Resource Health said of a session host VM; propose when more than the policy's share of its
    region is unplanned-unavailable. Not counted: a VM the customer (or Tandem) stopped on purpose (annotated
    Customer Initiated, or deallocated in the pool's own read), and records older than RECORD_TTL."""
    from azure.data.tables import UpdateMode

    from shared.state.tables import safe_key, table

    for region in topology.regions:
        reads = gateway.read_pools(pool_refs(region))
        hosts = {h.vm_id.lower(): h for s in reads.states.values() for h in s.hosts if h.vm_id}
        if signal.vm_id.lower() not in hosts:
            continue
        records = table(HEALTH)
        key = safe_key(signal.vm_id.lower())
        if isinstance(signal, signals.VmHealth):
            entity = {"down": not signal.available, "at": now.isoformat()}
        else:
            entity = {"customer": signal.customer, "annotated_at": now.isoformat(), "what": signal.what}
        records.upsert_entity({"PartitionKey": region.name, "RowKey": key, **entity}, mode=UpdateMode.MERGE)
        stopped = {safe_key(v) for v, h in hosts.items() if h.power in ("deallocated", "stopped")}
        down = sum(
            1
            for e in records.query_entities("PartitionKey eq @r", parameters={"r": region.name})
            if counts_down(e, now) and e["RowKey"] not in stopped
        )
        share = 100 * down / max(1, len(hosts))
        if share > topology.policies.failover.unhealthy_hosts_pct:
            return signals.Proposal(region.name, f"{down} of {len(hosts)} session host VMs unavailable ({share:.0f}%)")
        return signals.Ignored(f"{down} of {len(hosts)} session host VMs unplanned-unavailable in {region.name}")
    return signals.Ignored(f"{signal.vm_id} is not a session host of the estate")


ANNOTATION_SPAN = timedelta(minutes=15)  # how near its status change an annotation must be to explain it


def counts_down(entity: dict[str, Any], now: datetime) -> bool:
    """A health record that says unplanned-unavailable now: down, recent, and not explained by a Customer
    Initiated annotation near that change (Resource Health annotates a deallocation as it happens)."""
    if not entity.get("down") or not entity.get("at"):
        return False
    at = datetime.fromisoformat(str(entity["at"]))
    if now - at > RECORD_TTL:
        return False
    annotated = entity.get("annotated_at")
    explained = (
        bool(entity.get("customer")) and bool(annotated) and abs(datetime.fromisoformat(str(annotated)) - at) <= ANNOTATION_SPAN
    )
    return not explained


def vm_down_summary(region: Region, now: datetime) -> str:
    """What Resource Health last said of a region's session host VMs, from the records alone (no ARM read)."""
    from shared.state.tables import table

    rows = list(table(HEALTH).query_entities("PartitionKey eq @r", parameters={"r": region.name}))
    down = sum(1 for e in rows if counts_down(e, now))
    return f"{down} session host VMs unplanned-unavailable per Resource Health"


def pair_id(source: str, target: str) -> str:
    """The instance id of a region pair's failover: one instance per pair, whichever way it runs."""
    return "failover-" + "-".join(sorted([source, target]))


def instance_ids(topology: Topology) -> set[str]:
    """Every instance id Tandem starts: one per pairing."""
    return {pair_id(p.primary, p.secondary) for p in topology.pairings}


def paired_regions(topology: Topology) -> list[Region]:
    """The regions that have somewhere to fail over to."""
    paired = {n for p in topology.pairings for n in (p.primary, p.secondary)}
    return [r for r in topology.regions if r.name in paired]


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
    return {
        "drain_wait_s": f.drain_wait.total_seconds(),
        "warning_message": f.warning_message,
        "auto_approve": f.auto_approve_unplanned,
        "max_rpo_s": f.max_rpo.total_seconds(),
        "approval_timeout_s": f.approval_timeout.total_seconds(),
        "detach_wait_s": f.detach_wait.total_seconds(),
        "job_deadline_s": f.replication_deadline.total_seconds(),
        "job_s": 120.0,
        "revert_s": 30.0,
        "signin_sample": f.signin_sample,
        "signin_window_s": f.signin_window.total_seconds(),
    }


def proposal_request(region: str, reason: str, target: str) -> dict[str, Any]:
    """The orchestration input for a proposal: an unplanned failover that waits for approval (the policy says
    whether it may proceed alone); `admit` reads the policy from the topology."""
    return {"source": region, "target": target, "mode": "unplanned", "reason": reason[:200], "requested_by": "alert"}
