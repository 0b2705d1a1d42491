"""NCRONTAB schedules: six fields, seconds first, settings resolved, bad expressions named."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.runtime.ncrontab import Schedule, resolve
from shared.errors import ConfigError

START = datetime(2026, 11, 27, 10, 7, 30, tzinfo=UTC)  # a Friday


def test_every_minute_fires_at_second_zero() -> None:
    assert Schedule.parse("0 * * * * *").next_after(START) == datetime(2026, 11, 27, 10, 8, tzinfo=UTC)


def test_weekday_business_hours_skip_the_weekend() -> None:
    schedule = Schedule.parse("0 */15 9-17 * * MON-FRI")
    assert schedule.next_after(datetime(2026, 11, 27, 17, 45, tzinfo=UTC)) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_next_is_strictly_after_an_occurrence() -> None:
    at = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert Schedule.parse("0 0 * * * *").next_after(at) == at + timedelta(hours=1)


def test_leap_day_schedule_waits_for_a_leap_year() -> None:
    assert Schedule.parse("0 0 0 29 2 *").next_after(START) == datetime(2028, 2, 29, tzinfo=UTC)


def test_setting_reference_is_resolved_from_app_settings() -> None:
    assert resolve("%AUTOSCALE_SCHEDULE%", {"AUTOSCALE_SCHEDULE": "0 * * * * *"}) == "0 * * * * *"


def test_missing_setting_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="AUTOSCALE_SCHEDULE"):
        resolve("%AUTOSCALE_SCHEDULE%", {})


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", "six fields"),
        ("0 61 * * * *", "minute value '61'"),
        ("0 */0 * * * *", "step"),
        ("0 0 5-1 * * *", "backwards"),
        ("0 0 0 * FOO *", "month value 'FOO'"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Schedule.parse(expression)


@given(
    second=st.sampled_from(["0", "*/10", "5,35"]),
    minute=st.sampled_from(["*", "*/5", "0", "10-20/3"]),
    hour=st.sampled_from(["*", "6-18", "0"]),
    dow=st.sampled_from(["*", "MON-FRI", "0", "SAT,SUN"]),
    offset=st.integers(min_value=0, max_value=400 * 24 * 3600),
)
def test_next_occurrence_matches_and_nothing_in_between_does(second: str, minute: str, hour: str, dow: str, offset: int) -> None:
    schedule = Schedule.parse(f"{second} {minute} {hour} * * {dow}")
    start = START + timedelta(seconds=offset)
    nxt = schedule.next_after(start)
    assert nxt > start and schedule.matches(nxt)
    probe = start.replace(microsecond=0) + timedelta(seconds=1)
    while probe < nxt and probe < start + timedelta(hours=2):
        assert not schedule.matches(probe)
        probe += timedelta(seconds=1)
