"""Control plane: what reading an estate costs Tandem's process, the gateway against the best documented reader.

20 pools x 100 hosts (a third running, 4 sessions on each running host, VMs in 4 resource groups) on the ARM
twin in its own process (`python -m local.twins.arm`) with 50 ms of latency, so the CPU measured here
(`time.process_time()` of this process, every thread) is the reader's alone. The reference reader uses the
SDKs as documented and builds their models: per pool the pool, its session hosts and its user sessions, and
power for every VM of the subscription in one `VirtualMachines_ListAll` with `statusOnly=true` (the one
documented call that returns run-time status for many VMs at once), AVD lists with the same 1,000 page
size. Both get the same 16-way parallelism and
are warmed up (token, connections) first; the better of three reads each is reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from local.twins.arm.seed import pool_seed
from shared.azure import AzureGateway, PoolRef
from shared.azure.gateway import pooled_transport
from shared.azure.retry import ArmRetryPolicy

SUB = "00000000-0000-4000-8000-00000000b001"
WORKERS = 16
VM_GROUPS = 4
ROUNDS = 3


def _sdk_reader(endpoint: str) -> tuple[Any, Any]:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.desktopvirtualization import DesktopVirtualizationMgmtClient

    credential = ManagedIdentityCredential()
    options = {"base_url": endpoint, "retry_policy": ArmRetryPolicy(), "transport": pooled_transport(WORKERS)}
    return DesktopVirtualizationMgmtClient(credential, SUB, **options), ComputeManagementClient(credential, SUB, **options)


def _read_with_models(dv: Any, compute: Any, refs: list[PoolRef]) -> int:
    """Per pool get + hosts + sessions, and the subscription's VM statuses, as SDK models. Returns hosts seen."""
    with ThreadPoolExecutor(WORKERS) as pool:
        power = pool.submit(lambda: {vm.id.lower(): vm for vm in compute.virtual_machines.list_all(status_only="true")})
        listings = list(
            pool.map(
                lambda r: (
                    dv.host_pools.get(r.resource_group, r.name),
                    list(dv.session_hosts.list(r.resource_group, r.name, page_size=1000)),
                    list(dv.user_sessions.list_by_host_pool(r.resource_group, r.name, page_size=1000)),
                ),
                refs,
            )
        )
        vms = power.result()
    return sum(1 for _, hosts, _ in listings for h in hosts if (h.resource_id or "").lower() in vms)


def _best(read: Any) -> dict[str, float]:
    """The cheapest of ROUNDS reads: CPU of this process and wall time."""
    runs = []
    for _ in range(ROUNDS):
        cpu, wall = time.process_time(), time.perf_counter()
        read()
        runs.append((time.process_time() - cpu, time.perf_counter() - wall))
    cpu_s, wall_s = min(runs)
    return {"cpu_ms": round(cpu_s * 1000, 1), "wall_s": round(wall_s, 3)}


def run(pools: int = 20, hosts: int = 100, latency_ms: float = 50.0) -> dict[str, Any]:
    """Start the twin in its own process, read the estate each way, stop the twin."""
    seed = pool_seed(hosts, pools=pools, running=hosts // 3, sessions=4, max_sessions=8, vm_groups=VM_GROUPS, subscription=SUB)
    refs = [PoolRef(SUB, "rg-avd", f"hp{p}", (f"rg-hosts-{p % VM_GROUPS}",)) for p in range(pools)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.json"
        path.write_text(json.dumps(seed), encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "local.twins.arm", "--port", "0", "--seed", str(path), "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line.startswith("READY "):
                raise RuntimeError(f"the ARM twin did not start: {line!r}")
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            os.environ.update(
                {
                    "IDENTITY_ENDPOINT": fields["identity_endpoint"],
                    "IDENTITY_HEADER": fields["identity_header"],
                    "REQUESTS_CA_BUNDLE": fields["ca"],
                }
            )
            result: dict[str, Any] = {
                "pools": pools,
                "hosts": pools * hosts,
                "latency_ms": latency_ms,
                "workers": WORKERS,
                "twin": "own process",
            }
            with AzureGateway(endpoint=fields["base_url"], max_workers=WORKERS) as gateway:
                gateway.read_pools(refs[:1])  # warm-up: token, connections

                def tandem() -> None:
                    reads = gateway.read_pools(refs)
                    assert not reads.errors and sum(len(s.hosts) for s in reads.states.values()) == pools * hosts

                result["tandem"] = _best(tandem)
            dv, compute = _sdk_reader(fields["base_url"])
            dv.host_pools.get(refs[0].resource_group, refs[0].name)  # warm-up

            def with_models() -> None:
                assert _read_with_models(dv, compute, refs) == pools * hosts

            result["sdk_models_list_all"] = _best(with_models)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    for key in ("tandem", "sdk_models_list_all"):
        result[key]["cpu_ms_per_pool"] = round(result[key]["cpu_ms"] / pools, 2)
    result["cpu_ratio"] = round(result["sdk_models_list_all"]["cpu_ms"] / max(result["tandem"]["cpu_ms"], 0.1), 2)
    return result
