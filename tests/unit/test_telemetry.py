"""Structured log lines: one JSON object with a stable event name, secrets masked."""

import json
import logging

import pytest

from shared import telemetry


def test_log_event_writes_one_json_line_with_the_event_name(caplog: pytest.LogCaptureFixture) -> None:
    logger = telemetry.get_logger("test")
    with caplog.at_level(logging.INFO, logger="tandem"):
        telemetry.log_event(logger, "autoscale.decision", pool="hp-east", region="east", target_hosts=7)
    (record,) = caplog.records
    assert json.loads(record.getMessage()) == {"event": "autoscale.decision", "pool": "hp-east", "region": "east", "target_hosts": 7}


def test_secret_fields_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    logger = telemetry.get_logger("test")
    with caplog.at_level(logging.INFO, logger="tandem"):
        telemetry.log_event(logger, "qumulo.login", cluster="anq-east", password="hunter2", token="abc")
    line = caplog.records[0].getMessage()
    assert "hunter2" not in line and "abc" not in line
    assert json.loads(line)["password"] == "***"
