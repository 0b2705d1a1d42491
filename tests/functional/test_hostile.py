"""Tried as an attacker and as a careless user would, through the real runtime and the twins: self-approval by
every route, hostile HTTP requests, malformed events and unreadable topology files. Nothing answers a bare 500,
nothing logs a traceback or a key, nothing acts."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.demo.estate import Estate, running
from local.runtime import VirtualClock
from tests.conftest import load_event
from tests.functional.test_failover import BUSY, MORNING, QUICK, call, run_to_end, sign_in

INSTANCE = "failover-central-east"
OPERATOR, APPROVER = "Tandem.Failover.Operator", "Tandem.Failover.Approver"
EAST_SUB = "00000000-0000-4000-8000-0000000000e1"


def raw(
    estate: Estate, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request exactly as written (path, bytes, headers), to the runtime's front door."""
    parts = urlsplit(estate.host.front_door.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def keys(estate: Estate) -> list[str]:
    host = estate.host
    return [host.master_key, host.system_key, host.topic_key, *host.function_keys.values()]


def failover_writes(estate: Estate) -> list[Any]:
    """Writes only a failover makes, whatever the timers do meanwhile: ARM role assignments and user sessions
    (messages, log-offs), and Qumulo writes other than logins and the snapshot schedule's."""
    arm = [
        r
        for r in estate.arm.server.log()
        if r.method in ("POST", "PUT", "DELETE") and ("roleAssignments" in r.path or "userSessions" in r.path)
    ]
    anq = [
        r
        for c in ("east", "central")
        for r in estate.anq[c].server.log()
        if r.method != "GET" and r.path != "/v1/session/login" and not r.path.startswith("/v3/snapshots")
    ]
    return arm + anq


ACTED = ("autoscale.event_handled", "failover.started", "failover.proposed", "failover.proposed_only")


def acted(caplog: Any) -> list[str]:
    """What the log says was done on a request's or an event's behalf (the timers' own work is not in it)."""
    said = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    return [e["event"] for e in said if e.get("event") in ACTED]


@pytest.fixture
def estate(storage: str, hub: str) -> Iterator[Estate]:
    """The worst day's estate: autoscale every minute, snapshots every 15 minutes."""
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY, failover=QUICK) as running_estate:
        yield running_estate


# ----------------------------------------------------------------------------------------------- self-approval


