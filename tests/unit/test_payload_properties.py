"""Property tests: generated JSON, and real payloads with one part replaced by generated JSON, thrown at every
event parser and HTTP body parser. Only the documented rejection (InputError, or a 400 problem) comes out."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import azure.functions as func
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.http import body_of
from shared import alerts, payloads
from shared.autoscale import signals as autoscale_signals
from shared.config import load_topology
from shared.errors import InputError
from shared.failover import signals as failover_signals
from tests.conftest import load_event

TOPOLOGY = load_topology(Path(__file__).parents[2] / "local" / "demo" / "topology.yaml")
TOPIC = "/subscriptions/00000000-0000-4000-8000-0000000000e1"
TYPES = [
    "Microsoft.AlertsManagement.Alert.Activated",
    "Microsoft.AlertsManagement.Alert.Resolved",
    payloads.HEALTH_CHANGED,
    autoscale_signals.FAILOVER_STARTED,
    "Other.Type",
    "",
]
ALERT = "Microsoft.AlertsManagement.Alert.Activated"
SAMPLES = [
    (ALERT, load_event("monitor_commonalert_log_logonrate.json")),
    (ALERT, load_event("monitor_commonalert_testaction_metric_static.json")),
    (payloads.HEALTH_CHANGED, load_event("eg_HealthResources_AvailabilityStatusChanged_eventgridschema.json")["data"]),
    (autoscale_signals.FAILOVER_STARTED, {"source": "east", "target": "central", "sessions": 40}),
    (
        ALERT,
        {
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": {"alertId": "a", "monitorCondition": "Fired", "monitoringService": "ServiceHealth"},
                "alertContext": {
                    "properties": {
                        "incidentType": "Incident",
                        "stage": "Active",
                        "impactedServices": '[{"ServiceName": "Virtual Machines", "ImpactedRegions": [{"RegionName": "East US 2"}]}]',
                    }
                },
            },
        },
    ),
    (ALERT, load_event("monitor_commonalert_testaction_resourcehealth.json")),
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "Fired",
            "Resolved",
            "Log",
            "ServiceHealth",
            "Resource Health",
            "Incident",
            "Unavailable",
            "azureMonitorCommonAlertSchema",
            "PT5M",
            "2026-11-30T12:00:00",
            "2026-11-30T12:00:00Z",
            TOPIC,
            "east",
            "central",
            "1e400",
            "NaN",
        ]
    )
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.text(max_size=12)
        | st.sampled_from(
            [
                "data",
                "essentials",
                "alertContext",
                "condition",
                "allOf",
                "properties",
                "metricValue",
                "dimensions",
                "sessions",
                "resourceInfo",
            ]
        ),
        inner,
        max_size=4,
    ),
    max_leaves=25,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated(draw: Any) -> tuple[str, Any]:
    """A real payload (with its event type) with one part, anywhere, replaced by generated JSON."""
    event_type, doc = draw(st.sampled_from(SAMPLES))
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(_paths(doc)))
    value = draw(documents)
    if not path:
        return event_type, value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return event_type, doc


events = mutated() | st.tuples(st.sampled_from(TYPES), documents)


def _only_rejections(parse: Any, *args: Any) -> Any:
    """The parser's answer, or None when it rejected the input with the documented InputError."""
    try:
        return parse(*args)
    except InputError:
        return None


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events)
def test_the_autoscale_event_parser_only_rejects(event: tuple[str, Any]) -> None:
    signal = _only_rejections(autoscale_signals.parse, *event)
    if isinstance(signal, autoscale_signals.LogonRate):  # what it accepts is bounded
        assert math.isfinite(signal.per_minute) and 0 <= signal.per_minute <= payloads.MAX_RATE
    if isinstance(signal, autoscale_signals.FailoverStarted):
        assert type(signal.sessions) is int and 0 <= signal.sessions <= payloads.MAX_SESSIONS


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events)
def test_the_failover_event_parser_only_rejects(event: tuple[str, Any]) -> None:
    signal = _only_rejections(failover_signals.parse, TOPOLOGY, event[0], TOPIC, event[1])
    if signal is not None:
        assert isinstance(signal, failover_signals.Proposal | failover_signals.VmHealth | failover_signals.Ignored)
        assert len(getattr(signal, "reason", "") or getattr(signal, "why", "")) <= 2500


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events)
def test_the_alert_router_only_rejects(event: tuple[str, Any]) -> None:
    """POST /api/alerts: the common-schema model, then the route; bounded answers or InputError, nothing else."""

    def parse_and_route(data: Any) -> Any:
        return alerts.route(TOPOLOGY, payloads.validate(payloads.CommonAlert, data, "alert"))

    routed = _only_rejections(parse_and_route, event[1])
    if isinstance(routed, alerts.LogonRate):
        assert math.isfinite(routed.per_minute) and 0 <= routed.per_minute <= payloads.MAX_RATE
    if isinstance(routed, alerts.Propose | alerts.Withdraw):
        assert routed.region in {r.name for r in TOPOLOGY.regions} and len(routed.reason) <= 200


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | documents.map(lambda d: json.dumps(d).encode())
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)
    | st.integers(1, 3000).map(lambda n: b'{"a":' * n)
)
def test_the_json_reader_only_rejects(raw: bytes) -> None:
    _only_rejections(payloads.loads, raw)


def _request(body: bytes) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="http://127.0.0.1/api/failover", headers={}, body=body)


@settings(max_examples=300, deadline=None)
@given(
    documents
    | st.fixed_dictionaries(
        {
            "source": scalars,
            "target": scalars,
            "mode": st.sampled_from(["planned", "unplanned", "drill", "failback", "x"]) | scalars,
            "reason": scalars,
        }
    )
)
def test_the_failover_body_parser_answers_400_or_a_valid_request(doc: Any) -> None:
    try:
        answer = body_of(_request(json.dumps(doc).encode()), payloads.FailoverRequest)
    except InputError as exc:  # the guard answers it as a 400 problem with this title
        assert (exc.http_status, exc.title) == (400, "Invalid body")
    else:
        assert answer.mode in ("planned", "unplanned", "drill", "failback") and 0 < len(answer.reason) <= 500
