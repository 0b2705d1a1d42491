"""Control plane: ARM requests and wall time to read an estate, the gateway against a naive per-VM approach.

20 pools x 100 hosts behind 50 ms of injected latency on the ARM twin. The naive reader does what
per-host scripts do: list the session hosts, then ask each VM for its instance view; it gets the same
bounded parallelism as the gateway, so the difference is the number of calls, not the threads.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.runtime.clock import VirtualClock
from local.twins.arm import ArmTwin, Seed
from local.twins.arm.seed import pool_seed
from shared.azure import AzureGateway, PoolRef
from shared.azure.gateway import pooled_transport
from shared.azure.resource_id import ResourceId
from shared.azure.retry import ArmRetryPolicy

SUB = "00000000-0000-4000-8000-00000000b001"
WORKERS = 16
VM_GROUPS = 4


def _naive_clients(endpoint: str, warm: PoolRef) -> tuple[Any, Any]:
    """SDK clients as a per-host script would build them, warmed up like the gateway was."""
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.desktopvirtualization import DesktopVirtualizationMgmtClient

    credential = ManagedIdentityCredential()
    options = {"base_url": endpoint, "retry_policy": ArmRetryPolicy(), "transport": pooled_transport(WORKERS)}
    dv = DesktopVirtualizationMgmtClient(credential, SUB, **options)
    compute = ComputeManagementClient(credential, SUB, **options)
    dv.host_pools.get(warm.resource_group, warm.name)
    return dv, compute


def _naive(dv: Any, compute: Any, refs: list[PoolRef]) -> int:
    """Per pool: get + list hosts + list sessions; then one instance-view call per VM. Returns hosts seen."""
    with ThreadPoolExecutor(WORKERS) as pool:
        listings = list(pool.map(lambda r: (dv.host_pools.get(r.resource_group, r.name),
                                            list(dv.session_hosts.list(r.resource_group, r.name)),
                                            list(dv.user_sessions.list_by_host_pool(r.resource_group, r.name))), refs))
        vms = [ResourceId.parse(h.resource_id) for _, hosts, _ in listings for h in hosts]
        views = list(pool.map(lambda v: compute.virtual_machines.instance_view(v.resource_group, v.name), vms))
    return len(views)


def _arm_requests(twin: ArmTwin) -> int:
    return len([r for r in twin.server.log() if r.path != "/msi/token"])


def run(pools: int = 20, hosts: int = 100, latency_ms: float = 50.0) -> dict[str, Any]:
    """Read the estate once each way, after a warm-up that pays for TLS handshakes and the first token."""
    seed = pool_seed(hosts, pools=pools, running=hosts // 3, users=pools * hosts, max_sessions=8, vm_groups=VM_GROUPS,
                     subscription=SUB)
    twin = ArmTwin(Seed.model_validate(seed), clock=VirtualClock(), latency_s=latency_ms / 1000).start()
    os.environ.update(twin.identity_settings)
    refs = [PoolRef(SUB, "rg-avd", f"hp{p}", (f"rg-hosts-{p % VM_GROUPS}",)) for p in range(pools)]
    estate = twin.estate
    for i in range(1, pools * hosts // 4 + 1):  # a quarter of the seats taken, spread over the pools
        estate.logon(estate.pool(SUB, "rg-avd", f"hp{i % pools}"), f"user{i:03d}@contoso.com")
    result: dict[str, Any] = {"pools": pools, "hosts": pools * hosts, "latency_ms": latency_ms, "workers": WORKERS}
    try:
        with AzureGateway(endpoint=twin.base_url, max_workers=WORKERS) as gateway:
            gateway.read_pool(refs[0])  # warm-up: token, connections
            twin.server.clear_log()
            started = time.perf_counter()
            reads = gateway.read_pools(refs)
            wall = time.perf_counter() - started
            assert not reads.errors and sum(len(s.hosts) for s in reads.states.values()) == pools * hosts
            result["gateway"] = {"requests": _arm_requests(twin), "wall_s": round(wall, 3)}
        dv, compute = _naive_clients(twin.base_url, refs[0])
        twin.server.clear_log()
        started = time.perf_counter()
        seen = _naive(dv, compute, refs)
        wall = time.perf_counter() - started
        assert seen == pools * hosts
        result["naive"] = {"requests": _arm_requests(twin), "wall_s": round(wall, 3)}
    finally:
        twin.close()
    return result
