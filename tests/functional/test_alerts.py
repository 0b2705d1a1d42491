"""What Azure really sends, through the routes it really uses, on the worst day's estate (autoscale every minute,
snapshots every 15): action-group alerts to POST /api/alerts, Resource Health for session host VMs over Event
Grid, and Tandem's own watch of each ANQ cluster."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.demo.estate import Estate, running
from local.runtime import VirtualClock
from tests.conftest import load_event
from tests.functional.test_failover import BUSY, EAST_SUB, MORNING, run_to_end

INSTANCE = "failover-central-east"
EAST_SVC_REGION = "East US 2"  # how Service Health names eastus2, the demo's east


@pytest.fixture
def estate(storage: str, hub: str) -> Iterator[Estate]:
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY, hang_s=0.3) as running_estate:
        yield running_estate


def post_alert(estate: Estate, alert: Any) -> tuple[int, dict[str, Any]]:
    """What the action group's Azure Function receiver does: POST the common-schema alert with the function key."""
    return estate.host.http("POST", "alerts", body=alert, function="alerts_webhook")


def preflights(estate: Estate) -> int:
    return [e["type"] for e in estate.host.received].count("Tandem.Failover.Preflight")


def service_health(
    *,
    stage: str = "Active",
    incident: str = "Incident",
    service: str = "Virtual Machines",
    region: str = EAST_SVC_REGION,
    synthetic: bool = False,
    condition: str = "Fired",
    alert_id: str = "sh-1",
) -> dict[str, Any]:
    """A Service Health activity-log alert in the common schema: the published essentials of the test-action
    sample with the published Service Health alertContext (maintenance sample), set to an incident."""
    doc = copy.deepcopy(load_event("monitor_commonalert_testaction_metric_static.json"))
    context = load_event("monitor_alertContext_fragment_servicehealth_maintenance.json")["alertContext"]
    props = context["properties"]
    props.update(
        incidentType=incident,
        stage=stage,
        title=f"{service} degraded in {region}",
        service=service,
        region=region,
        impactedServices=json.dumps([{"ImpactedRegions": [{"RegionName": region}], "ServiceName": service}]),
    )
    if synthetic:
        props["IsSynthetic"] = "True"
    doc["data"]["essentials"].update(
        monitoringService="ServiceHealth",
        signalType="Activity Log",
        monitorCondition=condition,
        alertRule="ala-tandem-service-health",
        alertId=f"/subscriptions/{EAST_SUB}/providers/Microsoft.AlertsManagement/alerts/{alert_id}",
        alertTargetIDs=[f"/subscriptions/{EAST_SUB}"],
    )
    doc["data"]["alertContext"] = context
    return doc


# ----------------------------------------------------------------------------------------------- the webhook


def test_published_alerts_are_routed_as_documented_and_only_an_active_incident_proposes(estate: Estate) -> None:
    host = estate.host
    quiet = [
        ("a test action (synthetic)", service_health(synthetic=True, alert_id="t1")),
        ("an unused service", service_health(service="Azure Synapse Analytics", alert_id="t2")),
        ("a region outside the estate", service_health(region="West Europe", alert_id="t3")),
        ("planned maintenance", service_health(incident="Maintenance", alert_id="t4")),
        ("a resolved incident", service_health(stage="Resolved", condition="Resolved", alert_id="t5")),
        ("a metric alert on a VM", load_event("monitor_commonalert_testaction_metric_static.json")),
        ("Resource Health of a VM, user initiated", load_event("monitor_commonalert_testaction_resourcehealth.json")),
        ("a resolved metric alert", load_event("monitor_commonalert_metric_vm_cpu_resolved.json")),
    ]
    for n, (what, alert) in enumerate(quiet):
        alert["data"]["essentials"]["alertId"] += f"-{n}"  # the samples share one alertId; these are seven alerts
        status, answer = post_alert(estate, alert)
        assert status == 200 and answer["status"] == "ignored", (what, status, answer)
    host.wait_idle()
    assert host.durable.status(INSTANCE) is None and preflights(estate) == 0
    assert post_alert(estate, load_event("monitor_activitylog_legacy_webhook_servicehealth.json"))[0] == 400  # not common
    assert post_alert(estate, [1, 2])[0] == 400
    # the real thing, delivered five times (the action group retries on 408/429/503/504): one proposal
    answers = [post_alert(estate, service_health(alert_id="incident-1")) for _ in range(5)]
    assert [a[0] for a in answers] == [202, 200, 200, 200, 200], answers
    assert answers[0][1]["outcome"] == "proposed" and {a[1]["status"] for a in answers[1:]} == {"repeat"}
    waiting = run_to_end(estate, INSTANCE, until=lambda s: (s.get("customStatus") or {}).get("state") == "awaiting approval")
    assert waiting["input"]["requested_by"] == "alert" and "Virtual Machines degraded" in waiting["input"]["reason"]
    assert preflights(estate) == 1 and estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only
    # the incident resolves while the proposal waits: the proposal is withdrawn, nothing moved
    status, answer = post_alert(estate, service_health(alert_id="incident-1", stage="Resolved", condition="Resolved"))
    assert status == 202 and answer["outcome"] == "withdrawn"
    final = run_to_end(estate, INSTANCE, limit=timedelta(minutes=5))
    assert final["output"]["outcome"] == "cancelled" and preflights(estate) == 1
    assert estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only


