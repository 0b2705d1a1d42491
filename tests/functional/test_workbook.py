"""The Azure Monitor workbook (infra/app/workbook.json, deployed by infra/app/workbook.bicep) reads only what Tandem
logs: every event name and field its KQL queries is one the app emitted in a morning on the whole estate.

The morning: east's users sign in while the autoscale timer runs every minute (ARM failing its first host starts)
and snapshots every 15 minutes; an
operator drills; an unplanned failover is asked for and rejected by an approver, asked again and cancelled by
the operator, asked a third time and approved. Every `tandem` log line of it is captured as the JSON it is.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.demo.estate import running
from local.runtime import VirtualClock
from tests.functional.test_failover import BUSY, EAST_SUB, QUICK, call, run_to_end

ROOT = Path(__file__).parents[2]
WORKBOOK = ROOT / "infra" / "app" / "workbook.json"
MORNING = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)  # 07:30 in New York
OPERATOR, APPROVER = ("Tandem.Failover.Operator",), ("Tandem.Failover.Approver",)
EVENT = re.compile(r'tostring\(e\.event\)\s*(?:==\s*"([^"]+)"|in\s*\(([^)]*)\))')
FIELD = re.compile(r"\be\.(\w+)")


def queries(doc: dict[str, Any]) -> dict[str, str]:
    """Every KQL query of the workbook (its panels and its parameters), by name."""
    found = {i["name"]: i["content"]["query"] for i in doc["items"] if i["type"] == 3}
    for item in (i for i in doc["items"] if i["type"] == 9):
        found.update({f"parameter {p['name']}": p["query"] for p in item["content"]["parameters"] if p.get("query")})
    return found


def read(query: str) -> tuple[set[str], set[str]]:
    """The event names a query filters on, and the fields it reads."""
    events = set()
    for one, many in EVENT.findall(query):
        events |= {one} if one else set(re.findall(r'"([^"]+)"', many))
    return events, set(FIELD.findall(query)) - {"event"}


def unmet(doc: dict[str, Any], emitted: dict[str, set[str]]) -> list[str]:
    """What the workbook reads that Tandem did not emit: '<query>: <event>' or '<query>: <event>.<field>'."""
    problems = []
    for name, query in queries(doc).items():
        events, fields = read(query)
        if not events:
            problems.append(f"{name}: filters on no event name")
        for event in sorted(events):
            if event not in emitted:
                problems.append(f"{name}: {event}")
            problems += [f"{name}: {event}.{f}" for f in sorted(fields - emitted.get(event, set())) if event in emitted]
    return problems


class Capture(logging.Handler):
    """Each structured line as the JSON `log_event` wrote."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("{"):
            self.lines.append(json.loads(message))


@pytest.fixture(scope="module")
def emitted(storage: str) -> Iterator[dict[str, set[str]]]:
    capture, logger = Capture(), logging.getLogger("tandem")
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    try:
        with running(storage, VirtualClock(MORNING), hub="tworkbook", settings=BUSY, failover=QUICK) as estate:
            host, arm = estate.host, estate.arm
            pool = arm.estate.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
            waiting = [f"user{i:03d}@contoso.com" for i in range(1, 61)]
            arm.server.inject("error", pattern=r"POST .*/virtualMachines/[^/]+/start")  # ARM fails the first starts
            for minute in range(45):  # the morning: two users a minute, a miss retried the next minute
                if minute == 10:
                    arm.server.clear_faults()
                waiting = waiting[2:] + [u for u in waiting[:2] if arm.estate.logon(pool, u).outcome == "no_capacity"]
                host.advance(timedelta(minutes=1))
            host.wait_idle()
            status, started = call(estate, "POST", "failover", {"source": "east", "target": "central", "mode": "drill",
                                                                "reason": "quarterly DR test"}, roles=OPERATOR)  # fmt: skip
            assert status == 202 and run_to_end(estate, started["instance"])["output"]["outcome"] == "drill"
            for decision, by, roles in (("reject", "bob@contoso.com", APPROVER), ("cancel", "ana@contoso.com", OPERATOR),
                                        ("approve", "bob@contoso.com", APPROVER)):  # fmt: skip
                status, started = call(estate, "POST", "failover", {"source": "east", "target": "central", "mode": "unplanned",
                                                                    "reason": "east answers slowly"}, roles=OPERATOR)  # fmt: skip
                instance = started["instance"]
                asked = run_to_end(estate, instance, until=lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval")
                assert status == 202 and asked["customStatus"]["state"] == "awaiting approval"
                answer, _ = call(
                    estate, "POST", f"failover/{instance}/{decision}", {}, roles=roles, function="failover_decide", name=by
                )
                assert answer == 202, decision
                final = run_to_end(estate, instance, until=lambda s: any(st["step"] == "completed" for st in
                                                                          (s.get("customStatus") or {}).get("steps", [])))  # fmt: skip
                assert final["runtimeStatus"] == "Completed" or decision == "approve"
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    fields: dict[str, set[str]] = defaultdict(set)
    for line in capture.lines:
        fields[line["event"]] |= set(line) - {"event"}
    yield dict(fields)


def test_every_event_and_field_the_workbook_queries_is_one_tandem_emits(emitted: dict[str, set[str]]) -> None:
    doc = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    assert unmet(doc, emitted) == []
    read_events = set().union(*(read(q)[0] for q in queries(doc).values()))
    assert {"autoscale.decision", "autoscale.action", "snapshots.directory", "failover.step"} <= read_events  # what the issue asks


def test_a_workbook_reading_a_field_or_event_tandem_does_not_emit_is_caught(emitted: dict[str, set[str]]) -> None:
    doc = json.loads(WORKBOOK.read_text(encoding="utf-8").replace("e.hosts_running", "e.hosts_runing"))
    assert unmet(doc, emitted) == ["hosts_sessions: autoscale.decision.hosts_runing"]
    doc["items"].append({"type": 3, "name": "extra", "content": {"query": 'AppTraces | where tostring(e.event) == "autoscale.guess"'}})
    assert "extra: autoscale.guess" in unmet(doc, emitted)


def test_the_workbook_is_deployed_on_the_workspace_with_a_time_range_for_every_panel() -> None:
    doc = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    panels = [i["content"] for i in doc["items"] if i["type"] == 3]
    assert panels and all(p["resourceType"] == "microsoft.operationalinsights/workspaces" for p in panels)
    assert all(p["timeContextFromParameter"] == "TimeRange" and p["query"].startswith("AppTraces\n") for p in panels)
    assert doc["fallbackResourceIds"] == ["__WORKSPACE_ID__"]
    bicep = (ROOT / "infra" / "app" / "workbook.bicep").read_text(encoding="utf-8")
    assert "replace(loadTextContent('workbook.json'), '__WORKSPACE_ID__', workspaceId)" in bicep
    main = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    module = re.search(r"module workbook 'app/workbook\.bicep' = \{\n(.*?)\n\}", main, re.S)
    assert module and "workspaceId: monitoring.outputs.workspaceId" in module.group(1)
