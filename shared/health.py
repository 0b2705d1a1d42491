"""The health report: whether the topology loads, and a one-line picture of the estate it describes."""

from __future__ import annotations

from typing import Any

from shared import telemetry

_log = telemetry.get_logger("health")


def check() -> dict[str, Any]:
    """Load the topology (cached) and summarise it; never raises for a bad file."""
    from shared.config import TopologyError, get_topology  # lazy: the models and pydantic load on first use

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
        **profile_paths(),
        **left_alone(),
    }


def left_alone() -> dict[str, Any]:
    """The pools autoscale left alone at their last evaluation, and why (autoscale_policy none, a native scaling
    plan enabled on the pool)."""
    from shared.state.tables import table

    try:
        rows = list(table("autoscalestate").query_entities("PartitionKey eq 'pool' and left ne ''"))
    except Exception as exc:  # health must answer even when storage does not
        return {"autoscale_left_alone": [], "autoscale_left_alone_error": type(exc).__name__}
    return {
        "autoscale_left_alone": sorted(
            ({"pool": str(r.get("pool") or r["RowKey"]), "reason": str(r.get("left"))} for r in rows if r.get("left")),
            key=lambda p: p["pool"],
        )
    }


def profile_paths() -> dict[str, Any]:
    """Where each pool's FSLogix looked when a failover or drill last read it, and what its check found."""
    import json

    from shared.state.tables import table

    try:
        rows = list(table("fslogixsettings").list_entities())
    except Exception as exc:  # health must answer even when storage does not
        return {"profile_paths": [], "profile_paths_error": type(exc).__name__}
    found = []
    for row in rows:
        settings = json.loads(row.get("settings") or "{}")
        found.append(
            {
                "region": row.get("region"),
                "pool": row.get("pool"),
                "host": settings.get("host"),
                "read_at": settings.get("read_at"),
                "kind": settings.get("kind"),
                "locations": settings.get("locations") or [],
                "enabled": settings.get("enabled"),
                "checked_at": row.get("checked_at"),
                "problems": json.loads(row.get("problems") or "[]"),
            }
        )
    return {"profile_paths": sorted(found, key=lambda p: (str(p["region"]), str(p["pool"])))}
