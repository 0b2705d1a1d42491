"""Failover end to end: the real function app on the local runtime, the ARM twin and both ANQ twins, one clock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.demo.estate import Estate, running
from local.runtime import VirtualClock
from local.twins.arm.model import DESKTOP_VIRTUALIZATION_USER

MORNING = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 in New York
EAST_SUB, CENTRAL_SUB = "00000000-0000-4000-8000-0000000000e1", "00000000-0000-4000-8000-0000000000c1"
# the worst day: the autoscale timer every minute and the snapshot timer every 15 minutes, through every failover test
BUSY = {"AUTOSCALE_SCHEDULE": "0 */1 * * * *", "SNAPSHOT_SCHEDULE": "0 */15 * * * *"}
# Where nobody signs in to the target after the move (most tests), verify waits its window for first sign-ins; two
# minutes instead of the default ten keeps the suite short. tests/functional/test_fslogix.py runs the defaults.
QUICK = {"signin_window": "2m"}


@pytest.fixture
def estate(storage: str, hub: str) -> Iterator[Estate]:
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY, failover=QUICK) as running_estate:
        yield running_estate


def call(
    estate: Estate,
    method: str,
    path: str,
    body: Any = None,
    roles: tuple[str, ...] = (),
    function: str = "failover_start",
    name: str = "ana@contoso.com",
) -> tuple[int, dict[str, Any]]:
    """An HTTP call as `name` (ana, the operator, unless told: an approver is someone else)."""
    return estate.host.http(method, path, body=body, function=function, roles=roles, name=name)


def sign_in(estate: Estate, users: range) -> None:
    """East's users sign in and write their profiles once (their containers exist on east's ANQ)."""
    pool = estate.arm.estate.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
    for i in users:
        estate.arm.estate.logon(pool, f"user{i:03d}@contoso.com")


def run_to_end(estate: Estate, instance: str, limit: timedelta = timedelta(hours=1), until: Any = None) -> dict[str, Any]:
    """Advance the clock until the instance finishes (or `until(status)` holds)."""
    host = estate.host
    end = host.clock.now() + limit
    while host.clock.now() < end:
        host.wait_idle()
        status = host.durable.status(instance)
        if status and (status["runtimeStatus"] in ("Completed", "Failed", "Terminated") or (until and until(status))):
            return status
        host.advance(timedelta(seconds=15))
    raise AssertionError(f"{instance} did not finish: {host.durable.status(instance)}")


def test_a_planned_failover_moves_everyone_with_no_profile_data_lost(estate: Estate) -> None:
    east, central = estate.anq["east"].cluster, estate.anq["central"].cluster
    sign_in(estate, range(1, 21))
    pool = estate.arm.estate.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
    for i in range(1, 21):  # a morning's work: every container written again just before the failover
        east.write_profile("/profiles/fslogix", f"user{i:03d}@contoso.com")
    status, started = call(
        estate,
        "POST",
        "failover",
        {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"},
        roles=("Tandem.Failover.Operator",),
    )
    assert status == 202 and started["instance"] == "failover-central-east"
    final = run_to_end(estate, "failover-central-east")
    assert final["runtimeStatus"] == "Completed", final
    assert final["output"]["outcome"] == "completed"
    source = east.directory("/profiles/fslogix").profiles
    target = central.directory("/profiles-dr/fslogix").profiles
    assert {u: p.version for u, p in target.items()} == {u: p.version for u, p in source.items()}  # nothing lost
    assert not central.directory("/profiles-dr/fslogix").read_only and east.directory("/profiles/fslogix").read_only
    assert all(not h.sessions for h in pool.hosts.values())  # everyone was signed out of east
    central_group = estate.arm.estate.app_group(CENTRAL_SUB, "rg-avd-central", "dag-central-desktop")
    east_group = estate.arm.estate.app_group(EAST_SUB, "rg-avd-east", "dag-east-desktop")
    assert [a.principal_id for a in estate.arm.estate.assignments_at(central_group.id)] == ["6a3f1c2e-0b7d-4e58-9c41-5d2a7e9b1f00"]
    assert estate.arm.estate.assignments_at(east_group.id) == []
    central_pool = estate.arm.estate.pool(CENTRAL_SUB, "rg-avd-central", "hp-central-pooled")
    landed = [estate.arm.estate.logon(central_pool, f"user{i:03d}@contoso.com").outcome for i in range(1, 21)]
    assert landed.count("connected") == 20  # the moved users can work in central at once
    steps = [s["step"] for s in final["customStatus"]["steps"]]
    assert steps.index("fence source") < steps.index("replication caught up") < steps.index("make writable")
    assert [e["type"] for e in estate.host.received if e["type"].startswith("Tandem.Failover.")][-1] == "Tandem.Failover.Completed"
    assert DESKTOP_VIRTUALIZATION_USER in estate.arm.estate.assignments_at(central_group.id)[0].role_definition_id


def test_unplanned_failover_with_approval_then_fencing_and_failback(estate: Estate) -> None:
    east_twin, central = estate.anq["east"], estate.anq["central"].cluster
    sign_in(estate, range(1, 11))
    east_twin.cluster.settle()  # continuous replication runs: a job starts ...
    estate.host.advance(timedelta(minutes=5))
    east_twin.cluster.settle()  # ... and finishes: the recovery point is 5 minutes old
    for i in range(1, 4):  # three containers written after that job started: what the region's loss costs
        east_twin.cluster.write_profile("/profiles/fslogix", f"user{i:03d}@contoso.com")
    east_twin.server.hang_s = 1
    east_twin.outage()
    status, _ = call(
        estate,
        "POST",
        "failover",
        {"source": "east", "target": "central", "mode": "unplanned", "reason": "east is down"},
        roles=("Tandem.Failover.Operator",),
    )
    assert status == 202
    estate.host.advance(timedelta(minutes=5))
    estate.host.wait_idle()
    waiting = estate.host.durable.status("failover-central-east")
    assert waiting["customStatus"]["state"] == "awaiting approval"
    assert central.directory("/profiles-dr/fslogix").read_only  # never writable without approval
    denied, body = call(
        estate, "POST", "failover/failover-central-east/approve", {}, roles=("Tandem.Failover.Operator",), function="failover_decide"
    )
    assert denied == 403 and body["title"] == "Missing role"
    ok, _ = call(
        estate,
        "POST",
        "failover/failover-central-east/approve",
        {},
        roles=("Tandem.Failover.Approver",),
        function="failover_decide",
        name="ben@contoso.com",
    )
    assert ok == 202
    watching = run_to_end(estate, "failover-central-east", until=lambda s: s["customStatus"]["state"] == "fence returning region")
    assert watching["runtimeStatus"] == "Running"  # users are in central; the failed region is watched
    assert not central.directory("/profiles-dr/fslogix").read_only
    source = east_twin.cluster.directory("/profiles/fslogix").profiles
    target = central.directory("/profiles-dr/fslogix").profiles
    lost = {u for u, p in source.items() if target.get(u) is None or target[u].version < p.version}
    assert lost == {f"user{i:03d}@contoso.com" for i in range(1, 4)}  # exactly the writes after the recovery point
    completed = next(s for s in watching["customStatus"]["steps"] if s["step"] == "completed")
    assert completed["status"] == "done"

    # east comes back: it is fenced (read-only, hosts drained) and autoscale keeps it so
    east_twin.outage(False)
    fenced = run_to_end(estate, "failover-central-east", limit=timedelta(minutes=30))
    assert fenced["runtimeStatus"] == "Completed", fenced
    assert east_twin.cluster.directory("/profiles/fslogix").read_only
    east_pool = estate.arm.estate.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
    estate.host.fire_timer("autoscale_timer")
    assert not any(h.allow_new_session for h in east_pool.hosts.values())
    central.write_profile("/profiles-dr/fslogix", "user005@contoso.com")  # work done in central meanwhile
    central_pool = estate.arm.estate.pool(CENTRAL_SUB, "rg-avd-central", "hp-central-pooled")
    for i in range(1, 11):  # the moved users work in central: the failback must seat them in east
        for _ in range(20):
            if estate.arm.estate.logon(central_pool, f"user{i:03d}@contoso.com").outcome in ("connected", "reconnected"):
                break
            estate.host.advance(timedelta(minutes=1))

    # failback: re-protect east, move everyone back, restore the original direction
    for vm in [h.vm for h in east_pool.hosts.values() if h.vm]:  # the outage took east's VMs down with it
        estate.arm.estate.deallocate_vm(vm)
    estate.host.advance(timedelta(minutes=2))
    mark = len(estate.arm.server.log())
    status, _ = call(
        estate,
        "POST",
        "failover",
        {"source": "central", "target": "east", "mode": "failback", "reason": "east is healthy"},
        roles=("Tandem.Failover.Operator",),
    )
    assert status == 202
    back = run_to_end(estate, "failover-central-east", limit=timedelta(hours=2))
    assert back["output"]["outcome"] == "completed", back["customStatus"]
    during = [f"{r.method} {r.path}" for r in estate.arm.server.log()[mark:] if 0 < r.status < 400]
    east_starts = [i for i, w in enumerate(during) if w.startswith("POST ") and "/rg-avd-east-hosts/" in w and w.endswith("/start")]
    grant = next(i for i, w in enumerate(during) if w.startswith("PUT ") and "/dag-east-desktop/" in w)
    assert east_starts and east_starts[0] < grant, (east_starts, grant)  # east warms before anyone moves back
    east_dir, standby = east_twin.cluster.directory("/profiles/fslogix"), central.directory("/profiles-dr/fslogix")
    assert not east_dir.read_only and standby.read_only  # the original direction
    assert (
        east_dir.profiles["user005@contoso.com"].version
        == central.directory("/profiles-dr/fslogix").profiles["user005@contoso.com"].version
    )  # central's work came home
    estate.host.fire_timer("autoscale_timer")
    assert any(h.allow_new_session for h in east_pool.hosts.values())  # the fence is lifted

    # The pair's instance id served both runs; the audit trail keeps each run's every step, as its status showed them
    from shared.state.tables import table

    rows = list(table("failoveraudit").query_entities("PartitionKey eq 'failover-central-east'"))
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["RowKey"]):
        runs.setdefault(row["run"], []).append(row)
    assert [(r[0]["mode"], r[0]["requested_by"]) for r in runs.values()] == [
        ("unplanned", "ana@contoso.com"),
        ("failback", "ana@contoso.com"),
    ]
    for audited, final in zip(runs.values(), (fenced, back), strict=True):
        assert [(r["step"], r["status"], r["started"]) for r in audited] == [
            (s["step"], s["status"], s["started"]) for s in final["customStatus"]["steps"]
        ]
    approval = [r for r in next(iter(runs.values())) if r["step"] == "approval"]
    assert [r["status"] for r in approval] == ["waiting", "approved"]


def test_bad_requests_are_refused_and_concurrent_starts_yield_one_instance(estate: Estate) -> None:
    operator = ("Tandem.Failover.Operator",)
    assert call(estate, "POST", "failover", {"source": "east"}, roles=operator)[0] == 400
    assert (
        call(estate, "POST", "failover", {"source": "east", "target": "mars", "mode": "planned", "reason": "x"}, roles=operator)[1][
            "title"
        ]
        == "Unknown region pair"
    )
    assert call(
        estate, "POST", "failover", {"source": "east", "target": "central", "mode": "sideways", "reason": "x"}, roles=operator
    )[1]["detail"].startswith("body: mode:")
    assert (
        call(estate, "POST", "failover", {"source": "east", "target": "central", "mode": "drill", "reason": "x"})[0] == 401
    )  # not signed in
    assert (
        call(
            estate,
            "POST",
            "failover",
            {"source": "east", "target": "central", "mode": "drill", "reason": "x"},
            roles=("Tandem.Failover.Approver",),
        )[0]
        == 403
    )
    body = {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: call(estate, "POST", "failover", body, roles=operator), range(10)))
    assert {a[1]["instance"] for a in answers} == {"failover-central-east"} and sorted(a[0] for a in answers) == [200] * 9 + [202]
    estate.host.wait_idle()
    assert [e["type"] for e in estate.host.received].count("Tandem.Failover.Preflight") == 1  # one instance ran
    pool_ = estate.arm.estate.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
    assert not any(h.allow_new_session for h in pool_.hosts.values())  # draining, in the drain wait
    cancelled, _ = call(estate, "POST", "failover/failover-central-east/cancel", {}, roles=operator, function="failover_decide")
    assert cancelled == 202
    final = run_to_end(estate, "failover-central-east")
    assert final["output"]["outcome"] == "cancelled"
    assert all(h.allow_new_session for h in pool_.hosts.values())  # rolled back: nobody is locked out of east
    assert estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only


def test_a_drill_rehearses_every_step_and_changes_nothing(estate: Estate) -> None:
    body = {"source": "east", "target": "central", "mode": "drill", "reason": "quarterly drill"}
    assert call(estate, "POST", "failover", body, roles=("Tandem.Failover.Operator",))[0] == 202
    final = run_to_end(estate, "failover-central-east")
    assert final["output"]["outcome"] == "drill" and final["output"]["expected_rto_s"] > 0
    steps = final["customStatus"]["steps"]
    assert {s["status"] for s in steps[1:-1] if s["step"] != "profile paths"} == {"rehearsed"}
    assert next(s for s in steps if s["step"] == "profile paths")["status"] == "done"
    writes = [r for r in estate.arm.server.log() if r.method in ("POST", "PATCH", "PUT", "DELETE")]
    # the one POST a drill sends is Run Command with the read-only FSLogix settings script, once per pool
    assert {r.path.rsplit("/", 1)[-1] for r in writes} == {"runCommand"} and len(writes) == 2
    assert [
        r
        for r in estate.anq["central"].server.log()
        if r.method != "GET" and r.path != "/v1/session/login" and not r.path.startswith("/v3/snapshots")
    ] == []  # the snapshot schedule's own work aside, nothing written
    assert not [r for c in ("east", "central") for r in estate.anq[c].cluster.created if "failover" in r.suffix]


def _writes(twin: Any) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in twin.server.log()
        if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.status < 400 and r.path not in ("/msi/token", "/v1/session/login")
    ]


def test_restarting_the_runtime_at_every_step_boundary_still_does_each_side_effect_once(estate: Estate) -> None:
    sign_in(estate, range(1, 11))
    estate.host.durable.hold_activities = True  # every scheduled step waits: the worker dies before running it
    assert (
        call(
            estate,
            "POST",
            "failover",
            {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"},
            roles=("Tandem.Failover.Operator",),
        )[0]
        == 202
    )
    restarts = 0
    end = estate.host.clock.now() + timedelta(hours=1)
    while estate.host.clock.now() < end:
        estate.host.wait_idle()
        if estate.host.durable.status("failover-central-east")["runtimeStatus"] == "Completed":
            break
        if estate.host.durable.parked:  # a step boundary: the next step is scheduled and has not run
            estate.restart()  # a new worker recovers the instance from the task hub and schedules it again
            estate.host.durable.hold_activities = True
            estate.host.wait_idle()
            restarts += 1
            estate.host.durable.release_parked()
            continue
        estate.host.advance(timedelta(seconds=15))  # resting on a durable timer
    final = estate.host.durable.status("failover-central-east")
    assert final["runtimeStatus"] == "Completed"
    assert restarts >= len(final["customStatus"]["steps"])  # at least one restart before every step
    qumulo = _writes(estate.anq["east"]) + _writes(estate.anq["central"])
    assert sorted(w for w in qumulo if "/v3/snapshots" not in w) == sorted(
        [
            "PATCH /v2/replication/source-relationships/5c1e0d7a-east-central",  # fence
            "POST /v2/replication/source-relationships/5c1e0d7a-east-central/replicate",
            "POST /v2/replication/target-relationships/5c1e0d7a-east-central/make-writable",
        ]
    )
    labelled = [r.suffix for c in ("east", "central") for r in estate.anq[c].cluster.created if "failover" in r.suffix]
    assert len(labelled) == 1  # the one pre-writable snapshot (the schedule's own ones run alongside)
    assignments = [w.split()[0] for w in _writes(estate.arm) if "roleassignments" in w.lower()]
    assert (assignments.count("PUT"), assignments.count("DELETE")) == (1, 1)
    starts = [w for w in _writes(estate.arm) if w.endswith("/start")]
    assert len(starts) == len(set(starts))  # no VM was asked to start twice


def test_ten_percent_faults_on_both_twins_still_converge(estate: Estate) -> None:
    sign_in(estate, range(1, 11))
    for twin in (estate.arm, estate.anq["east"], estate.anq["central"]):
        twin.server.inject("error", rate=0.1, pattern=r"^(?!GET /msi/token)")
    assert (
        call(
            estate,
            "POST",
            "failover",
            {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"},
            roles=("Tandem.Failover.Operator",),
        )[0]
        == 202
    )
    final = run_to_end(estate, "failover-central-east", limit=timedelta(hours=2))
    assert final["output"]["outcome"] == "completed", final["customStatus"]
    east, central = estate.anq["east"].cluster, estate.anq["central"].cluster
    assert {u: p.version for u, p in central.directory("/profiles-dr/fslogix").profiles.items()} == {
        u: p.version for u, p in east.directory("/profiles/fslogix").profiles.items()
    }
    assert not central.directory("/profiles-dr/fslogix").read_only
    group = estate.arm.estate.app_group(CENTRAL_SUB, "rg-avd-central", "dag-central-desktop")
    assert len(estate.arm.estate.assignments_at(group.id)) == 1
    assert (
        sum(r.fault == "error" for t in (estate.arm, estate.anq["east"], estate.anq["central"]) for r in t.server.log()) > 0
    )  # the faults did happen


def test_a_failback_in_a_quiet_hour_catches_up_on_the_job_the_reconnect_starts(estate: Estate) -> None:
    """Nobody writes in central between the failover and the failback: the only job after the re-protection is the one
    the re-established relationship starts itself, and the failback must count it rather than wait for a later one."""
    sign_in(estate, range(1, 5))
    estate.anq["east"].cluster.settle()
    estate.host.advance(timedelta(minutes=3))
    assert (
        call(
            estate,
            "POST",
            "failover",
            {"source": "east", "target": "central", "mode": "planned", "reason": "maintenance"},
            roles=("Tandem.Failover.Operator",),
        )[0]
        == 202
    )
    assert run_to_end(estate, "failover-central-east")["output"]["outcome"] == "completed"
    estate.host.advance(timedelta(minutes=30))  # a quiet half hour: no sign-in, no profile write in central
    assert (
        call(
            estate,
            "POST",
            "failover",
            {"source": "central", "target": "east", "mode": "failback", "reason": "east is healthy"},
            roles=("Tandem.Failover.Operator",),
        )[0]
        == 202
    )
    back = run_to_end(estate, "failover-central-east", limit=timedelta(hours=1))
    assert back["output"]["outcome"] == "completed", back["customStatus"]
    steps = {s["step"]: s for s in back["customStatus"]["steps"]}
    caught = datetime.fromisoformat(steps["caught up"]["ended"]) - datetime.fromisoformat(steps["reconnect"]["started"])
    assert caught < timedelta(minutes=5)  # reconnect (1 min) and the one job it started (2 min), plus polls
