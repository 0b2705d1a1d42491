"""Failover on the worst day: the autoscale timer every minute, FSLogix still writing after sign-out, a stuck
handle, an unreadable source, concurrent evaluations. The whole system runs; faults are injected, nothing is off."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from local.demo.estate import Estate, running
from local.runtime import VirtualClock
from tests.functional.test_failover import BUSY, CENTRAL_SUB, EAST_SUB, MORNING, QUICK, call, run_to_end

INSTANCE = "failover-central-east"
OPERATOR = ("Tandem.Failover.Operator",)
EAST_DIR, CENTRAL_DIR = "/profiles/fslogix", "/profiles-dr/fslogix"


@pytest.fixture
def estate(storage: str, hub: str) -> Iterator[Estate]:
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY, failover=QUICK) as running_estate:
        yield running_estate


def east_pool(estate: Estate) -> Any:
    return estate.arm.estate.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")


def central_pool(estate: Estate) -> Any:
    return estate.arm.estate.pool(CENTRAL_SUB, "rg-avd-central", "hp-central-pooled")


def sign_in(estate: Estate, users: range) -> list[str]:
    """East's users sign in (FSLogix opens each one's container on east's cluster); when the pool is full they
    retry a minute later, while the timer scales it out, as a morning does."""
    upns = [f"user{i:03d}@contoso.com" for i in users]
    for upn in upns:
        for _ in range(20):
            if estate.arm.estate.logon(east_pool(estate), upn).outcome in ("connected", "reconnected"):
                break
            estate.host.advance(timedelta(minutes=1))
        else:
            raise AssertionError(f"{upn} never got a session")
    return upns


def start(estate: Estate, mode: str) -> None:
    status, body = call(
        estate, "POST", "failover", {"source": "east", "target": "central", "mode": mode, "reason": "worst day"}, roles=OPERATOR
    )
    assert status == 202, body


def state_of(status: dict[str, Any]) -> str:
    return (status.get("customStatus") or {}).get("state", "")


def step(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["customStatus"]["steps"] if s["step"] == name)


def test_a_planned_failover_under_the_running_timer_never_gives_the_source_back(estate: Estate) -> None:
    users = sign_in(estate, range(1, 21))
    east_cluster = estate.anq["east"].cluster
    start(estate, "planned")
    host, pool = estate.host, east_pool(estate)
    drained_seen, latecomers, starts_before = False, [], None
    end = host.clock.now() + timedelta(hours=1)
    while host.clock.now() < end:
        host.wait_idle()
        status = host.durable.status(INSTANCE)
        if status["runtimeStatus"] == "Completed":
            break
        steps = {s["step"]: s["status"] for s in (status.get("customStatus") or {}).get("steps", [])}
        if steps.get("warm target and drain source") == "done":
            if not drained_seen:
                drained_seen = True
                starts_before = sum(1 for h in pool.hosts.values() if h.vm and h.vm.power(host.clock.now()) != "deallocated")
            # from the drain on, the timer runs every minute and never undrains or starts a source host
            assert not any(h.allow_new_session for h in pool.hosts.values()), "a source host was undrained"
            on = sum(1 for h in pool.hosts.values() if h.vm and h.vm.power(host.clock.now()) != "deallocated")
            assert on <= starts_before, "a source host was started during the failover"
            latecomer = f"late{len(latecomers):03d}@contoso.com"  # someone tries to sign in to east meanwhile
            estate.arm.estate.users.setdefault(latecomer, set(estate.arm.estate.users[users[0]]))
            latecomers.append(estate.arm.estate.logon(pool, latecomer).outcome)
        host.advance(timedelta(seconds=15))
    final = host.durable.status(INSTANCE)
    assert final["output"]["outcome"] == "completed", final["customStatus"]
    assert drained_seen and latecomers and "connected" not in latecomers  # nobody landed on the source
    fired = [t for t, _ in host.timers["autoscale_timer"].fired]
    assert len(fired) >= 10  # the timer really ran through the failover
    assert east_cluster.lost_writes == [] and len(east_cluster.detach_writes) == len(users)  # every detach landed
    east_cluster.settle()
    source = east_cluster.directory(EAST_DIR).profiles
    target = estate.anq["central"].cluster.directory(CENTRAL_DIR).profiles
    assert {u: target[u].version for u in users} == {u: source[u].version for u in users}  # detach writes included
    landed = [estate.arm.estate.logon(central_pool(estate), u).outcome for u in users]
    assert landed.count("connected") == len(users)  # every moved user lands in the target


def test_a_slow_detach_is_waited_for_and_no_write_made_at_detach_is_lost(estate: Estate) -> None:
    east_cluster = estate.anq["east"].cluster
    east_cluster.detach_delay = timedelta(minutes=3)  # FSLogix takes its time to flush and detach
    users = sign_in(estate, range(1, 11))
    start(estate, "planned")
    final = run_to_end(estate, INSTANCE)
    assert final["output"]["outcome"] == "completed", final["customStatus"]
    closed = step(final, "profiles closed")
    waited = datetime.fromisoformat(closed["ended"]) - datetime.fromisoformat(closed["started"])
    assert waited >= timedelta(minutes=2, seconds=45)  # Tandem waited for the detach, then fenced
    assert [w.landed for w in east_cluster.detach_writes] == [True] * len(users)
    fence_at = datetime.fromisoformat(step(final, "fence source")["started"])
    assert all(w.at <= fence_at for w in east_cluster.detach_writes)
    target = estate.anq["central"].cluster.directory(CENTRAL_DIR).profiles
    assert all(target[u].version == east_cluster.directory(EAST_DIR).profiles[u].version for u in users)


def test_a_stuck_handle_rolls_the_failover_back_with_the_source_serving(estate: Estate) -> None:
    east_cluster = estate.anq["east"].cluster
    sign_in(estate, range(1, 6))
    east_cluster.stick(EAST_DIR, "user003@contoso.com")  # a hung host keeps one container open for ever
    start(estate, "planned")
    final = run_to_end(estate, INSTANCE)
    assert final["output"]["outcome"] == "rolled back", final["customStatus"]
    assert "profile containers still open (user003@contoso.com)" in final["output"]["reason"]
    assert not east_cluster.directory(EAST_DIR).read_only  # never fenced: nothing was refused
    assert all(h.allow_new_session for h in east_pool(estate).hosts.values())  # the source serves again
    assert estate.anq["central"].cluster.directory(CENTRAL_DIR).read_only
    rel = next(iter(east_cluster.relationships.values()))
    assert rel.state == "ESTABLISHED"
    newcomer = estate.arm.estate.logon(east_pool(estate), "user001@contoso.com").outcome
    assert newcomer == "connected"
    assert [e["type"] for e in estate.host.received].count("Tandem.Failover.RolledBack") == 1


def test_an_unplanned_failover_with_the_source_unreadable_sizes_the_target_from_history(estate: Estate) -> None:
    users = sign_in(estate, range(1, 25))
    estate.host.advance(timedelta(minutes=2))  # the timer records what east holds, as on any morning
    # east's region is gone: its pools and VMs cannot be read (ARM itself, global, still answers elsewhere)
    estate.arm.server.inject(
        "error",
        rate=1.0,
        pattern=r"^GET .*/resourceGroups/rg-avd-east(-hosts)?/providers/"
        r"Microsoft\.(DesktopVirtualization/hostPools|Compute)",
    )
    estate.anq["east"].server.hang_s = 1
    estate.anq["east"].outage()
    start(estate, "unplanned")
    waiting = run_to_end(estate, INSTANCE, until=lambda s: state_of(s) == "awaiting approval")
    assert waiting["runtimeStatus"] == "Running"
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
    done = run_to_end(estate, INSTANCE, until=lambda s: state_of(s) == "fence returning region")
    verify = step(done, "verify")
    assert verify["status"] == "done"
    rows = estate.host.received
    completed = [e for e in rows if e["type"] == "Tandem.Failover.Completed"][-1]["data"]
    assert completed["sized_from"] == "history" and int(completed["sessions"]) >= len(users)
    pool = central_pool(estate)
    now = estate.host.clock.now()
    seats = sum(pool.max_session_limit for h in pool.hosts.values() if h.allow_new_session and h.status(now) == "Available")
    assert seats >= len(users)  # verify held out for seats for everyone east had


def test_timer_event_and_warm_on_one_pool_evaluate_one_at_a_time_and_keep_history(estate: Estate) -> None:
    from tests.conftest import load_event

    host = estate.host
    host.advance(timedelta(minutes=1))  # a first evaluation: the pool's memory exists
    host.clock.set(host.clock.now() + timedelta(seconds=5))
    sign_in(estate, range(1, 13))  # twelve logons in the next minute
    host.clock.set(host.clock.now() + timedelta(seconds=50))
    alert = load_event("monitor_commonalert_log_logonrate.json")
    calls = [
        lambda: host.fire_timer("autoscale_timer"),
        lambda: host.http("POST", "alerts", body=alert, function="alerts_webhook"),  # the action group's call
        lambda: host.invoke("failover_warm", request={"region": "east", "sessions": 0}),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda f: f(), calls * 2))  # each path twice, all at once
    from shared.autoscale.forecast import from_entity
    from shared.state.tables import safe_key, table

    rows = list(
        table("logonhistory").query_entities(
            "PartitionKey eq @p", parameters={"p": safe_key(f"{EAST_SUB}/rg-avd-east/hp-east-pooled")}
        )
    )
    assert sum(sum(from_entity(r).arrivals) for r in rows) == 12  # each logon counted once, none overwritten
    starts = [r.path for r in estate.arm.server.log() if r.method == "POST" and r.path.endswith("/start")]
    assert len(starts) == len(set(starts))  # no VM asked to start twice by racing evaluations


def test_an_unreadable_hold_table_means_no_scale_action_and_an_alert(estate: Estate) -> None:
    host = estate.host
    from shared.state.tables import table

    sign_in(estate, range(1, 17))  # the two running hosts are full: any evaluation would scale out
    table("regionholds").delete_table()  # storage loses the table: holds cannot be read
    before = [r for r in estate.arm.server.log() if r.method in ("POST", "PATCH")]
    host.fire_timer("autoscale_timer")
    host.wait_idle()
    after = [r for r in estate.arm.server.log() if r.method in ("POST", "PATCH")]
    assert after == before  # nothing was started, drained or undrained
    alerts = [e for e in host.received if e["type"] == "Tandem.Autoscale.HoldsUnreadable"]
    assert alerts and set(alerts[-1]["data"]["regions"]) == {"east", "central"}


def test_two_instances_writing_one_day_of_history_merge_their_counts(estate: Estate) -> None:
    """The lease keeps evaluations apart; should one outlive its lease, the conditional write still merges."""
    from shared.autoscale.forecast import DayCounts
    from shared.autoscale.store import AutoscaleStore

    key, when = f"{EAST_SUB}/rg-avd-east/hp-east-pooled".lower(), MORNING
    first, second = AutoscaleStore(), AutoscaleStore()  # two Functions instances, each with its own cache
    mine, theirs = first.history(key, when.date()), second.history(key, when.date())
    seen = mine.days.get(when.date())
    base = DayCounts(list(seen.arrivals), list(seen.departures)) if seen else None
    mine.record(when, 3, 0)
    theirs.record(when, 5, 1)
    second.save_day(key, when.date(), theirs, base)
    first.save_day(key, when.date(), mine, base)  # its ETag is stale now: it merges instead of overwriting
    day = AutoscaleStore().history(key, when.date()).days[when.date()]
    assert (sum(day.arrivals), sum(day.departures)) == (
        3 + 5 + (sum(base.arrivals) if base else 0),
        1 + (sum(base.departures) if base else 0),
    )