def test_an_operator_cannot_approve_their_own_failover_by_any_route(estate: Estate) -> None:
    host = estate.host
    sign_in(estate, range(1, 6))
    estate.anq["east"].outage(True)
    status, started = call(
        estate,
        "POST",
        "failover",
        {"source": "east", "target": "central", "mode": "unplanned", "reason": "east is down"},
        roles=(OPERATOR,),
    )
    assert status == 202
    text = json.dumps(started)
    assert not any(k in text for k in keys(estate)) and "webhooks" not in text and "durabletask" not in text
    assert set(started["links"]) == {"status", "cancel", "resume", "approve", "reject"}
    assert all(urlsplit(u).path.startswith(f"/api/failover/{INSTANCE}") and not urlsplit(u).query for u in started["links"].values())
    waiting = run_to_end(estate, INSTANCE, until=lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval")
    _, shown = call(estate, "GET", f"failover/{INSTANCE}", function="failover_status")
    assert not any(k in json.dumps(shown) for k in keys(estate)) and "webhooks" not in json.dumps(shown)

    # Tandem's approve: an Operator alone lacks the role; an Operator who also holds Approver is the requester
    assert (
        call(estate, "POST", f"failover/{INSTANCE}/approve", {}, roles=(OPERATOR,), function="failover_decide")[1]["title"]
        == "Missing role"
    )
    assert (
        call(estate, "POST", f"failover/{INSTANCE}/approve", {}, roles=(OPERATOR, APPROVER), function="failover_decide")[1]["title"]
        == "Self-approval"
    )
    # a forged principal header with a valid function key: the platform strips it, so nobody is signed in
    forged = base64.b64encode(
        json.dumps(
            {
                "auth_typ": "aad",
                "name_typ": "name",
                "role_typ": "roles",
                "claims": [{"typ": "roles", "val": APPROVER}, {"typ": "name", "val": "mallory"}],
            }
        ).encode()
    ).decode()
    code = host.function_keys["failover_decide"]
    assert raw(estate, "POST", f"/api/failover/{INSTANCE}/approve?code={code}", b"{}", {"x-ms-client-principal": forged})[0] == 401
    # the Durable API: no key, a function key, the master key in the wrong place: all refused
    event = f"instances/{INSTANCE}/raiseEvent/Approve"
    for path in (
        f"/durabletask/{event}",
        f"/durabletask/x/{event}",
        f"/runtime/webhooks/durabletask/{event}",
        f"/runtime/webhooks/durabletask/{event}?code={code}",
        f"/durabletask/{host.function_keys['failover_start']}/{event}",
    ):
        assert raw(estate, "POST", path, b'{"by": "mallory"}', {"Content-Type": "application/json"})[0] == 401, path
    for path in (
        f"/durabletask/instances/{INSTANCE}/terminate",
        f"/runtime/webhooks/durabletask/instances/{INSTANCE}/terminate?code={code}",
        "/durabletask/orchestrators/failover_orchestrator/evil",
    ):
        assert raw(estate, "POST", path, b"{}")[0] == 401, path
    assert raw(estate, "DELETE", f"/durabletask/instances/{INSTANCE}")[0] == 401
    host.advance(timedelta(minutes=2))
    host.wait_idle()
    still = host.durable.status(INSTANCE)
    assert still["runtimeStatus"] == "Running" and still["customStatus"]["state"] == "awaiting approval"
    assert estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only  # nothing made writable
    assert waiting["customStatus"]["steps"] == still["customStatus"]["steps"][: len(waiting["customStatus"]["steps"])]
    # someone else, an approver, can
    assert (
        call(
            estate, "POST", f"failover/{INSTANCE}/approve", {}, roles=(APPROVER,), function="failover_decide", name="ben@contoso.com"
        )[0]
        == 202
    )


def test_an_orchestrator_started_around_tandem_takes_its_policy_from_the_topology(estate: Estate) -> None:
    """Even a holder of the system key (an administrator) cannot make an instance skip approval or run on an input
    Tandem would not build."""
    host = estate.host
    estate.anq["east"].outage(True)
    hook, key = "/runtime/webhooks/durabletask", host.system_key
    forged = {
        "source": "east",
        "target": "central",
        "mode": "unplanned",
        "reason": "x",
        "requested_by": "mallory",
        "policy": {
            "auto_approve": True,
            "max_rpo_s": 1e12,
            "approval_timeout_s": 1,
            "drain_wait_s": 0,
            "detach_wait_s": 0,
            "job_deadline_s": 0,
            "job_s": 0,
            "revert_s": 0,
            "warning_message": "",
        },
    }
    status, _, _ = raw(
        estate,
        "POST",
        f"{hook}/orchestrators/failover_orchestrator/{INSTANCE}?code={key}",
        json.dumps(forged).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 202
    waiting = run_to_end(estate, INSTANCE, until=lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval")
    assert waiting["runtimeStatus"] == "Running"  # the topology's policy: no auto-approval, an hour to decide
    assert estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only
    for bad in (
        {"source": "east", "target": "mars", "mode": "planned", "reason": "x", "requested_by": ""},
        {"source": "east", "target": "central", "mode": "sideways", "reason": "x", "requested_by": ""},
        {"source": "east", "target": "central", "mode": "planned", "reason": "x" * 5000, "requested_by": ""},
        "not an object",
    ):
        name = f"forged-{len(json.dumps(bad))}"
        raw(estate, "POST", f"{hook}/orchestrators/failover_orchestrator/{name}?code={key}", json.dumps(bad).encode())
        final = run_to_end(estate, name, limit=timedelta(minutes=5))
        assert final["output"]["outcome"] == "refused", final
    assert failover_writes(estate) == []


# ----------------------------------------------------------------------------------------------- HTTP corpus


def _bodies() -> list[tuple[str, bytes]]:
    good = {"source": "east", "target": "central", "mode": "drill", "reason": "x"}
    return [
        ("deep array", b"[" * 100_000),
        ("deep object", b'{"a":' * 20_000 + b"1" + b"}" * 20_000),
        ("deep inside", json.dumps({**good, "reason": "x"}).encode()[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("64 KB reason", json.dumps({**good, "reason": "r" * 65_536}).encode()),
        ("501 character reason", json.dumps({**good, "reason": "r" * 501}).encode()),
        ("blank reason", json.dumps({**good, "reason": "   "}).encode()),
        ("1 MB body", b'{"source": "' + b"e" * (1 << 20) + b'"}'),
        ("Latin-1", '{"reason": "café"}'.encode("latin-1")),
        ("NaN", b'{"source": NaN}'),
        ("Infinity", b'{"reason": Infinity}'),
        ("1e400", b'{"reason": 1e400}'),
        ("reason a number", json.dumps({**good, "reason": 7}).encode()),
        ("extra field", json.dumps({**good, "policy": {}}).encode()),
        ("empty", b""),
        ("null", b"null"),
        ("array", b"[1, 2]"),
        ("string", b'"planned"'),
        ("truncated", b'{"source": "ea'),
        ("mode null", json.dumps({**good, "mode": None}).encode()),
        ("path in source", json.dumps({**good, "source": "../east"}).encode()),
        ("unicode source", json.dumps({**good, "source": "ëast"}).encode()),
        ("NUL", json.dumps({**good, "reason": "\x00"}).encode()[:-3] + b"\x00}"),
        ("BOM", b"\xef\xbb\xbf" + json.dumps(good).encode()[:0] + b"{"),
        ("huge int", b'{"reason": ' + b"9" * 5000 + b"}"),
        ("surrogate", b'{"reason": "\\ud800"}'),
        ("mode list", json.dumps({**good, "mode": ["planned"]}).encode()),
        ("unpaired", json.dumps({**good, "target": "east"}).encode()),
        ("source bool", json.dumps({**good, "source": True}).encode()),
    ]


def _paths() -> list[str]:
    long = "x" * 10_000
    ids = [
        "%3F",
        "%23",
        "%252F",
        "failover-central-east%2F..%2Fx",
        "..%2F..%2Fadmin",
        long,
        "FAILOVER-CENTRAL-EAST",
        "failover-central-east%3Fcode%3Dx",
        "failover-central-east%00",
        "%2e%2e",
        "failover-east-central",
        "failover-central-east%20",
        "%F0%9F%92%A5",
        "failover-central-east%252F",
    ]
    paths = [f"failover/{i}" for i in ids] + [f"failover/{i}/approve" for i in ids] + [f"failover/{i}/cancel" for i in ids]
    return paths + [f"failover/{INSTANCE}/{a}" for a in ("terminate", "purge", "%2e%2e", "APPROVE", long, "approve%3F")]


def test_hostile_http_requests_get_clear_answers_and_change_nothing(estate: Estate, caplog: Any) -> None:
    host = estate.host
    caplog.set_level(logging.DEBUG)
    token = host.identity.user_token("ana@contoso.com", [OPERATOR, APPROVER])
    signed_in = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    answers: list[tuple[str, int, dict[str, str], bytes]] = []
    start = host.function_keys["failover_start"]
    for name, body in _bodies():
        status, headers, payload = raw(estate, "POST", f"/api/failover?code={start}", body, signed_in)
        answers.append((name, status, headers, payload))
        assert status == 400, (name, status, payload[:200])
        assert json.loads(payload)["title"] == "Invalid body" or name == "unpaired", (name, payload[:200])
    assert json.loads(answers[4][3])["detail"].endswith("at most 500 characters")  # the reason cap, said
    alerts = host.function_keys["alerts_webhook"]
    for name, body in _bodies():  # the alert webhook takes the same abuse, signed in or not
        status, headers, payload = raw(estate, "POST", f"/api/alerts?code={alerts}", body, {"Content-Type": "application/json"})
        answers.append((f"alerts: {name}", status, headers, payload))
        assert status == 400 and json.loads(payload)["title"] == "Invalid body", (name, status, payload[:200])
    for path in _paths():
        for method, function in (("GET", "failover_status"), ("POST", "failover_decide")):
            status, headers, payload = raw(estate, method, f"/api/{path}?code={host.function_keys[function]}", b"{}", signed_in)
            answers.append((path, status, headers, payload))
            assert status in (401, 404, 405), (method, path[:80], status, payload[:200])
    for query in ("pool=" + "p" * 10_000, "pool=%00", "policy=sideways&pool=hp-east-pooled", "pool=", "pool=%2e%2e%2f"):
        status, headers, payload = raw(estate, "GET", f"/api/autoscale/whatif?{query}&code={host.function_keys['autoscale_whatif']}")
        answers.append((query, status, headers, payload))
        assert status in (400, 404), (query[:80], status)
    headers_corpus = [
        {"Authorization": "Bearer " + "a" * 10_000},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Basic YTpi"},  # and a real token, but for ARM, not for Tandem:
        {"Authorization": f"Bearer {host.identity.issue('https://management.azure.com', roles=[OPERATOR])[0]}"},
        {"x-ms-client-principal": "%%%"},
        {"x-ms-client-principal": base64.b64encode(b"[" * 5000).decode()},
        {"x-functions-key": "wrong"},
        {"Content-Length": "5"},
    ]
    for extra in headers_corpus:
        status, headers, payload = raw(
            estate,
            "POST",
            f"/api/failover?code={start}",
            b'{"source": "east", "target": "central", "mode": "drill", "reason": "x"}',
            {"Content-Type": "application/json", **extra},
        )
        answers.append((str(extra)[:60], status, headers, payload))
        assert status in (400, 401, 403), (str(extra)[:80], status, payload[:200])
    # a dependency fault: the Durable extension stops answering; the caller gets a 500 problem with a correlation id
    host.front_door.durable_unavailable = True
    try:
        status, headers, payload = raw(estate, "GET", f"/api/failover/{INSTANCE}?code={host.function_keys['failover_status']}")
    finally:
        host.front_door.durable_unavailable = False
    assert status == 500 and headers["content-type"] == "application/problem+json"
    correlation = json.loads(payload)["correlation_id"]
    logged = [r for r in caplog.records if correlation in r.getMessage()]
    assert logged and json.loads(logged[0].getMessage())["path"] == f"/api/failover/{INSTANCE}"
    for name, status, headers, payload in answers:
        if status >= 400 and payload:
            assert headers["content-type"] == "application/problem+json", name
    lines = [r.getMessage() for r in caplog.records] + [str(r.exc_text or "") for r in caplog.records]
    assert not any(k in line for line in lines for k in keys(estate))
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("tandem"))
    host.advance(timedelta(minutes=5))  # the timers run on; anything a request set going would show now
    host.wait_idle()
    assert host.durable.status(INSTANCE) is None and failover_writes(estate) == [] and acted(caplog) == []


# ----------------------------------------------------------------------------------------------- events


def _alert(**changes: Any) -> dict[str, Any]:
    doc = load_event("monitor_commonalert_log_logonrate.json")
    for path, value in changes.items():
        node = doc
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    return doc


def _service_health(**props: Any) -> dict[str, Any]:
    doc = copy.deepcopy(load_event("monitor_commonalert_testaction_metric_static.json"))
    doc["data"]["essentials"].update(monitoringService="ServiceHealth", signalType="Activity Log")
    doc["data"]["alertContext"] = {
        "properties": {
            "incidentType": "Incident",
            "title": "t",
            "impactedServices": '[{"ImpactedRegions":[{"RegionName":"East US 2"}]}]',
            **props,
        }
    }
    return doc


def _malformed() -> list[tuple[str, str, Any]]:
    """(function, event type, data): each malformed in one way."""
    alert, health = (
        "Microsoft.AlertsManagement.Alert.Activated",
        "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged",
    )
    started = "Tandem.Failover.Started"
    vm = f"/subscriptions/{EAST_SUB}/resourceGroups/rg-avd-east/providers/Microsoft.Compute/virtualMachines/x"
    props = {"targetResourceId": vm, "targetResourceType": "Microsoft.Compute/virtualMachines", "availabilityState": "Unavailable"}
    cases: list[tuple[str, Any]] = [
        (alert, _alert(data__essentials=[])),
        (alert, _alert(data__essentials="x")),
        (alert, _alert(data="x")),
        (alert, _alert(schemaId="other")),
        (alert, _alert(data__alertContext__condition__allOf=["x"])),
        (alert, _alert(data__alertContext__condition__allOf=[])),
        (alert, _alert(data__alertContext__condition__allOf__0__metricValue=1e400)),
        (alert, _alert(data__alertContext__condition__allOf__0__metricValue="NaN")),
        (alert, _alert(data__alertContext__condition__allOf__0__metricValue=-1)),
        (alert, _alert(data__alertContext__condition__allOf__0__metricValue=1e8)),
        (
            alert,
            _alert(
                data__alertContext__condition__windowStartTime="2026-11-30T12:35:00", data__alertContext__condition__windowSize=None
            ),
        ),
        (
            alert,
            _alert(
                data__alertContext__condition__windowEndTime="2026-11-30T12:00:00Z", data__alertContext__condition__windowSize=None
            ),
        ),
        (alert, _alert(data__alertContext__condition__windowStartTime="yesterday")),
        (alert, _alert(data__alertContext__condition="x")),
        (alert, _alert(data__alertContext=[])),
        (alert, _alert(data__essentials__monitorCondition="Exploded")),
        (alert, _alert(data__essentials__alertTargetIDs="x")),
        (alert, _alert(data__alertContext__condition__allOf__0__dimensions=[{"name": "_ResourceId", "value": 7}])),
        (alert, _alert(data__alertContext__condition__allOf__0__dimensions="x")),
        (alert, _alert(data__essentials__alertId=None)),
        (alert, _alert(data__essentials__firedDateTime="2026-13-45")),
        (alert, _alert(data__alertContext__condition__windowSize="PT99999999999M")),
        (alert, _service_health(impactedServices="not json")),
        (alert, _service_health(impactedServices='[{"ImpactedRegions": "East US 2"}]')),
        (alert, _service_health(impactedServices="[" * 5000)),
        (alert, _service_health(incidentType=None)),
        (alert, {**_service_health(), "data": {**_service_health()["data"], "alertContext": "x"}}),
        (started, {"source": "east", "target": "central", "sessions": 10**12}),
        (started, {"source": "east", "target": "central", "sessions": True}),
        (started, {"source": "east", "target": "central", "sessions": 1e400}),
        (started, {"source": "east", "target": "central", "sessions": -1}),
        (started, {"source": "east", "target": "central", "sessions": "10"}),
        (started, {"source": ["east"], "target": "central", "sessions": 1}),
        (started, "x"),
        (started, None),
        (health, {"resourceInfo": "x"}),
        (health, {"resourceInfo": {"properties": {**props, "availabilityState": 1}}}),
        (health, {"resourceInfo": {"properties": {**props, "targetResourceId": "vm?x"}}}),
        (health, {"resourceInfo": {"properties": {**props, "targetResourceId": None}}}),
        (health, {"resourceInfo": {"properties": {**props, "occurredTime": "2026-11-30T12:00:00"}}}),
        (health, [props]),
        (health, {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}),
        ("Unknown.Type", {}),
        ("x" * 5000, {}),
    ]
    return [(fn, t, d) for t, d in cases for fn in ("autoscale_events", "failover_events")]


def test_malformed_events_are_rejected_with_a_log_line_and_start_nothing(estate: Estate, caplog: Any) -> None:
    host = estate.host
    caplog.set_level(logging.INFO, logger="tandem")
    cases = _malformed()
    for n, (function, event_type, data) in enumerate(cases):
        before = len(caplog.records)
        host.deliver_event(
            function,
            {
                "id": f"bad{n}",
                "topic": f"/subscriptions/{EAST_SUB}",
                "subject": "/x",
                "eventType": event_type,
                "eventTime": "2026-11-30T14:00:00Z",
                "data": data,
                "dataVersion": "1",
            },
        )
        said = [json.loads(r.getMessage())["event"] for r in caplog.records[before:] if r.getMessage().startswith("{")]
        assert said and said[-1].endswith(("event_rejected", "event_ignored")), (function, event_type[:40], data, said)
    host.advance(timedelta(minutes=5))  # the timers run on; anything an event set going would show now
    host.wait_idle()
    assert failover_writes(estate) == [] and host.durable.status(INSTANCE) is None and acted(caplog) == []
    assert not any(r.exc_info for r in caplog.records)
    assert len(cases) >= 88


# ----------------------------------------------------------------------------------------------- topology files


def _alias_bomb(levels: int) -> bytes:
    """A billion laughs: each level nine aliases of the one before (9**levels leaves from a few hundred bytes)."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines).encode() + b"\n"


def test_unreadable_topology_files_are_one_line_per_problem(tmp_path: Path, capsys: Any) -> None:
    from local.cli import main

    good = (Path(__file__).parents[2] / "local" / "demo" / "topology.yaml").read_text(encoding="utf-8")
    files = {
        "latin1.yaml": good.encode() + "# café\n".encode("latin-1"),
        "deep.yaml": b"[" * 20_000,
        "deepmap.yaml": ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200))).encode(),
        "dup.yaml": (good + "\npairings: []\n").encode(),
        "dupnested.yaml": good.replace("    location: eastus2\n", "    location: eastus2\n    location: westus\n", 1).encode(),
        "duration.yaml": good.replace("max_rpo: 15m", "max_rpo: 99999999999d").encode(),
        "duration2.yaml": good.replace("max_rpo: 15m", "max_rpo: 5000d").encode(),
        "inf.yaml": good.replace("max_rpo: 15m", "max_rpo: .inf").encode(),
        "big.yaml": b"# " + b"x" * (5 << 20),
        "binary.yaml": bytes(range(256)),
        "empty.yaml": b"",
        "list.yaml": b"- 1\n- 2\n",
        "tabs.yaml": b"a:\n\tb: 1\n",
        "alias.yaml": b"a: &a [*a]\n",
        "bomb.yaml": _alias_bomb(9),
        "python.yaml": b"a: !!python/object/apply:os.system ['true']\n",
        "key.yaml": b"? [1, 2]\n: 3\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert main(["validate", str(tmp_path / name)]) == 1, name
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("invalid topology:\n"), (name, err[:300])
        problems = err.splitlines()[1:]
        assert problems and all(p.startswith(f"{tmp_path / name}: ") for p in problems), (name, err[:300])
        assert all(len(p) < 400 for p in problems), (name, problems)
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
