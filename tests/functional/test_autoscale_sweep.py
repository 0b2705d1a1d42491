"""The autoscale sweep of a larger estate, and pools Tandem leaves alone: the real function app on the local
runtime, the ARM twin (in two subscriptions), Azurite and the real Durable replay.

- An estate of more than one partition is swept by the singleton orchestration: every pool evaluated once, each
  VM resource group listed once; a timer that fires while the sweep runs starts no second one.
- A pool with an enabled native scaling plan is left to it (observed, never acted on, listed in /api/health);
  `scaling_plan: take_over` scales it anyway; `autoscale_policy: none` is never scaled by the timer, but a
  failover's warm-up still starts its hosts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions import services
from local.runtime import LocalHost, VirtualClock
from local.twins.arm.seed import GENERATED_SUBSCRIPTION, estate_seed
from shared.autoscale.store import AutoscaleStore

START = datetime(2026, 11, 30, 6, 58, tzinfo=UTC)  # a Monday, before ramp-up
OTHER = "5b0c2f6e-0d3a-4c51-9d4e-7a1c3e2b9f10"
SUBSCRIPTIONS = [GENERATED_SUBSCRIPTION, OTHER]
POOLS = 3  # per subscription, each with its own VM resource group


def _topology(tmp_path: Path, pools: dict[str, dict[str, Any]] | None = None) -> Path:
    extra = pools or {}
    doc = {
        "version": 1,
        "regions": [
            {
                "name": "east",
                "location": "eastus2",
                "subscription_id": GENERATED_SUBSCRIPTION,
                "host_pools": [
                    {
                        "name": f"hp{p}",
                        "resource_group": "rg-avd",
                        "subscription_id": sub,
                        "vm_resource_groups": [f"rg-hosts-{p}"],
                        "autoscale_policy": "storm",
                        **extra.get(f"{sub}/hp{p}", {}),
                    }
                    for sub in SUBSCRIPTIONS
                    for p in range(POOLS)
                ],
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
                "storm": {
                    "algorithm": "tandem",
                    "time_zone": "UTC",
                    "cooldown": "5m",
                    "phases": [
                        {"phase": "ramp_up", "start": "07:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 50},
                        {"phase": "off_peak", "start": "20:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 0},
                    ],
                }
            },
            "snapshots": {"tiers": [{"name": "hourly", "keep": "1d"}]},
        },
    }
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def sweep_estate(arm: Any, storage: str, hub: str, tmp_path: Path, request: Any) -> Iterator[tuple[LocalHost, Any]]:
    """Six 4-host pools in two subscriptions, all stopped; partitions of two pools; one shared virtual clock."""
    clock = VirtualClock(START)
    twin = arm(
        estate_seed(SUBSCRIPTIONS, hosts=4, pools=POOLS, vm_groups=POOLS, users=20, max_sessions=5, agent_ready="60s"), clock=clock
    )
    pools, partition = getattr(request, "param", ({}, "2"))
    settings = {
        **twin.identity_settings,
        "TANDEM_TOPOLOGY_PATH": str(_topology(tmp_path, pools)),
        "TANDEM_AUTOSCALE_PARTITION_POOLS": partition,
        "AUTOSCALE_SCHEDULE": "0 */5 * * * *",
        "SNAPSHOT_SCHEDULE": "0 0 0 1 1 *",
        "ANQ_WATCH_SCHEDULE": "0 0 0 1 1 *",
    }
    services.reset()
    host = LocalHost("function_app", storage=storage, hub=hub, clock=clock, settings=settings, identity=twin.identity)
    with host:
        yield host, twin
    services.reset()


def _pool(twin: Any, sub: str, p: int) -> Any:
    return twin.estate.pool(sub, "rg-avd", f"hp{p}")


def _running(twin: Any, pool: Any) -> int:
    now = twin.estate.clock.now()
    return sum(1 for h in pool.hosts.values() if h.vm.power(now) in ("running", "starting"))


def _events(caplog: Any, name: str) -> list[dict[str, Any]]:
    said = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    return [e for e in said if e.get("event") == name]


def test_a_large_estate_is_swept_in_partitions_each_pool_once(sweep_estate: Any, caplog: Any) -> None:
    host, twin = sweep_estate
    caplog.set_level(logging.INFO)
    twin.server.clear_log()
    host.advance(timedelta(minutes=2))  # 07:00: ramp-up wants half of every pool's hosts
    assert host.wait_idle(60)
    status = host.durable.status("autoscale-sweep")
    assert status is not None and status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"partitions": 3, "pools": 6, "failed": 0, "left_alone": 0, "actions": 12}
    assert [len(_events(caplog, n)) for n in ("autoscale.sweep_started", "autoscale.partition")] == [1, 3]
    for sub in SUBSCRIPTIONS:
        for p in range(POOLS):
            assert _running(twin, _pool(twin, sub, p)) == 2
    reads = [r.path.lower() for r in twin.server.log("GET")]
    for sub in SUBSCRIPTIONS:  # one session host listing per pool, one VM listing per VM resource group
        for p in range(POOLS):
            assert (
                reads.count(
                    f"/subscriptions/{sub}/resourcegroups/rg-avd/providers/microsoft.desktopvirtualization"
                    f"/hostpools/hp{p}/sessionhosts"
                )
                == 1
            )
            assert reads.count(f"/subscriptions/{sub}/resourcegroups/rg-hosts-{p}/providers/microsoft.compute/virtualmachines") == 1


def test_a_timer_that_finds_the_sweep_running_starts_no_second_one(sweep_estate: Any, caplog: Any) -> None:
    host, twin = sweep_estate
    caplog.set_level(logging.INFO)
    twin.server.hang_s = 3.0  # one pool's session host listing hangs: its partition is still at work
    twin.server.inject("timeout", pattern=r"GET .*/hostpools/hp0/sessionhosts$", limit=1)
    host.fire_timer("autoscale_timer")
    assert host.durable.status("autoscale-sweep")["runtimeStatus"] in ("Pending", "Running")
    host.fire_timer("autoscale_timer")
    assert len(_events(caplog, "autoscale.sweep_running")) == 1
    assert host.wait_idle(90)
    assert len(_events(caplog, "autoscale.sweep_started")) == 1
    assert len(_events(caplog, "autoscale.partition")) == 3
    assert host.durable.status("autoscale-sweep")["output"]["pools"] == 6
    host.fire_timer("autoscale_timer")  # done: the next timer sweeps again
    assert host.wait_idle(60)
    assert len(_events(caplog, "autoscale.sweep_started")) == 2


def test_a_small_estate_is_evaluated_in_the_timers_process(sweep_estate: Any, caplog: Any, monkeypatch: Any) -> None:
    host, _ = sweep_estate
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("TANDEM_AUTOSCALE_PARTITION_POOLS", "25")  # the default: six pools are one partition
    host.advance(timedelta(minutes=2))
    assert host.wait_idle(60)
    assert host.durable.status("autoscale-sweep") is None
    run = _events(caplog, "autoscale.run")
    assert len(run) == 1 and run[0]["pools"] == 6 and run[0]["actions"] == 12


LEFT = {
    f"{GENERATED_SUBSCRIPTION}/hp0": {"scaling_plan": "defer"},
    f"{GENERATED_SUBSCRIPTION}/hp1": {"scaling_plan": "take_over"},
    f"{OTHER}/hp0": {"autoscale_policy": "none"},
}


@pytest.mark.parametrize("sweep_estate", [(LEFT, "25")], indirect=True)
def test_pools_with_another_scaler_or_none_are_left_alone_but_warmed_by_a_failover(sweep_estate: Any) -> None:
    host, twin = sweep_estate
    for p in (0, 1):
        twin.estate.assign_scaling_plan(_pool(twin, GENERATED_SUBSCRIPTION, p), "sp-weekdays")
    twin.estate.assign_scaling_plan(_pool(twin, OTHER, 1), "sp-disabled", enabled=False)
    twin.server.clear_log()
    host.advance(timedelta(minutes=2))
    assert host.wait_idle(60)
    deferred, taken, none = (_pool(twin, GENERATED_SUBSCRIPTION, 0), _pool(twin, GENERATED_SUBSCRIPTION, 1), _pool(twin, OTHER, 0))
    assert _running(twin, deferred) == 0 and _running(twin, none) == 0  # no action on either
    assert _running(twin, taken) == 2 and _running(twin, _pool(twin, OTHER, 1)) == 2  # taken over; a disabled plan
    writes = [r.path.lower() for r in twin.server.log() if r.method != "GET" and r.path != "/msi/token"]
    assert not [w for w in writes if "/rg-hosts-0/" in w and (GENERATED_SUBSCRIPTION in w or OTHER in w)]
    memory = AutoscaleStore().load(f"{GENERATED_SUBSCRIPTION}/rg-avd/hp0")
    assert memory.last_eval is not None and memory.left == "scaling plan sp-weekdays is enabled on the pool"

    status, health = host.http("GET", "health", function="health")
    assert status == 200
    assert health["autoscale_left_alone"] == [
        {"pool": f"{GENERATED_SUBSCRIPTION}/rg-avd/hp0", "reason": "scaling plan sp-weekdays is enabled on the pool"},
        {"pool": f"{OTHER}/rg-avd/hp0", "reason": "autoscale_policy is none"},
    ]
    plans = [r for r in twin.server.log("GET") if r.path.lower().endswith("/scalingplans")]
    host.advance(timedelta(minutes=5))  # the next sweep remembers the plans for ten minutes: no second read
    assert host.wait_idle(60)
    assert [r for r in twin.server.log("GET") if r.path.lower().endswith("/scalingplans")] == plans and len(plans) == 6

    # a failover into the region warms every pool, `none` and the deferred one included
    warmed = host.invoke("failover_warm", request={"region": "east", "sessions": 40})
    assert warmed["started"] > 0
    host.advance(timedelta(minutes=2))
    assert _running(twin, none) > 0 and _running(twin, deferred) > 0
