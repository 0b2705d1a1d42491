"""Autoscale's inputs: phases and holidays, the forecast learned from history, events, and the snapshot file."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from shared import payloads
from shared.autoscale import signals
from shared.autoscale.forecast import ArrivalHistory, build_forecast, from_entity, to_entity
from shared.autoscale.rules import phase_at
from shared.autoscale.snapshot_file import parse_snapshot
from shared.config.model import AutoscalePolicy
from shared.errors import InputError
from tests.conftest import load_event

POLICY = AutoscalePolicy.model_validate(
    {
        "time_zone": "America/New_York",
        "holidays": ["2026-12-25"],
        "phases": [
            {"phase": "ramp_up", "start": "07:00"},
            {"phase": "peak", "start": "09:00"},
            {"phase": "ramp_down", "start": "17:00"},
            {"phase": "off_peak", "start": "20:00"},
        ],
    }
)


@pytest.mark.parametrize(
    ("utc", "phase"),
    [
        ("2026-11-30T11:59:00+00:00", "off_peak"),  # 06:59 New York: still last night's off-peak
        ("2026-11-30T12:00:00+00:00", "ramp_up"),
        ("2026-11-30T14:30:00+00:00", "peak"),
        ("2026-11-30T22:00:00+00:00", "ramp_down"),
        ("2026-12-01T01:00:00+00:00", "off_peak"),
        ("2026-12-05T14:30:00+00:00", "off_peak"),  # a Saturday
        ("2026-12-25T14:30:00+00:00", "off_peak"),  # the holiday calendar
    ],
)
def test_the_phase_in_force_follows_local_time_weekends_and_holidays(utc: str, phase: str) -> None:
    assert phase_at(POLICY, datetime.fromisoformat(utc)).phase == phase


def test_the_forecast_learns_each_weekdays_curve_and_round_trips_through_a_table_row() -> None:
    history = ArrivalHistory()
    monday = date(2026, 11, 2)
    for week in range(4):
        day = monday + timedelta(weeks=week)
        for minute in range(30):  # 10 logons a minute 08:00-08:30 on Mondays
            history.record(datetime(day.year, day.month, day.day, 8, minute), 10, 0)
        tuesday = day + timedelta(days=1)
        history.record(datetime(tuesday.year, tuesday.month, tuesday.day, 8, 0), 1, 0)
    at = datetime(2026, 11, 30, 7, 55)  # the next Monday, five minutes before the storm
    forecast = build_forecast(history, at, horizon_minutes=15)
    assert sum(forecast.net_per_minute[:5]) == 0 and sum(forecast.net_per_minute[5:15]) == pytest.approx(100)
    tuesday = build_forecast(history, datetime(2026, 12, 1, 7, 55), horizon_minutes=15)
    assert sum(tuesday.net_per_minute) == pytest.approx(1.0)
    row = to_entity(history.days[monday])
    assert from_entity(row) == history.days[monday]
    assert from_entity({"arrivals": "1,2"}).arrivals == [0] * 288  # a malformed row reads as empty


def test_a_logon_rate_alert_names_its_pool_and_rate() -> None:
    from shared import alerts, payloads
    from shared.config import load_topology

    topology = load_topology(Path(__file__).parents[2] / "local" / "demo" / "topology.yaml")
    alert = load_event("monitor_commonalert_log_logonrate.json")
    pool = (
        "/subscriptions/00000000-0000-4000-8000-0000000000e1/resourcegroups/rg-avd-east"
        "/providers/microsoft.desktopvirtualization/hostpools/hp-east-pooled"
    )
    assert alerts.route(topology, payloads.validate(payloads.CommonAlert, alert, "alert")) == alerts.LogonRate(pool, 12.0)
    resolved = copy.deepcopy(alert)
    resolved["data"]["essentials"]["monitorCondition"] = "Resolved"
    assert alerts.route(topology, payloads.validate(payloads.CommonAlert, resolved, "alert")) == alerts.LogonRate(pool, 0)
    metric = payloads.validate(payloads.CommonAlert, load_event("monitor_commonalert_testaction_metric_static.json"), "a")
    assert isinstance(alerts.route(topology, metric), alerts.Ignore)  # a storage account's metric: no host pool


@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        ("Microsoft.Storage.BlobCreated", {}, "unknown event type"),
        ("Tandem.Failover.Started", {"source": "east"}, "target: Field required"),
        (
            "Tandem.Failover.Started",
            {"source": "east", "target": "central", "sessions": "many"},
            "sessions: Input should be a valid integer",
        ),
        (
            "Microsoft.AlertsManagement.Alert.Activated",
            load_event("monitor_commonalert_log_logonrate.json"),
            "unknown event type",
        ),  # alerts come by the action group's webhook, never by Event Grid
        (payloads.HEALTH_CHANGED, {"resourceInfo": {}}, "resourceInfo.properties: Field required"),
    ],
)
def test_malformed_or_unknown_events_are_input_errors(event_type: str, data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        signals.parse(event_type, data)


def test_resource_health_for_a_session_host_vm_is_a_host_health_signal() -> None:
    event = load_event("eg_HealthResources_AvailabilityStatusChanged_eventgridschema.json")
    assert isinstance(signals.parse(event["eventType"], event["data"]), signals.Ignored)  # back to Available
    event["data"]["resourceInfo"]["properties"]["availabilityState"] = "Unavailable"
    assert signals.parse(event["eventType"], event["data"]).state == "Unavailable"


def test_a_bad_snapshot_file_names_the_file_and_the_field() -> None:
    good = {
        "time": "2026-11-30T07:45:00Z",
        "phase": "ramp_up",
        "max_session_limit": 10,
        "hosts": [{"name": "h1", "power": "running", "sessions": 3}],
    }
    snapshot, rules, _ = parse_snapshot(good, "s.json")
    assert snapshot.hosts[0].active_sessions == 3 and rules.capacity_threshold_pct == 60
    with pytest.raises(InputError, match=r"s.json: hosts.0.power: Input should be"):
        parse_snapshot({**good, "hosts": [{"name": "h1", "power": "on"}]}, "s.json")
    with pytest.raises(InputError, match=r"s.json: time: Value error, must include a UTC offset"):
        parse_snapshot({**good, "time": "2026-11-30T07:45:00"}, "s.json")
    with pytest.raises(InputError, match=r"s.json: policy.capcity_threshold_pct: Extra inputs"):
        parse_snapshot({**good, "policy": {"capcity_threshold_pct": 50}}, "s.json")
