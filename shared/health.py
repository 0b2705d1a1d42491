"""The health report: whether the topology loads, and a one-line picture of the estate it describes."""

from __future__ import annotations

from typing import Any

from shared import telemetry
from shared.config import TopologyError, get_topology

_log = telemetry.get_logger("health")


def check() -> dict[str, Any]:
    """Load the topology (cached) and summarise it; never raises for a bad file."""
    try:
        topology = get_topology()
    except TopologyError as exc:
        telemetry.log_event(_log, "health.topology_invalid", level=40, file=exc.file, problems=exc.problems)
        return {"ok": False, "problems": exc.problems}
    return {
        "ok": True,
        "regions": [r.name for r in topology.regions],
        "host_pools": sum(len(r.host_pools) for r in topology.regions),
        "profile_directories": sum(len(r.profile_directories) for r in topology.regions),
        "pairings": [f"{p.primary}->{p.secondary}" for p in topology.pairings],
    }
