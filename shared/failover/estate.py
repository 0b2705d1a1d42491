"""The failover's view of the topology: which regions pair, the replicated directories between them oriented for
this failover, each region's pools and application groups; and what every family of steps shares (StepsBase)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.azure.models import PoolRef
from shared.config.model import Pairing, Region, Topology
from shared.errors import InputError


@dataclass(frozen=True)
class Link:
    """One replicated profile directory between the two regions, in the direction of the failover."""

    source_path: str
    target_path: str
    relationship_id: str | None


def pairing_of(topology: Topology, source: str, target: str) -> Pairing:
    """The pairing joining `source` and `target`; InputError otherwise."""
    for pairing in topology.pairings:
        if {pairing.primary, pairing.secondary} == {source, target}:
            return pairing
    raise InputError(f"regions {source!r} and {target!r} are not paired in the topology")


def region(topology: Topology, name: str) -> Region:
    """A region by name; InputError when the topology has none."""
    found = next((r for r in topology.regions if r.name == name), None)
    if found is None:
        raise InputError(f"no region {name!r} in the topology")
    return found


def links(topology: Topology, source: str, target: str) -> list[Link]:
    """The replicated directories, oriented from `source` to `target` (failback runs them backwards)."""
    pairing = pairing_of(topology, source, target)
    forward = pairing.primary == source
    return [
        Link(
            r.source_directory if forward else r.target_directory,
            r.target_directory if forward else r.source_directory,
            r.relationship_id,
        )
        for r in pairing.replication
    ]


def pool_refs(reg: Region) -> list[PoolRef]:
    """The region's pools as gateway references."""
    return [PoolRef.of(reg, p) for p in reg.host_pools]


def app_groups(reg: Region) -> list[str]:
    """The ARM ids of the region's application groups whose assignments move."""
    return [
        f"/subscriptions/{p.subscription_id or reg.subscription_id}/resourceGroups/{p.resource_group}/providers/"
        f"Microsoft.DesktopVirtualization/applicationGroups/{g}"
        for p in reg.host_pools
        for g in p.application_groups
    ]


def read_region(gateway: Any, reg: Region) -> Any:
    """The region's pools, or an error naming the first that could not be read (a step must not act half-blind)."""
    reads = gateway.read_pools(pool_refs(reg))
    if reads.errors:
        key, err = next(iter(reads.errors.items()))
        raise RuntimeError(f"{key}: {err}"[:300])
    return reads


def check_outcomes(outcomes: list[Any], what: str) -> None:
    """Raise when any action of a step failed (a retry redoes only what is still needed)."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"{what} failed on {failed[0].target}: {failed[0].detail or failed[0].result}"[:300])


def host_of(address: str) -> str:
    """The host part of an address (an https:// URL or host:port)."""
    return address.split("://", 1)[-1].split(":", 1)[0].rstrip("/")


class StepsBase:
    """The app's long-lived clients every step family acts through."""

    def __init__(self, topology: Topology, gateway: Any, qumulo: Any, autoscaler: Any, snapshots: Any) -> None:
        self.topology, self.gateway, self.qumulo = topology, gateway, qumulo
        self.autoscaler, self.snapshots = autoscaler, snapshots

    def _relationship(self, target: Region, link: Link) -> str:
        """The relationship id: from the topology, else found on the target cluster by its target path."""
        if link.relationship_id:
            return link.relationship_id
        for status in self.qumulo(target).target_statuses():
            if status.target_root_path.rstrip("/") == link.target_path:
                return str(status.id)
        raise InputError(f"no replication relationship into {link.target_path} on {target.anq.name}")
