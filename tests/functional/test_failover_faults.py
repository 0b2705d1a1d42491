"""The fault matrix: planned, unplanned and failback, a fault injected at a step (the activity fails past its
retries, or ARM or a cluster goes down for the rest of the run), the autoscale timer on every minute. Every case
must end in one of the README's end states, with the twins as witnesses, never both regions unusable by
Tandem's hand and never a host left drained outside a hold. The test prints the matrix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.demo.estate import Estate, running
from local.runtime import VirtualClock
from tests.functional.test_failover import BUSY, MORNING, QUICK, call
from tests.functional.test_failover_worst_day import (
    CENTRAL_DIR,
    EAST_DIR,
    INSTANCE,
    OPERATOR,
    central_pool,
    east_pool,
    sign_in,
    start,
    state_of,
)

MATRIX: list[tuple[str, str, str, str]] = []
# the matrix is about where a fault lands, not how long users are given to leave: a 2-minute drain wait (the
# default is 10) keeps its 35 cases short; tests/functional/test_failover.py runs the default
POLICY = {**QUICK, "drain_wait": "2m"}
# nor about how long a doomed call is retried: an ARM fault here fails every call for the rest of the run and a
# dead cluster drops every request, so a 1-second ARM retry budget (the estate's is 3) and a half-second hang before
# the drop reach the same end states sooner (the ARM cases in about half the time); tests/unit/test_arm_retry.py
# and the 10% faults of tests/functional/test_failover.py are where retries must succeed
SETTINGS = {**BUSY, "TANDEM_ARM_RETRY_BUDGET_S": "1"}
HANG_S = 0.5
# (mode, activity the fault hits, fault, expected end state)
CASES = [
    ("planned", "hold", "activity", "rolled back"),
    ("planned", "drain", "activity", "rolled back"),
    ("planned", "logoff", "activity", "rolled back"),
    ("planned", "handles", "activity", "rolled back"),
    ("planned", "fence", "activity", "rolled back"),
    ("planned", "replicate", "activity", "rolled back"),
    ("planned", "replicated", "activity", "rolled back"),
    ("planned", "snapshot_target", "activity", "rolled back"),
    ("planned", "make_writable", "activity", "rolled back"),
    ("planned", "writable", "activity", "rolled back"),
    ("planned", "move_assignments", "activity", "needs operator"),
    ("planned", "verify", "activity", "needs operator"),
    ("planned", "drain", "arm", "needs operator"),  # the undrain cannot be confirmed: retried, hold kept
    ("planned", "fence", "source", "needs operator"),
    ("planned", "make_writable", "target", "rolled back"),
    ("planned", "fence", "arm", "needs operator"),  # signed out and drained, ARM gone: the undrain is retried
    ("planned", "move_assignments", "arm", "needs operator"),
    ("unplanned", "hold", "activity", "needs operator"),  # approved, the source down: retried, never dropped
    ("unplanned", "warm", "activity", "needs operator"),
    ("unplanned", "snapshot_target", "activity", "needs operator"),
    ("unplanned", "make_writable", "activity", "needs operator"),
    ("unplanned", "writable", "activity", "needs operator"),
    ("unplanned", "move_assignments", "activity", "needs operator"),
    ("unplanned", "verify", "activity", "needs operator"),
    ("unplanned", "move_assignments", "arm", "needs operator"),
    ("failback", "reverse", "activity", "rolled back"),
    ("failback", "drain", "activity", "rolled back"),
    ("failback", "logoff", "activity", "rolled back"),
    ("failback", "handles", "activity", "rolled back"),
    ("failback", "fence", "activity", "rolled back"),
    ("failback", "make_writable", "activity", "rolled back"),
    ("failback", "writable", "activity", "rolled back"),
    ("failback", "move_assignments", "activity", "needs operator"),
    ("failback", "verify", "activity", "needs operator"),
    ("failback", "logoff", "arm", "needs operator"),
]


@pytest.fixture
def estate(storage: str, hub: str) -> Iterator[Estate]:
    with running(storage, VirtualClock(MORNING), hub=hub, settings=SETTINGS, failover=POLICY) as running_estate:
        yield running_estate


@pytest.fixture(scope="module", autouse=True)
def print_matrix() -> Iterator[None]:
    yield
    if MATRIX:
        width = max(len(a) for _, a, _, _ in MATRIX)
        print("\nfault matrix (mode, activity, fault -> end state)")
        for mode, activity, fault, end in MATRIX:
            print(f"  {mode:<9} {activity:<{width}} {fault:<8} -> {end}")


def _fail_over_and_fence(estate: Estate) -> None:
    """east fails, users move to central, east returns fenced: where a failback starts."""
    sign_in(estate, range(1, 9))
    estate.anq["east"].server.hang_s = HANG_S
    estate.anq["east"].outage()
    start(estate, "unplanned")
    _rest(estate, lambda s: state_of(s) == "awaiting approval")
    assert (
        call(
            estate,
            "POST",
            f"failover/{INSTANCE}/approve",
            {},
            roles=("Tandem.Failover.Approver",),
            function="failover_decide",
            name="ben@contoso.com",
        )[0]
        == 202
    )
    _rest(estate, lambda s: state_of(s) == "fence returning region")
    estate.anq["east"].outage(False)
    assert _rest(estate, lambda s: False)["output"]["outcome"] == "completed"


def _rest(estate: Estate, until: Any, limit: timedelta = timedelta(hours=3)) -> dict[str, Any]:
    host = estate.host
    end = host.clock.now() + limit
    while host.clock.now() < end:
        host.wait_idle()
        if host.durable.parked:
            host.durable.release_parked()
            continue
        status = host.durable.status(INSTANCE)
        if status["runtimeStatus"] in ("Completed", "Failed", "Terminated") or until(status):
            return status
        host.advance(timedelta(seconds=15))
    raise AssertionError(f"no rest: {estate.host.durable.status(INSTANCE)['customStatus']}")


def _inject(estate: Estate, activity: str, fault: str, source: str, target: str) -> None:
    """Run until the activity is about to run, then make the fault true for the rest of the run."""
    host = estate.host
    name = f"failover_{activity}"
    if fault == "activity":
        host.durable.failing.add(name)
        return
    host.durable.hold_activities = True
    end = host.clock.now() + timedelta(hours=2)
    while host.clock.now() < end:
        host.wait_idle()
        if any(p[2] == name for p in host.durable.parked):
            twin = {"arm": estate.arm, "source": estate.anq[source], "target": estate.anq[target]}[fault]
            if fault == "arm":
                twin.server.inject("reset", rate=1.0, pattern=r"^(?!GET /msi/token)")
            else:
                twin.server.hang_s = HANG_S
                twin.outage()
            host.durable.hold_activities = False
            host.durable.release_parked()
            return
        if host.durable.parked:
            host.durable.release_parked()
            continue
        host.advance(timedelta(seconds=15))
    raise AssertionError(f"{activity} never ran")


def _serves(estate: Estate, region: str, users: list[str]) -> bool:
    """Profiles writable there, and people can work: a host takes sign-ins, or everyone signed in still is."""
    cluster = estate.anq[region].cluster
    if cluster.down or cluster.directory(EAST_DIR if region == "east" else CENTRAL_DIR).read_only:
        return False
    pool = east_pool(estate) if region == "east" else central_pool(estate)
    now = estate.host.clock.now()
    taking = any(h.allow_new_session and h.status(now) == "Available" for h in pool.hosts.values())
    present = {s.upn for h in pool.hosts.values() for s in h.sessions.values()}
    return taking or (bool(users) and set(users) <= present)


@pytest.mark.parametrize(("mode", "activity", "fault", "expected"), CASES, ids=[f"{m}-{a}-{f}" for m, a, f, _ in CASES])
def test_a_fault_at_any_step_ends_in_a_safe_state(estate: Estate, mode: str, activity: str, fault: str, expected: str) -> None:
    if mode == "failback":
        _fail_over_and_fence(estate)
        users, source, target = [f"user{i:03d}@contoso.com" for i in range(1, 9)], "central", "east"
        for upn in users:  # the moved users work in central: the witnesses that the serving region still serves
            for _ in range(20):
                if estate.arm.estate.logon(central_pool(estate), upn).outcome in ("connected", "reconnected"):
                    break
                estate.host.advance(timedelta(minutes=1))
    else:
        users, source, target = sign_in(estate, range(1, 9)), "east", "central"
        if mode == "unplanned":
            estate.anq["east"].server.hang_s = HANG_S
            estate.anq["east"].outage()
    status, body = call(
        estate, "POST", "failover", {"source": source, "target": target, "mode": mode, "reason": "fault matrix"}, roles=OPERATOR
    )
    assert status == 202, body
    if mode == "unplanned":
        _rest(estate, lambda s: state_of(s) == "awaiting approval")
        assert (
            call(
                estate,
                "POST",
                f"failover/{INSTANCE}/approve",
                {},
                roles=("Tandem.Failover.Approver",),
                function="failover_decide",
                name="ben@contoso.com",
            )[0]
            == 202
        )
    _inject(estate, activity, fault, source, target)
    final = _rest(estate, lambda s: state_of(s) in ("needs operator", "fence returning region"))
    outcome = (final.get("output") or {}).get("outcome") or state_of(final)
    MATRIX.append((mode, activity, fault, outcome))
    assert final["runtimeStatus"] != "Failed", final["customStatus"]
    assert outcome == expected, json.dumps(final["customStatus"])[-600:]
    from shared.state import holds

    held = holds.read()
    if outcome == "rolled back":
        assert _serves(estate, source, users), "rolled back, but the source does not serve"
        said = "make-writable may have been accepted" in final["customStatus"]["steps"][-1]["detail"]
        assert said == (activity in ("make_writable", "writable"))  # the operator is told to reconnect the target
        if not said:  # rolled back before make-writable: the target is the untouched read-only replica
            assert estate.anq[target].cluster.directory(EAST_DIR if target == "east" else CENTRAL_DIR).read_only
        assert set(held) <= ({"east"} if mode == "failback" else set())  # a failback leaves east fenced, nothing else
    else:  # needs operator: the reason is said, the holds stay, and the target serves once its storage is writable
        assert final["customStatus"]["reason"]
        assert {source, target} <= set(held) or mode == "unplanned"
        if activity in ("move_assignments", "verify"):
            assert not estate.anq[target].cluster.directory(EAST_DIR if target == "east" else CENTRAL_DIR).read_only
    # never both regions unusable by Tandem's hand: an unplanned failover's source was down before it began, and a
    # planned one whose source cluster dies mid-way has become an unplanned one (the park reason says so)
    by_premise = mode == "unplanned" or fault == "source"
    assert _serves(estate, source, users) or _serves(estate, target, []) or by_premise, "both unusable"
    # never a host left drained outside a hold
    for region in ("east", "central"):
        if region in held:
            continue
        pool = east_pool(estate) if region == "east" else central_pool(estate)
        now = estate.host.clock.now()
        drained = [
            h.name for h in pool.hosts.values() if not h.allow_new_session and h.vm and h.vm.power(now) == "running" and not h.sessions
        ]
        assert drained == [], f"{region}: drained outside a hold: {drained}"
