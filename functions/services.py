"""The process's long-lived services (clients with pooled connections), one per capability; every blueprint gets
its services here, so no blueprint reaches into another.

Each is built on first use from the topology named by TANDEM_TOPOLOGY_PATH, and rebuilt (the old one closed)
when that setting changes, as it does between local runs in one process; in Azure it never changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shared import settings

_services: dict[str, tuple[str, Any]] = {}
_lock = threading.RLock()  # a service may be built from others (failover uses autoscale and snapshots)


def get(name: str, build: Callable[[Any], Any]) -> Any:
    """The service `name`, built by `build(topology)` for the current topology."""
    from shared.config.loader import get_topology

    location = settings.get(settings.TOPOLOGY_PATH) or ""
    with _lock:
        current = _services.get(name)
        if current is not None and current[0] == location:
            return current[1]
        if current is not None:
            _close(current[1])
        service = build(get_topology())
        _services[name] = (location, service)
        return service


def reset() -> None:
    """Close and forget every service."""
    with _lock:
        for _, service in _services.values():
            _close(service)
        _services.clear()


def _close(service: Any) -> None:
    close = getattr(service, "close", None)
    if callable(close):
        close()


def autoscaler() -> Any:
    """The process's Autoscaler."""
    from shared.autoscale.service import Autoscaler

    return get("autoscale", Autoscaler)


def snapshotter() -> Any:
    """The process's Snapshotter."""
    from shared.snapshots.service import Snapshotter

    return get("snapshots", Snapshotter)


def steps() -> Any:
    """The process's failover steps, sharing the autoscale gateway and the snapshot clients."""
    from shared.failover.steps import Steps

    return get("failover", lambda topology: Steps(topology, autoscaler().gateway, snapshotter().client, autoscaler(), snapshotter()))
