"""The planner's rules, each pinned by a small hand-built pool, and its safety properties over random pools."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.autoscale.planner import Decision, Forecast, HostView, PoolSnapshot, Rules, plan

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def pool(*sessions: int | None, phase: str = "peak", limit: int = 10, **extra: object) -> PoolSnapshot:
    """Hosts h0..: an int is a running host with that many sessions, None a deallocated host."""
    hosts = tuple(
        HostView(f"h{i}", "running" if n is not None else "deallocated", "Available" if n is not None else "Shutdown", n or 0, n or 0)
        for i, n in enumerate(sessions)
    )
    return PoolSnapshot(NOW, phase, limit, hosts, **extra)  # type: ignore[arg-type]


def with_hosts(snapshot: PoolSnapshot, **changes: dict[str, object]) -> PoolSnapshot:
    hosts = tuple(HostView(**{**h.__dict__, **changes.get(h.name, {})}) for h in snapshot.hosts)
    return PoolSnapshot(
        snapshot.time, snapshot.phase, snapshot.max_session_limit, hosts, snapshot.load_balancer, snapshot.last_scale_out
    )


def acts(decision: Decision) -> list[tuple[str, str]]:
    return [(s.action, s.host) for s in decision.actions]


# ----------------------------------------------------------------------------------------------- native


def test_native_scales_out_when_used_capacity_is_strictly_above_the_threshold() -> None:
    rules = Rules(capacity_threshold_pct=60)
    above = plan("native", pool(7, 6, None, None), rules)  # 13 / 20 = 65% > 60%
    assert (above.target_hosts, acts(above)) == (3, [("start", "h2")])
    equal = plan("native", pool(6, 6, None, None), rules)  # 12 / 20 = exactly 60%: nothing happens
    assert acts(equal) == []


def test_native_minimum_percentage_rounds_up_over_all_hosts_including_tagged_ones() -> None:
    snap = with_hosts(pool(0, None, None, None, None, None, None), h6={"excluded": True})
    decision = plan("native", snap, Rules(minimum_hosts_pct=30))  # 30% of 7 = 2.1 -> 3 hosts, tagged one counted
    assert (decision.target_hosts, acts(decision)) == (3, [("start", "h1"), ("start", "h2")])
    assert plan("native", pool(0, None, None, None, None, None), Rules(minimum_hosts_pct=30)).target_hosts == 2


def test_native_never_scales_in_during_ramp_up() -> None:
    assert acts(plan("native", pool(0, 0, 0, 0, phase="ramp_up"), Rules())) == []
    assert acts(plan("native", pool(0, 0, 0, 0, phase="peak"), Rules())) == [("deallocate", f"h{i}") for i in range(4)]


def test_native_drains_only_the_least_loaded_host_when_none_is_empty() -> None:
    decision = plan("native", pool(3, 1, 4, 2), Rules(capacity_threshold_pct=60))  # 10 sessions need 2 hosts
    assert acts(decision) == [("drain", "h1")]
    waiting = with_hosts(pool(3, 1, 4, 2), h1={"allow_new_session": False})
    assert acts(plan("native", waiting, Rules(capacity_threshold_pct=60))) == []  # one host at a time


def test_native_force_logoff_happens_only_in_ramp_down_and_after_the_wait() -> None:
    rules = Rules(capacity_threshold_pct=60, force_logoff=True, logoff_wait=timedelta(minutes=30))
    ramp_down = plan("native", pool(3, 1, 4, 2, phase="ramp_down"), rules)
    assert acts(ramp_down) == [("drain", "h1"), ("message", "h1"), ("drain", "h3"), ("message", "h3")]
    assert acts(plan("native", pool(3, 1, 4, 2, phase="peak"), rules)) == [("drain", "h1")]  # no force in peak
    warned = {"allow_new_session": False, "notified_at": NOW - timedelta(minutes=29)}
    early = with_hosts(pool(3, 1, 4, 2, phase="ramp_down"), h1=warned, h3=warned)
    assert acts(plan("native", early, rules)) == []
    late = with_hosts(early, h1={"notified_at": NOW - timedelta(minutes=30)}, h3={"notified_at": NOW - timedelta(hours=1)})
    assert acts(plan("native", late, rules)) == [("logoff", "h1"), ("deallocate", "h1"), ("logoff", "h3"), ("deallocate", "h3")]


def test_native_stop_hosts_when_zero_active_sessions_stops_hosts_with_only_disconnected_users() -> None:
    snap = with_hosts(pool(2, 5, phase="ramp_down"), h0={"active_sessions": 0})
    assert acts(plan("native", snap, Rules(capacity_threshold_pct=90, stop_hosts_when="ZeroActiveSessions"))) == [("deallocate", "h0")]
    assert acts(plan("native", snap, Rules(capacity_threshold_pct=90, stop_hosts_when="ZeroSessions"))) == [("drain", "h0")]


def test_native_undrains_before_starting_when_load_rises() -> None:
    snap = with_hosts(pool(6, 6, 2, None), h2={"allow_new_session": False})
    assert acts(plan("native", snap, Rules(capacity_threshold_pct=60))) == [("undrain", "h2")]


def test_no_policy_touches_an_excluded_host() -> None:
    snap = with_hosts(pool(9, 0, None), h1={"excluded": True}, h2={"excluded": True})
    for policy in ("native", "legacy", "tandem"):
        touched = {h for _, h in acts(plan(policy, snap, Rules(capacity_threshold_pct=60)))}  # type: ignore[arg-type]
        assert touched.isdisjoint({"h1", "h2"}), policy


# ----------------------------------------------------------------------------------------------- legacy


def test_legacy_the_ninety_percent_rule_keeps_a_second_host_off_peak() -> None:
    # RDS-Templates#534: minimum 1, limit 5, 5 sessions on 2 hosts -> minimum adjusted to 2 -> nothing to stop
    decision = plan("legacy", pool(3, 2, phase="off_peak", limit=5), Rules(minimum_hosts=1))
    assert (decision.target_hosts, acts(decision)) == (2, [])


def test_legacy_never_stops_hosts_in_peak() -> None:
    decision = plan("legacy", pool(0, 0, phase="peak", limit=15), Rules(minimum_hosts=1, session_threshold_per_cpu=3))
    assert acts(decision) == []


def test_legacy_starts_cores_for_sessions_per_cpu_in_peak() -> None:
    decision = plan("legacy", pool(5, 5, None, None, phase="peak"), Rules(minimum_hosts=1, cores_per_host=4))
    assert acts(decision) == [("start", "h2")]  # ceil(10/1 - 8) = 2 cores: one 4-core host


def test_legacy_off_peak_stops_the_emptiest_hosts_down_to_the_minimum() -> None:
    decision = plan("legacy", pool(0, 1, 0, 2, 0, phase="off_peak"), Rules(minimum_hosts=2, limit_seconds_to_force_logoff=0))
    assert acts(decision) == [("deallocate", "h0"), ("deallocate", "h2"), ("deallocate", "h4")]


# ----------------------------------------------------------------------------------------------- tandem


def test_tandem_starts_hosts_one_boot_time_ahead_of_the_forecast() -> None:
    ramp = Forecast(net_per_minute=(3.0,) * 10)  # 30 more sessions within the 10-minute lead
    decision = plan("tandem", pool(5, None, None, None, None, phase="ramp_up"), Rules(capacity_threshold_pct=90), ramp)
    assert decision.target_hosts == 4 and [a for a, _ in acts(decision)] == ["start"] * 3
    quiet = plan("tandem", pool(5, None, None, None, None, phase="ramp_up"), Rules(capacity_threshold_pct=90))
    assert acts(quiet) == []


def test_tandem_extrapolates_a_surge_and_starts_every_host_needed_at_once() -> None:
    surge = Forecast(observed_rate=6.0, expected_rate=1.0)  # 60 sessions in the next 10 minutes at this rate
    decision = plan("tandem", pool(8, *[None] * 9), Rules(capacity_threshold_pct=90), surge)
    assert decision.target_hosts == 8 and len(acts(decision)) == 7
    expected = Forecast(observed_rate=1.1, expected_rate=1.0)  # as forecast: no surge
    assert acts(plan("tandem", pool(8, *[None] * 9), Rules(capacity_threshold_pct=90), expected)) == []


def test_tandem_sizes_the_survivor_for_announced_failover_users() -> None:
    decision = plan("tandem", pool(0, *[None] * 9), Rules(capacity_threshold_pct=90), Forecast(incoming=45))
    assert decision.target_hosts == 5


def test_tandem_keeps_per_phase_minimum_and_maximum_hosts() -> None:
    assert plan("tandem", pool(0, None, None, None, None), Rules(min_hosts=3)).target_hosts == 3
    capped = plan("tandem", pool(10, 10, None, None, None), Rules(max_hosts=3), Forecast(incoming=40))
    assert (capped.target_hosts, acts(capped)) == (3, [("start", "h2")])


def test_tandem_can_leave_tagged_hosts_out_of_the_minimum() -> None:
    snap = with_hosts(
        pool(0, None, None, None, None, None, None, None, None, None), **{f"h{i}": {"excluded": True} for i in range(5, 10)}
    )
    assert plan("native", snap, Rules(minimum_hosts_pct=40)).target_hosts == 4  # 40% of all 10
    assert plan("tandem", snap, Rules(minimum_hosts_pct=40, exclude_tagged_from_minimum=True)).target_hosts == 2


def test_tandem_cools_down_after_a_scale_out_and_undrains_meanwhile() -> None:
    snap = with_hosts(pool(0, 0, 3, last_scale_out=NOW - timedelta(minutes=4)), h2={"allow_new_session": False})
    cooling = plan("tandem", snap, Rules(cooldown=timedelta(minutes=10)))
    assert acts(cooling) == [("undrain", "h2")]
    later = PoolSnapshot(NOW, "peak", 10, snap.hosts, last_scale_out=NOW - timedelta(minutes=11))
    # 3 sessions need one host: the empty h0 stops, h1 serves, the drained h2 keeps draining
    assert acts(plan("tandem", later, Rules(cooldown=timedelta(minutes=10)))) == [("deallocate", "h0")]


def test_tandem_never_leaves_a_host_drained_in_ramp_up() -> None:
    snap = with_hosts(pool(2, 0, phase="ramp_up"), h1={"allow_new_session": False})
    assert acts(plan("tandem", snap, Rules())) == [("undrain", "h1")]


# ----------------------------------------------------------------------------------------------- properties


host_strategy = st.builds(
    lambda power, n, active_share, allow, excluded, notified: HostView(
        "",
        power,
        "Available" if power == "running" else ("Unavailable" if power == "starting" else "Shutdown"),
        n if power == "running" else 0,
        (n * active_share // 4) if power == "running" else 0,
        allow,
        excluded,
        False,
        NOW - timedelta(minutes=notified) if notified is not None and power == "running" else None,
    ),
    st.sampled_from(["running", "running", "deallocated", "starting"]),
    st.integers(0, 12),
    st.integers(0, 4),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(0, 90),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PoolSnapshot, Rules, Forecast]:
    hosts = draw(st.lists(host_strategy, min_size=1, max_size=12))
    hosts = [HostView(f"h{i:02d}", *list(h.__dict__.values())[1:]) for i, h in enumerate(hosts)]
    limit = draw(st.integers(1, 12))
    hosts = [
        HostView(**{**h.__dict__, "sessions": min(h.sessions, limit), "active_sessions": min(h.active_sessions, limit)}) for h in hosts
    ]
    low = draw(st.none() | st.integers(0, 6))
    high = draw(st.none() | st.integers(0, 12))
    if low is not None and high is not None and low > high:
        low, high = high, low
    rules = Rules(
        capacity_threshold_pct=draw(st.integers(1, 100)),
        minimum_hosts_pct=draw(st.integers(0, 100)),
        min_hosts=low,
        max_hosts=high,
        force_logoff=draw(st.booleans()),
        stop_hosts_when=draw(st.sampled_from(["ZeroSessions", "ZeroActiveSessions"])),
        exclude_tagged_from_minimum=draw(st.booleans()),
        minimum_hosts=draw(st.integers(0, 5)),
        limit_seconds_to_force_logoff=draw(st.sampled_from([0, 900])),
    )
    forecast = Forecast(
        tuple(draw(st.lists(st.floats(-3, 6), max_size=15))), draw(st.floats(0, 20)), draw(st.floats(0, 20)), draw(st.integers(0, 60))
    )
    phase = draw(st.sampled_from(["ramp_up", "peak", "ramp_down", "off_peak"]))
    return PoolSnapshot(NOW, phase, limit, tuple(hosts)), rules, forecast


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_no_policy_deallocates_a_host_with_sessions_outside_an_allowed_force_logoff(case: tuple) -> None:
    snapshot, rules, forecast = case
    hosts = {h.name: h for h in snapshot.hosts}
    for policy in ("native", "legacy", "tandem"):
        decision = plan(policy, snapshot, rules, forecast)  # type: ignore[arg-type]
        logged_off = {s.host for s in decision.actions if s.action == "logoff"}
        for step in decision.actions:
            host = hosts[step.host]
            assert not host.excluded, (policy, step)
            if step.action == "logoff":
                forced = (
                    (snapshot.phase == "ramp_down" and rules.force_logoff)
                    if policy != "legacy"
                    else (snapshot.phase in ("ramp_down", "off_peak") and rules.limit_seconds_to_force_logoff > 0)
                )
                assert forced and host.notified_at is not None, (policy, step)
            if step.action == "deallocate" and step.host not in logged_off:
                allowed = (
                    host.active_sessions == 0
                    if (policy != "legacy" and rules.stop_hosts_when == "ZeroActiveSessions")
                    else host.sessions == 0
                )
                assert allowed, (policy, step, host)


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_tandem_never_goes_below_the_minimum_or_above_the_maximum(case: tuple) -> None:
    snapshot, rules, forecast = case
    decision = plan("tandem", snapshot, rules, forecast)
    managed = [h for h in snapshot.hosts if not h.excluded]
    serving = {h.name for h in managed if h.healthy and h.allow_new_session}
    after = set(serving)
    for step in decision.actions:
        if step.action in ("start", "undrain"):
            after.add(step.host)
        elif step.action in ("drain", "deallocate"):
            after.discard(step.host)
    total = len(managed) if rules.exclude_tagged_from_minimum else len(snapshot.hosts)
    floor = max(-(-rules.minimum_hosts_pct * total // 100), rules.min_hosts or 0)
    available = len([h for h in managed if h.healthy or h.power == "deallocated"])
    if rules.max_hosts is not None:
        assert len(after) <= max(rules.max_hosts, len(serving)), decision  # never grows past the maximum
    if len(after) < len(serving):  # scaling in never crosses the floor
        assert len(after) >= min(floor, available, rules.max_hosts if rules.max_hosts is not None else available)
    if len(serving) < min(floor, available, rules.max_hosts if rules.max_hosts is not None else available):
        assert len(after) >= min(floor, available, rules.max_hosts if rules.max_hosts is not None else available)
