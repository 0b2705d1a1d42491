"""The ARM twin's behavioural model, driven in-process on a virtual clock (no HTTP)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from local.runtime.clock import VirtualClock
from local.twins.arm.seed import GENERATED_SUBSCRIPTION as SUB
from local.twins.arm.seed import Seed, build_estate, pool_seed


def _estate(seed: dict, **timings: object):
    seed["timings"].update(timings)
    return build_estate(Seed.model_validate(seed), VirtualClock())


def _pool(estate):
    return estate.pool(SUB, "rg-avd", "hp0")


def test_a_started_vm_is_starting_then_running_and_available_only_after_the_agent_is_ready() -> None:
    estate = _estate(pool_seed(1, boot="45s", agent_ready="90s"))
    host = next(iter(_pool(estate).hosts.values()))
    estate.start_vm(host.vm)
    clock = estate.clock
    seen = []
    for step in (0, 44, 1, 89, 1):
        clock.advance(timedelta(seconds=step))
        seen.append((host.vm.power(clock.now()), host.status(clock.now())))
    assert seen == [
        ("starting", "Unavailable"),
        ("starting", "Unavailable"),
        ("running", "Unavailable"),
        ("running", "Unavailable"),
        ("running", "Available"),
    ]


def test_breadth_first_spreads_users_and_depth_first_fills_one_host_first() -> None:
    breadth = _estate(pool_seed(4, running=4, users=8, max_sessions=4))
    for i in range(1, 9):
        breadth.logon(_pool(breadth), f"user{i:03d}@contoso.com")
    loads = sorted(len(h.sessions) for h in _pool(breadth).hosts.values())
    assert loads[0] >= 1 and loads[-1] <= 3  # every host used, none filled while others sit nearly empty
    depth = _estate(pool_seed(4, running=4, users=8, max_sessions=4, load_balancer="DepthFirst"))
    for i in range(1, 9):
        depth.logon(_pool(depth), f"user{i:03d}@contoso.com")
    assert sorted(len(h.sessions) for h in _pool(depth).hosts.values()) == [0, 0, 4, 4]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5), min_size=2, max_size=8))
def test_breadth_first_picks_among_the_least_loaded_half(loads: list[int]) -> None:
    estate = _estate(pool_seed(len(loads), running=len(loads), users=1, max_sessions=10))
    hosts = sorted(_pool(estate).hosts.values(), key=lambda h: h.name)
    for host, load in zip(hosts, loads, strict=True):
        for n in range(load):
            host.next_session(f"seat{n}@{host.name}", estate.clock.now())
    ranked = sorted(hosts, key=lambda h: (len(h.sessions), h.name))
    allowed = {h.name for h in ranked[: (len(ranked) + 1) // 2]}
    assert estate.logon(_pool(estate), "user001@contoso.com").host in allowed


def test_draining_hosts_and_full_hosts_get_no_new_users_and_a_miss_is_recorded() -> None:
    estate = _estate(pool_seed(2, running=2, users=4, max_sessions=1))
    pool = _pool(estate)
    first, second = sorted(pool.hosts.values(), key=lambda h: h.name)
    estate.set_drain(first, False)
    outcomes = [estate.logon(pool, f"user{i:03d}@contoso.com") for i in (1, 2)]
    assert [(o.outcome, o.host) for o in outcomes] == [("connected", second.name), ("no_capacity", None)]
    assert [o.missed for o in estate.logons] == [False, True]


def test_a_returning_user_reconnects_to_their_disconnected_session() -> None:
    estate = _estate(pool_seed(3, running=3, users=1))
    pool = _pool(estate)
    first = estate.logon(pool, "user001@contoso.com")
    assert estate.disconnect_user(pool, "user001@contoso.com")
    again = estate.logon(pool, "user001@contoso.com")
    assert (again.outcome, again.host, again.session_id) == ("reconnected", first.host, first.session_id)


def test_idle_sessions_disconnect_and_disconnected_sessions_end_on_their_limits() -> None:
    estate = _estate(pool_seed(1, running=1, users=1), idle_disconnect="30m", disconnected_logoff="2h")
    pool = _pool(estate)
    estate.logon(pool, "user001@contoso.com")
    host = next(iter(pool.hosts.values()))
    estate.clock.advance(timedelta(minutes=30))
    estate.settle()
    assert [s.state for s in host.sessions.values()] == ["Disconnected"]
    estate.clock.advance(timedelta(hours=2))
    estate.settle()
    assert host.sessions == {}


def test_start_vm_on_connect_starts_at_most_one_vm_per_interval() -> None:
    seed = pool_seed(3, users=3, agent_ready="10m")
    seed["subscriptions"][0]["resource_groups"][0]["host_pools"][0]["start_vm_on_connect"] = True
    estate = _estate(seed)
    pool = _pool(estate)
    for i in (1, 2, 3):
        assert estate.logon(pool, f"user{i:03d}@contoso.com").outcome == "no_capacity"
    now = estate.clock.now()
    assert Counter(h.vm.power(now) for h in pool.hosts.values()) == {"starting": 1, "deallocated": 2}
    estate.clock.advance(timedelta(minutes=5))
    estate.logon(pool, "user001@contoso.com")
    assert Counter(h.vm.power(estate.clock.now()) for h in pool.hosts.values())["deallocated"] == 1


def test_users_without_an_assignment_cannot_sign_in() -> None:
    estate = _estate(pool_seed(1, running=1, users=1))
    assert estate.logon(_pool(estate), "stranger@fabrikam.com").outcome == "not_assigned"
