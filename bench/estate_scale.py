"""Estate scale: an hour of autoscale sweeps over 200 pools x 100 hosts in 4 subscriptions.

The ARM twin runs in its own process (`python -m local.twins.arm`) with ARM-like latency (40 ms a request) and
ARM's documented token buckets on, while users sign in and out in it (`--churn`). Tandem's real Autoscaler
(gateway, Table storage on Azurite, planner, executor) sweeps the estate the way the `autoscale_sweep`
orchestration does: the topology cut by `shared.autoscale.sweep.partitions`, each partition one
`Autoscaler.run` (what the `autoscale_partition` activity calls), here one after another in this process.

Time is compressed: a sweep starts every `period_s` (10 s) of real time and stands for one minute, so the
twin's buckets refill `60 / period_s` times faster than ARM's (each sweep faces the tokens a one-minute period
would leave it). An hour is 60 sweeps. Reported: requests per pool per sweep, 429s seen and retries exhausted,
Tandem's CPU per pool (the read alone, and the whole evaluation with storage), sweep wall p50/p95 in this
single process, and the makespan the same partitions would take spread over N instances.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from local.twins.arm.seed import estate_seed

SUBSCRIPTIONS = [f"00000000-0000-4000-8000-00000000c00{i}" for i in range(1, 5)]
POOLS_PER_SUB, HOSTS, VM_GROUPS = 50, 100, 10
LATENCY_MS = 40.0
INSTANCES = (1, 2, 4, 8)


def _topology() -> Any:
    from shared.config.model import Topology

    pools = [
        {"name": f"hp{p}", "resource_group": "rg-avd", "subscription_id": sub, "vm_resource_groups": [f"rg-hosts-{p % VM_GROUPS}"]}
        for sub in SUBSCRIPTIONS
        for p in range(POOLS_PER_SUB)
    ]
    return Topology.model_validate(
        {
            "version": 1,
            "regions": [
                {
                    "name": "east",
                    "location": "eastus2",
                    "subscription_id": SUBSCRIPTIONS[0],
                    "host_pools": pools,
                    "anq": {
                        "name": "anq-east",
                        "address": "https://127.0.0.1:9",
                        "credentials": {"username": "svc", "password": {"app_setting": "UNUSED"}},
                    },
                    "profile_directories": [{"path": "/profiles/fslogix"}],
                }
            ],
            "policies": {
                "autoscale": {
                    "default": {
                        "algorithm": "tandem",
                        "time_zone": "UTC",
                        "weekdays_only": False,
                        "phases": [{"phase": "peak", "start": "00:00", "capacity_threshold_pct": 80, "minimum_hosts_pct": 10}],
                    }
                },
                "snapshots": {"tiers": [{"name": "hourly", "keep": "1d"}]},
            },
        }
    )


def _makespan(walls: list[float], instances: int) -> float:
    """The sweep's wall time with its partitions spread over `instances` (longest first, to the least loaded)."""
    loads = [0.0] * instances
    for wall in sorted(walls, reverse=True):
        loads[loads.index(min(loads))] += wall
    return max(loads)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def run(sweeps: int = 60, period_s: float = 10.0, churn_per_min: int = 400) -> dict[str, Any]:
    """Start the twin, sweep `sweeps` times every `period_s`, stop the twin."""
    from shared.autoscale import sweep
    from shared.autoscale.service import Autoscaler
    from shared.azure import AzureGateway

    seed = estate_seed(
        SUBSCRIPTIONS,
        hosts=HOSTS,
        pools=POOLS_PER_SUB,
        running=HOSTS // 4,
        sessions=6,
        max_sessions=8,
        vm_groups=VM_GROUPS,
        users=4000,
        agent_ready="60s",
    )
    scale = 60.0 / period_s
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.json"
        path.write_text(json.dumps(seed), encoding="utf-8")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.twins.arm",
                "--port",
                "0",
                "--seed",
                str(path),
                "--latency-ms",
                str(LATENCY_MS),
                "--time-scale",
                str(scale),
                "--churn",
                str(int(churn_per_min / scale)),
            ],
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
                    "TANDEM_ARM_RETRY_BUDGET_S": "20",
                    "IDENTITY_HEADER": fields["identity_header"],
                    "REQUESTS_CA_BUNDLE": fields["ca"],
                }
            )
            topology = _topology()
            gateway = AzureGateway(endpoint=fields["base_url"], max_workers=16)
            scaler = Autoscaler(topology, gateway)
            parts = sweep.partitions(
                [(t.ref.key, t.ref.subscription, t.ref.vm_resource_groups) for t in scaler.targets.values()], sweep.partition_size()
            )
            by_key = scaler.targets
            read_cpu = [0.0]
            read = gateway.read_pools

            def timed_read(refs: Any) -> Any:  # the read's own CPU: nothing else runs in the process meanwhile
                start = time.process_time()
                try:
                    return read(refs)
                finally:
                    read_cpu[0] += time.process_time() - start

            gateway.read_pools = timed_read  # type: ignore[method-assign]  # measuring, not changing, the read
            for part in parts:  # warm-up: token, connections, tables, the scaling plans, the first settling
                scaler.run([by_key[k] for k in part])
            before = _stats(fields["base_url"])
            walls, sweep_cpu, partition_walls, actions, errors, exhausted = [], [], [], [], 0, 0
            read_cpu[0] = 0.0
            for _ in range(sweeps):
                started, cpu = time.perf_counter(), time.process_time()
                walls_now, made = [], 0
                for part in parts:
                    t0 = time.perf_counter()
                    results = scaler.run([by_key[k] for k in part])
                    walls_now.append(time.perf_counter() - t0)
                    made += sum(len(r.decision.actions) for r in results)
                    failed = [r.error for r in results if r.error]
                    errors += len(failed)
                    exhausted += sum(1 for e in failed if "429" in e or "Throttled" in e)
                walls.append(time.perf_counter() - started)
                sweep_cpu.append(time.process_time() - cpu)
                partition_walls.append(walls_now)
                actions.append(made)
                time.sleep(max(0.0, period_s - walls[-1]))
            after = _stats(fields["base_url"])
            scaler.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    pools = len(by_key)
    requests = after["requests"] - before["requests"]
    return {
        "pools": pools,
        "hosts": pools * HOSTS,
        "subscriptions": len(SUBSCRIPTIONS),
        "sweeps": sweeps,
        "period": f"one minute, compressed to {period_s:g} s (buckets refill {scale:g}x)",
        "latency_ms": LATENCY_MS,
        "partitions": len(parts),
        "partition_pools": sweep.partition_size(),
        "requests_per_pool": round(requests / (pools * sweeps), 2),
        "throttled": after["throttled"] - before["throttled"],
        "retries_exhausted": exhausted,
        "failed_pools": errors,
        "tandem_cpu_ms_per_pool": round(read_cpu[0] * 1000 / (pools * sweeps), 2),
        "evaluation_cpu_ms_per_pool": round(statistics.mean(sweep_cpu) * 1000 / pools, 2),
        "sweep_wall_s": {"p50": _p(walls, 0.5), "p95": _p(walls, 0.95), "one_process": True},
        "sweep_wall_on_instances_s": {
            str(n): {
                "p50": _p([_makespan(w, n) for w in partition_walls], 0.5),
                "p95": _p([_makespan(w, n) for w in partition_walls], 0.95),
            }
            for n in INSTANCES
        },
        "decisions_per_sweep": pools,
        "actions_per_sweep": round(statistics.mean(actions), 1),
    }


def _stats(base_url: str) -> dict[str, int]:
    """The twin's own request and 429 counts (its local /twin/stats page; REQUESTS_CA_BUNDLE trusts its CA)."""
    import requests

    answer = requests.get(f"{base_url}/twin/stats", timeout=10)
    answer.raise_for_status()
    return dict(answer.json())
