"""The autoscale benchmark's references hold what the README says of them: the pre-stage is sized to the recorded
peak, the clairvoyant never beats perfect repacking and keeps users seated, the new team is new, and the
aggregate is the mean and worst of the seeds."""

from __future__ import annotations

import math
from datetime import timedelta

from bench import autoscale_burst as bench
from shared.autoscale.forecast import ArrivalHistory
from shared.autoscale.planner import minimum_hosts


def test_prestage_is_the_recorded_peak_at_the_burst_threshold_and_the_native_planner_keeps_it() -> None:
    peak = bench.recorded_peak(3)
    history = [
        max(bench.concurrency(bench.trace(bench.MEASURED - timedelta(days=b), "typical", 3), bench.MEASURED - timedelta(days=b)))
        for b in range(1, bench.HISTORY_DAYS + 1)
    ]
    assert peak == max(history) and peak > 200
    staged = bench.prestage_hosts(peak)
    assert staged == math.ceil(peak / (bench.LIMIT * bench.BURST_PCT / 100))
    pct = bench.hosts_pct(staged)
    assert minimum_hosts(pct, bench.HOSTS) >= staged > minimum_hosts(pct - 1, bench.HOSTS)  # the smallest that holds it
    phases = {p.phase: p for p in bench.policies(peak)["prestage"].phases}
    assert phases["ramp_up"].minimum_hosts_pct == phases["peak"].minimum_hosts_pct == pct
    assert phases["ramp_up"].start.strftime("%H:%M") < "07:00" <= phases["peak"].start.strftime("%H:%M")


def test_clairvoyant_never_beats_perfect_repacking_and_seats_users_early() -> None:
    for scenario in ("quiet", "typical"):
        seen = bench.play(bench.MEASURED, scenario, "clairvoyant", ArrivalHistory(), 2)
        bound = bench.lower_bound(bench.MEASURED, scenario, 2)
        assert bound.vm_minutes <= seen.vm_minutes, scenario
        assert seen.misses <= 0.02 * len(bench.trace(bench.MEASURED, scenario, 2)), scenario  # p95 boots: a few late


def test_the_new_team_is_150_more_users_around_half_past_nine() -> None:
    typical = bench.trace(bench.MEASURED, "typical", 4)
    team = [v for v in bench.trace(bench.MEASURED, "new_team", 4) if v.upn not in {t.upn for t in typical}]
    assert len(team) == 150
    assert all(abs((v.arrive - v.arrive.replace(hour=9, minute=30)).total_seconds()) < 3600 for v in team)


def test_aggregate_is_mean_and_worst_over_seeds() -> None:
    def row(misses: int, hours: float) -> dict[str, dict[str, dict[str, float]]]:
        return {"typical": {"tandem": {"logon_misses": misses, "vm_hours": hours, "p95_wait_s": 0.0}}}

    out = bench.aggregate({"1": row(0, 300.0), "2": row(3, 320.0)})
    assert out["typical"]["tandem"] == {
        "logon_misses": {"mean": 1.5, "max": 3},
        "vm_hours": {"mean": 310.0, "max": 320.0},
        "p95_wait_s": {"mean": 0.0, "max": 0.0},
    }