# ----------------------------------------------------------------------------------------------- the ANQ watch


def test_an_anq_cluster_that_stops_answering_for_the_window_is_proposed_once_and_a_blip_is_not(estate: Estate, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="tandem.failover")
    host, east = estate.host, estate.anq["east"]
    east.outage(True)  # a blip: three minutes
    host.advance(timedelta(minutes=3))
    east.outage(False)
    host.advance(timedelta(minutes=3))
    host.wait_idle()
    assert host.durable.status(INSTANCE) is None
    east.outage(True)  # the real thing
    host.advance(timedelta(minutes=4))
    host.wait_idle()
    assert host.durable.status(INSTANCE) is None  # four minutes: within the window
    host.advance(timedelta(minutes=4))
    host.wait_idle()
    status = host.durable.status(INSTANCE)
    assert status is not None and status["input"]["mode"] == "unplanned"
    assert "anq-east has not answered Tandem for 5 min" in status["input"]["reason"], status["input"]["reason"]
    assert "session host VMs unplanned-unavailable" in status["input"]["reason"]
    host.advance(timedelta(minutes=3))
    host.wait_idle()
    assert preflights(estate) == 1  # one proposal for the outage, however long it lasts
    said = [json.loads(r.message)["event"] for r in caplog.records if r.message.startswith("{")]
    assert said.count("failover.proposed") == 1 and said.count("failover.anq_not_answering") >= 8
    assert estate.anq["central"].cluster.directory("/profiles-dr/fslogix").read_only  # waiting for an approver


# ----------------------------------------------------------------------------------------------- VM share


def _vm_event(kind: str, vm: Any, n: int, **props: Any) -> dict[str, Any]:
    event = load_event(
        "eg_HealthResources_AvailabilityStatusChanged_eventgridschema.json"
        if kind == "status"
        else "eg_HealthResources_ResourceAnnotated_eventgridschema.json"
    )
    event.update(id=f"{kind}-{n}", topic=f"/subscriptions/{EAST_SUB}", subject=vm.id)
    event["data"]["resourceInfo"]["properties"].update(targetResourceId=vm.id, **props)
    return event


def test_evening_deallocations_propose_nothing_and_an_unplanned_loss_of_most_hosts_does(estate: Estate) -> None:
    host, arm = estate.host, estate.arm.estate
    pool = arm.pool(EAST_SUB, "rg-avd-east", "hp-east-pooled")
    vms = [h.vm for h in pool.hosts.values() if h.vm is not None]
    for n, vm in enumerate(vms[:15]):  # the evening: an administrator's (or Tandem's) deallocations
        host.deliver_event(
            "failover_events",
            _vm_event("annotation", vm, n, annotationName="VirtualMachineDeallocationInitiated", context="Customer Initiated"),
        )
        host.deliver_event(
            "failover_events", _vm_event("status", vm, n, availabilityState="Unavailable", previousAvailabilityState="Available")
        )
    host.wait_idle()
    assert host.durable.status(INSTANCE) is None and preflights(estate) == 0
    host.advance(timedelta(minutes=30))
    for vm in vms:  # later: every host started again ...
        arm.start_vm(vm)
    for n, vm in enumerate(vms[:8]):  # ... then a platform failure takes 8 of 20: 40%, under the policy's 50%
        host.deliver_event("failover_events", _vm_event("status", vm, 100 + n, availabilityState="Unavailable"))
    host.wait_idle()
    assert host.durable.status(INSTANCE) is None
    for n, vm in enumerate(vms[8:11]):  # 11 of 20: more than half, none by the customer's hand
        host.deliver_event("failover_events", _vm_event("status", vm, 200 + n, availabilityState="Unavailable"))
    host.wait_idle()
    status = host.durable.status(INSTANCE)
    assert status is not None and "11 of 20 session host VMs unavailable" in status["input"]["reason"]
    host.deliver_event(
        "failover_events",
        _vm_event("status", vms[0], 999, availabilityState="Unavailable")
        | {"topic": "/subscriptions/99999999-0000-4000-8000-000000000000"},
    )  # not the estate's: rejected
    host.wait_idle()
    assert preflights(estate) == 1


def test_propose_only_logs_and_publishes_a_proposal_and_starts_nothing(storage: str, hub: str) -> None:
    """A deployment's first weeks: the same incident, delivered as Azure delivers it, only says what it would do."""
    with running(storage, VirtualClock(MORNING), hub=hub, settings=BUSY, hang_s=0.3, failover={"propose_only": True}) as estate:
        status, answer = post_alert(estate, service_health(alert_id="incident-dry"))
        assert status == 202 and answer["outcome"] == "proposed_only"
        estate.host.advance(timedelta(minutes=2))
        estate.host.wait_idle()
        assert estate.host.durable.status(INSTANCE) is None and preflights(estate) == 0
        proposed = [e for e in estate.host.received if e["type"] == "Tandem.Failover.Proposed"]
        assert len(proposed) == 1 and proposed[0]["data"]["source"] == "east" and proposed[0]["data"]["started"] is False
