"""Profiles follow the users: where each pool's FSLogix looks, checked before a failover and counted after it.

The whole estate runs (both timers on): the ARM twin's hosts carry their FSLogix settings and Tandem reads them
through Run Command; the Qumulo twins serve their SMB shares; every sign-in is resolved UNC -> cluster -> share ->
directory by the twins' FSLogix model, which records whether the user got their own container, a new one, or none.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.demo.estate import Estate, look_at_replica, running
from local.runtime import VirtualClock
from local.twins.qumulo.model import Profile
from tests.functional.test_failover import BUSY, CENTRAL_SUB, MORNING, call, run_to_end, sign_in

OPERATOR = ("Tandem.Failover.Operator",)
USERS = range(1, 21)
REPLICA = "/profiles-dr/fslogix"


@pytest.fixture
def misconfigured(storage: str, hub: str) -> Iterator[Estate]:
    """The demo estate as seeded: central's hosts look only in central's own share."""
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY, replica_first=False) as estate:
        yield estate


@pytest.fixture
def estate(storage: str, hub: str) -> Iterator[Estate]:
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY) as estate:
        yield estate


def central_pool(estate: Estate) -> Any:
    return estate.arm.estate.pool(CENTRAL_SUB, "rg-avd-central", "hp-central-pooled")


def world(estate: Estate) -> dict[str, Any]:
    """Everything a failover could change: assignments, drain flags, power, read-only flags, relationships."""
    arm = estate.arm.estate
    return {
        "assignments": sorted((a.scope, a.principal_id) for a in arm.assignments.values()),
        "drain": sorted((h.name, h.allow_new_session) for p in arm.pools.values() for h in p.hosts.values()),
        "power": sorted((v.name, v.target) for v in arm.vms.values()),
        "read_only": sorted(
            (c.cluster.name, d.path, d.read_only) for c in estate.anq.values() for d in c.cluster.directories.values()
        ),
        "relationships": sorted((r.id, r.state) for c in estate.anq.values() for r in c.cluster.relationships.values()),
    }


def test_the_seeded_estate_is_refused_by_the_drill_and_a_planned_failover_naming_pool_host_and_path(misconfigured: Estate) -> None:
    estate = misconfigured
    sign_in(estate, USERS)
    before = world(estate)
    for mode in ("drill", "planned"):
        status, started = call(
            estate,
            "POST",
            "failover",
            {"source": "east", "target": "central", "mode": mode, "reason": "quarterly test"},
            roles=OPERATOR,
        )
        assert status == 202, started
        final = run_to_end(estate, started["instance"])
        out = final["output"]
        assert out["outcome"] == "aborted", out
        problem = next(p for p in out["problems"] if "hp-central-pooled" in p)
        assert "avd-central-001" in problem  # the host read (central's one running host)
        assert r"\\anq-central.contoso.local\profiles" in problem  # where it looks
        assert r"\\anq-central.contoso.local\profiles-dr" in problem and REPLICA in problem  # what is missing
        paths = out["profile_paths"]
        assert [(p["pool"], p["source"], p["locations"]) for p in paths] == [
            ("hp-central-pooled", "read", [r"\\anq-central.contoso.local\profiles"])
        ]
        steps = {s["step"]: s for s in final["customStatus"]["steps"]}
        assert steps["profile paths"]["status"] == "failed" and "hp-central-pooled" in steps["profile paths"]["detail"]
        estate.host.advance(timedelta(minutes=1))
    estate.host.wait_idle()
    after = world(estate)
    assert after["assignments"] == before["assignments"] and after["read_only"] == before["read_only"]
    assert after["relationships"] == before["relationships"]
    assert [d for d in after["drain"] if not d[1]] == []  # nothing drained
    # the reading is cached and shown to the administrator
    code, health = estate.host.http("GET", "health", function="health")
    shown = {p["pool"]: p for p in health["profile_paths"]}
    assert code == 200 and shown["hp-central-pooled"]["host"].startswith("avd-central-001")
    assert shown["hp-central-pooled"]["locations"] == [r"\\anq-central.contoso.local\profiles"]
    ran = [c for c in estate.arm.estate.commands if c[1] == "RunPowerShellScript"]
    assert ran and all(not any("Set-" in line or "New-" in line or "Remove-" in line for line in c[2]) for c in ran)


def test_after_the_fix_every_moved_user_attaches_their_own_container_with_their_last_write(misconfigured: Estate) -> None:
    estate = misconfigured
    east = estate.anq["east"].cluster
    look_at_replica(estate.arm)  # what the drill asked for
    sign_in(estate, USERS)
    for i in USERS:
        east.write_profile("/profiles/fslogix", f"user{i:03d}@contoso.com")
    status, started = call(
        estate, "POST", "failover", {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"}, roles=OPERATOR
    )
    assert status == 202
    moved = run_to_end(estate, started["instance"], until=lambda s: (s.get("customStatus") or {}).get("state") == "verify")
    last = {u: p.version for u, p in east.directory("/profiles/fslogix").profiles.items()}
    since = estate.host.clock.now()
    for i in USERS:  # the moved users come back
        assert estate.arm.estate.logon(central_pool(estate), f"user{i:03d}@contoso.com").outcome == "connected"
    final = run_to_end(estate, started["instance"])
    assert moved["runtimeStatus"] == "Running" and final["output"]["outcome"] == "completed", final
    signed = [s for s in estate.fslogix.sign_ins if s.at >= since]
    assert len(signed) == 20 and {s.outcome for s in signed} == {"own"}
    assert all(s.cluster == "anq-central" and s.path == REPLICA for s in signed)
    assert all(s.version == last[s.upn] for s in signed)  # their last pre-failover write, not a reset
    verify = next(s for s in final["customStatus"]["steps"] if s["step"] == "verify")
    sampled = final["output"]["sessions"]  # the sample is the users who were at work in east (its seats held 16)
    assert sampled >= 10 and verify["profiles"] == {"own_profile": sampled, "new_profile": 0, "failed_signin": 0}
    done = [e for e in estate.host.received if e["type"] == "Tandem.Failover.Completed"][-1]
    assert (done["data"]["own_profile"], done["data"]["new_profile"], done["data"]["failed_signin"]) == (sampled, 0, 0)


def test_an_unplanned_failover_gives_each_user_exactly_the_writes_up_to_the_recovery_point(estate: Estate) -> None:
    east_twin, central = estate.anq["east"], estate.anq["central"].cluster
    sign_in(estate, range(1, 11))
    east_twin.cluster.settle()
    estate.host.advance(timedelta(minutes=5))
    east_twin.cluster.settle()
    for i in range(1, 4):  # after the last job: lost with the region
        east_twin.cluster.write_profile("/profiles/fslogix", f"user{i:03d}@contoso.com")
    east_twin.server.hang_s = 1
    east_twin.outage()
    status, started = call(
        estate,
        "POST",
        "failover",
        {"source": "east", "target": "central", "mode": "unplanned", "reason": "east is down"},
        roles=OPERATOR,
    )
    assert status == 202
    run_to_end(estate, started["instance"], until=lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval")
    approval = [s for s in estate.host.durable.status(started["instance"])["customStatus"]["steps"] if s["step"] == "approval"]
    assert "PROFILE PATHS" not in approval[-1]["detail"]  # the fixed estate has nothing to warn about
    ok, _ = call(
        estate,
        "POST",
        f"failover/{started['instance']}/approve",
        {},
        roles=("Tandem.Failover.Approver",),
        function="failover_decide",
        name="ben@contoso.com",
    )
    assert ok == 202
    run_to_end(estate, started["instance"], until=lambda s: (s.get("customStatus") or {}).get("state") == "verify")
    recovered = {u: p.version for u, p in central.directory(REPLICA).profiles.items()}
    since = estate.host.clock.now()
    for i in range(1, 11):
        estate.arm.estate.logon(central_pool(estate), f"user{i:03d}@contoso.com")
    signed = {s.upn: s for s in estate.fslogix.sign_ins if s.at >= since}
    assert {s.outcome for s in signed.values()} == {"own"}
    assert {u: s.version for u, s in signed.items()} == {u: recovered[u] for u in signed}
    source = east_twin.cluster.directory("/profiles/fslogix").profiles
    behind = {u for u, s in signed.items() if (s.version or 0) < source[u].version}
    assert behind == {f"user{i:03d}@contoso.com" for i in range(1, 4)}  # exactly the writes after the recovery point


def test_an_unplanned_failover_into_a_misconfigured_pool_is_shown_to_the_approver_and_never_auto_approved(
    storage: str, hub: str
) -> None:
    with running(
        storage,
        VirtualClock(MORNING),
        hub=hub,
        settings=BUSY,
        replica_first=False,
        failover={"auto_approve_unplanned": True, "max_rpo": "1d"},
    ) as estate:
        sign_in(estate, range(1, 6))
        estate.anq["east"].server.hang_s = 1
        estate.anq["east"].outage()
        status, started = call(
            estate,
            "POST",
            "failover",
            {"source": "east", "target": "central", "mode": "unplanned", "reason": "east is down"},
            roles=OPERATOR,
        )
        assert status == 202
        waiting = run_to_end(
            estate,
            started["instance"],
            limit=timedelta(minutes=20),
            until=lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval",
        )
        approval = [s for s in waiting["customStatus"]["steps"] if s["step"] == "approval"][-1]
        assert "PROFILE PATHS" in approval["detail"] and "hp-central-pooled" in approval["detail"]
        assert estate.anq["central"].cluster.directory(REPLICA).read_only  # nothing made writable without a person
        central_group = estate.arm.estate.app_group(CENTRAL_SUB, "rg-avd-central", "dag-central-desktop")
        assert estate.arm.estate.assignments_at(central_group.id) == []


def test_a_container_on_a_read_only_replica_fails_sign_in_and_assignments_move_only_once_it_is_writable(estate: Estate) -> None:
    central = estate.anq["central"].cluster
    pool = central_pool(estate)
    assert central.directory(REPLICA).read_only
    # a user assigned to central too early (by hand) while the replica is still read-only
    estate.arm.estate.add_user("early@contoso.com", {"early-oid"})
    group = estate.arm.estate.app_group(CENTRAL_SUB, "rg-avd-central", "dag-central-desktop")
    estate.arm.estate.create_assignment(
        group.id,
        "early",
        f"/subscriptions/{CENTRAL_SUB}/providers/Microsoft.Authorization/roleDefinitions/1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63",
        "early-oid",
        "User",
    )
    central.directory(REPLICA).profiles["early@contoso.com"] = Profile(3, MORNING)  # their replicated container
    assert estate.arm.estate.logon(pool, "early@contoso.com").outcome == "connected"
    failed = estate.fslogix.sign_ins[-1]
    assert (failed.outcome, failed.path) == ("failed", REPLICA) and "read-only" in failed.detail
    assert not [h for h in central.handles.values() if h.user == "early@contoso.com"]  # no container open
    estate.arm.estate.delete_assignment(group.id, "early")
    # a planned failover: at every moment the central app group has the moved users, the replica is writable
    sign_in(estate, USERS)
    status, started = call(
        estate, "POST", "failover", {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"}, roles=OPERATOR
    )
    assert status == 202
    seen_assigned = 0
    while True:
        estate.host.wait_idle()
        moved = [a for a in estate.arm.estate.assignments_at(group.id) if a.principal_id != "early-oid"]
        if moved:
            seen_assigned += 1
            assert not central.directory(REPLICA).read_only
        state = estate.host.durable.status(started["instance"])
        if state and state["runtimeStatus"] in ("Completed", "Failed"):
            break
        estate.host.advance(timedelta(seconds=15))
    assert seen_assigned and state["output"]["outcome"] == "completed"


def test_a_drill_reads_one_running_host_per_pool_with_the_fixed_read_only_script(estate: Estate) -> None:
    from shared.failover.fslogix import SCRIPT

    status, started = call(
        estate, "POST", "failover", {"source": "east", "target": "central", "mode": "drill", "reason": "test"}, roles=OPERATOR
    )
    assert status == 202
    final = run_to_end(estate, started["instance"])
    assert final["output"]["outcome"] == "drill", final
    [paths] = final["output"]["profile_paths"]
    assert paths["locations"][0] == r"\\anq-central.contoso.local\profiles-dr" and paths["problems"] == []
    now = estate.host.clock.now()
    running = {
        h.vm.name
        for p in estate.arm.estate.pools.values()
        for h in p.hosts.values()
        if h.vm is not None and h.vm.power(now) == "running"
    }
    ran = [(vm, command, script) for vm, command, script in estate.arm.estate.commands]
    # the target (checked) and the source (cached for a failback): one running host each, nothing else, no other script
    assert len(ran) == 2 and {vm.rsplit("-", 1)[0] for vm, _, _ in ran} == {"avd-east", "avd-central"}
    assert all(vm in running and command == "RunPowerShellScript" and script == list(SCRIPT) for vm, command, script in ran)
