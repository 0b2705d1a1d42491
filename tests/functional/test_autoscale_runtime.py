"""Autoscale end to end: the real function app on the local runtime, the ARM twin, Azurite, a virtual day.

The storm arrives; the logon-rate alert starts every host needed at once (in parallel); users land; in the
evening the timer drains and stops what is no longer needed and leaves no host drained; every action is in
the ledger; health and failover events act at once; malformed or unknown events change nothing.
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
from local.twins.arm.seed import GENERATED_SUBSCRIPTION, pool_seed
from shared.autoscale.store import AutoscaleStore
from shared.settings import schedule_defaults
from tests.conftest import load_event

START = datetime(2026, 11, 30, 6, 55, tzinfo=UTC)  # a Monday
POOL_ID = f"/subscriptions/{GENERATED_SUBSCRIPTION}/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization/hostPools/hp0"


def _topology(tmp_path: Path, **policy: Any) -> Path:
    doc = {
        "version": 1,
        "regions": [
            {
                "name": "east",
                "location": "eastus2",
                "subscription_id": GENERATED_SUBSCRIPTION,
                "host_pools": [
                    {"name": "hp0", "resource_group": "rg-avd", "vm_resource_groups": ["rg-hosts"], "autoscale_policy": "storm"}
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
                    **policy,
                    "phases": [
                        {"phase": "ramp_up", "start": "07:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 20},
                        {"phase": "peak", "start": "09:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 20},
                        {"phase": "ramp_down", "start": "17:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 10},
                        {"phase": "off_peak", "start": "20:00", "capacity_threshold_pct": 90, "minimum_hosts_pct": 10},
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
def estate(arm: Any, storage: str, hub: str, tmp_path: Path, request: Any) -> Iterator[tuple[LocalHost, Any]]:
    """The function app on the runtime with one 10-host pool on the ARM twin, sharing one virtual clock."""
    clock = VirtualClock(START)
    twin = arm(pool_seed(10, running=2, users=60, max_sessions=5, agent_ready="90s"), clock=clock)
    policy = getattr(request, "param", {})
    settings = schedule_defaults(
        {
            **twin.identity_settings,
            "TANDEM_TOPOLOGY_PATH": str(_topology(tmp_path, **policy)),
            "AUTOSCALE_SCHEDULE": "0 */5 * * * *",
            "SNAPSHOT_SCHEDULE": "0 0 0 1 1 *",
        }
    )
    services.reset()
    host = LocalHost("function_app", storage=storage, hub=hub, clock=clock, settings=settings, identity=twin.identity)
    with host:
        yield host, twin
    services.reset()


def _writes(twin: Any) -> list[Any]:
    return [r for r in twin.server.log() if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.path != "/msi/token"]


def _storm(twin: Any, users: range) -> list[str]:
    pool = twin.estate.pool(GENERATED_SUBSCRIPTION, "rg-avd", "hp0")
    return [twin.estate.logon(pool, f"user{i:03d}@contoso.com").outcome for i in users]


def test_a_storm_is_met_at_once_and_drained_safely_afterwards(estate: Any) -> None:
    host, twin = estate
    host.advance(timedelta(minutes=10))  # 07:05: ramp-up, two hosts meet the 20% minimum
    assert _writes(twin) == []
    first = _storm(twin, range(1, 31))
    assert first.count("connected") == 10 and first.count("no_capacity") == 20
    alert = load_event("monitor_commonalert_log_logonrate.json")
    alert["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][0]["value"] = POOL_ID
    alert["data"]["alertContext"]["condition"]["allOf"][0]["metricValue"] = 30
    twin.server.clear_log()
    twin.server.latency_s = 0.05  # starts must go out in parallel, not one by one
    status, answer = host.http("POST", "alerts", body=alert, function="alerts_webhook")  # the action group's call
    twin.server.latency_s = 0.0
    assert status == 202 and answer["outcome"].startswith("autoscale"), answer
    starts = [r for r in _writes(twin) if r.path.endswith("/start")]
    assert len(starts) == 8  # 10 sessions + 6/min over the 10-minute lead: every remaining host, at once
    started = [e for e in host.received if e["type"] == "Tandem.Autoscale.HostStarted"]
    assert len(started) == 8 and started[0]["data"]["reason"].startswith("surge")  # one CloudEvent per action
    assert twin.server.max_in_flight >= 4
    host.advance(timedelta(minutes=5))  # booted and registered
    retry = _storm(twin, range(11, 31))
    assert retry.count("connected") == 20

    # the evening: everyone signs out but two users; ramp-down stops empty hosts and leaves none drained
    pool = twin.estate.pool(GENERATED_SUBSCRIPTION, "rg-avd", "hp0")
    for i in range(1, 29):
        twin.estate.logoff_user(pool, f"user{i:03d}@contoso.com")
    host.run_until(datetime(2026, 11, 30, 17, 31, tzinfo=UTC))
    now = host.clock.now()
    running = [h for h in pool.hosts.values() if h.vm.power(now) in ("running", "starting")]
    with_sessions = {h.name for h in pool.hosts.values() if h.sessions}
    assert with_sessions <= {h.name for h in running}  # no host with a user was stopped
    assert len(running) <= 2 and all(h.allow_new_session for h in pool.hosts.values() if not h.sessions)
    for i in (29, 30):  # the last two leave; a host drained to consolidate them is stopped and undrained
        twin.estate.logoff_user(pool, f"user{i:03d}@contoso.com")
    host.run_until(datetime(2026, 11, 30, 18, 1, tzinfo=UTC))
    now = host.clock.now()
    running = [h for h in pool.hosts.values() if h.vm.power(now) in ("running", "starting")]
    assert len(running) == 1 and all(h.allow_new_session for h in pool.hosts.values())  # 10% minimum; none drained
    ledger = AutoscaleStore().ledger_rows(f"{GENERATED_SUBSCRIPTION}/rg-avd/hp0")
    assert [r["action"] for r in ledger].count("start") == 8
    stopped = [r for r in ledger if r["action"] == "deallocate" and r["result"] == "done"]
    assert len(stopped) == 10 - len(running) and all(r["reason"] for r in ledger)
    deallocs = [r for r in twin.server.log("POST") if r.path.endswith("/deallocate")]
    assert len(deallocs) == len(stopped)  # every stop in the twin is in the ledger


def test_lost_capacity_and_an_announced_failover_are_acted_on_at_once(estate: Any) -> None:
    host, twin = estate
    host.advance(timedelta(minutes=10))
    pool = twin.estate.pool(GENERATED_SUBSCRIPTION, "rg-avd", "hp0")
    _storm(twin, range(1, 10))  # 9 sessions on 2 hosts: both needed
    for h in pool.hosts.values():  # they signed in a while ago: no surge in the observed rate
        for session in h.sessions.values():
            session.created -= timedelta(minutes=30)
    host.advance(timedelta(minutes=5))
    broken = next(h for h in pool.hosts.values() if h.sessions)
    broken.agent_ready_at = None  # the agent stops reporting: the host is Unavailable
    event = load_event("eg_HealthResources_AvailabilityStatusChanged_eventgridschema.json")
    event["data"]["resourceInfo"]["properties"].update(targetResourceId=broken.vm.id, availabilityState="Unavailable")
    twin.server.clear_log()
    host.deliver_event("autoscale_events", event)
    assert len([r for r in _writes(twin) if r.path.endswith("/start")]) == 1  # the lost capacity is replaced

    twin.server.clear_log()
    host.deliver_event(
        "autoscale_events",
        {
            "id": "f1",
            "type": "Tandem.Failover.Started",
            "source": "/tandem",
            "specversion": "1.0",
            "subject": "east",
            "time": host.clock.now().isoformat(),
            "data": {"source": "central", "target": "east", "sessions": 30},
        },
    )
    # 9 + 30 sessions at 4.5 a host need 9 hosts: all but the broken one; one serves and one boots already
    assert len([r for r in _writes(twin) if r.path.endswith("/start")]) == 7


def test_malformed_and_unknown_events_are_rejected_with_a_log_line_and_no_action(estate: Any, caplog: Any) -> None:
    host, twin = estate
    caplog.set_level(logging.INFO, logger="tandem.autoscale")
    twin.server.clear_log()
    host.deliver_event(
        "autoscale_events",
        {
            "id": "x1",
            "eventType": "Microsoft.Storage.BlobCreated",
            "subject": "s",
            "eventTime": START.isoformat(),
            "dataVersion": "1",
            "data": {},
        },
    )
    host.deliver_event(
        "autoscale_events",
        {"id": "x2", "type": "Tandem.Failover.Started", "source": "/t", "specversion": "1.0", "data": {"target": "east"}},
    )
    alert = load_event("monitor_commonalert_log_logonrate.json")  # an alert does not come by Event Grid
    host.deliver_event(
        "autoscale_events",
        {
            "id": "x3",
            "eventType": "Microsoft.AlertsManagement.Alert.Activated",
            "subject": "s",
            "eventTime": START.isoformat(),
            "dataVersion": "1",
            "data": alert,
        },
    )
    rejected = [json.loads(r.message) for r in caplog.records if "autoscale.event_rejected" in r.message]
    assert [r["id"] for r in rejected] == ["x1", "x2", "x3"]
    status, answer = host.http("POST", "alerts", body=alert, function="alerts_webhook")  # a pool Tandem does not manage
    assert status == 200 and answer["status"] == "ignored" and "not a host pool of the topology" in answer["reason"]
    assert _writes(twin) == [] and not host.dead_letters


@pytest.mark.parametrize("estate", [{"dry_run": True}], indirect=True)
def test_what_if_answers_without_acting_and_dry_run_changes_nothing(estate: Any) -> None:
    host, twin = estate
    host.advance(timedelta(minutes=10))
    _storm(twin, range(1, 11))  # both running hosts full

    def whatif(query: str) -> tuple[int, dict[str, Any]]:
        return host.http("GET", f"autoscale/whatif?{query}", function="autoscale_whatif")

    twin.server.clear_log()
    status, body = whatif("pool=hp0&policy=native")
    assert status == 200 and body["pool"] == "hp0" and body["policy"] == "native"
    assert body["target_hosts"] == 3 and [a["action"] for a in body["actions"]] == ["start"]
    assert whatif("policy=native")[0] == 400
    assert whatif("pool=hp0&policy=magic")[1]["title"] == "Unknown policy"
    assert whatif("pool=nope")[0] == 404
    host.advance(timedelta(minutes=5))  # the timer runs, but the policy is dry_run
    assert _writes(twin) == []
