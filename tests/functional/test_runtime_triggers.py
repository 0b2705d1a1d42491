"""The runtime runs timers, Event Grid and HTTP the way the host and the worker do."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient
from azure.identity import ManagedIdentityCredential

from local.runtime import VirtualClock
from tests.apps import runtime_app
from tests.conftest import load_event
from tests.functional.runtime_fixtures import START, running


def _request(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_timer_fires_on_its_schedule_and_not_before(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        host.advance(timedelta(minutes=4, seconds=59))
        assert runtime_app.seen["timer"] == []
        host.advance(timedelta(seconds=1))
        assert runtime_app.seen["timer"] == [False]
        host.advance(timedelta(minutes=20))
        assert [at.minute for at, _ in host.timers["tick"].fired] == [5, 10, 15, 20, 25]
        assert runtime_app.seen["timer"] == [False] * 5


def test_timer_missed_while_the_runtime_was_down_fires_once_past_due(storage: str, hub: str) -> None:
    clock = VirtualClock(START)
    with running(storage, hub, clock) as host:
        host.advance(timedelta(minutes=5))
        assert runtime_app.seen["timer"] == [False]
    clock.advance(timedelta(minutes=17))  # three occurrences pass while no runtime is up
    with running(storage, hub, clock) as host:
        host.advance(timedelta(seconds=0))
        assert runtime_app.seen["timer"] == [True]
        host.advance(timedelta(minutes=3))
        assert runtime_app.seen["timer"] == [True, False]


@pytest.mark.parametrize(
    "fixture",
    ["eg_HealthResources_AvailabilityStatusChanged_eventgridschema.json", "eg_HealthResources_ResourceAnnotated_cloudevent.json"],
)
def test_event_in_either_schema_reaches_the_handler_intact(storage: str, hub: str, fixture: str) -> None:
    payload = load_event(fixture)
    with running(storage, hub) as host:
        host.deliver_event("on_event", payload)
    (event,) = runtime_app.seen["events"]
    assert event.get_json() == payload["data"]
    assert event.id == payload["id"]
    if "specversion" in payload:
        assert isinstance(event, func.CloudEvent)
        assert (event.type, event.source, event.subject) == (payload["type"], payload["source"], payload["subject"])
    else:
        assert isinstance(event, func.EventGridEvent)
        assert (event.event_type, event.topic, event.subject) == (payload["eventType"], payload["topic"], payload["subject"])


def test_topic_delivers_published_cloudevents_to_subscribed_functions(storage: str, hub: str) -> None:
    subscriptions = [("on_event", ["Tandem.Failover.Started"])]
    with running(storage, hub, event_subscriptions=subscriptions) as host:
        door = host.front_door
        client = EventGridPublisherClient(door.topic_url, AzureKeyCredential(host.topic_key))
        client.send(
            [
                CloudEvent(source="/tandem/test", type="Tandem.Failover.Started", data={"pair": "east"}),
                CloudEvent(source="/tandem/test", type="Tandem.Unrelated", data={}),
            ]
        )
        host.wait_idle()
    (event,) = runtime_app.seen["events"]
    assert (event.type, event.source, event.get_json()) == ("Tandem.Failover.Started", "/tandem/test", {"pair": "east"})


def test_topic_accepts_a_managed_identity_token_and_refuses_a_wrong_key(storage: str, hub: str) -> None:
    with running(storage, hub, event_subscriptions=[("on_event", ["Tandem.Test"])]) as host:
        door = host.front_door
        credential = ManagedIdentityCredential()  # IDENTITY_ENDPOINT/IDENTITY_HEADER come from the runtime
        EventGridPublisherClient(door.topic_url, credential).send([CloudEvent(source="/t", type="Tandem.Test", data={"n": 1})])
        host.wait_idle()
        assert [e.get_json() for e in runtime_app.seen["events"]] == [{"n": 1}]
        with pytest.raises(ClientAuthenticationError):
            EventGridPublisherClient(door.topic_url, AzureKeyCredential("wrong"), retry_total=0).send(
                [CloudEvent(source="/t", type="Tandem.Test", data={})]
            )


def test_function_level_route_rejects_a_missing_or_wrong_key(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        url = f"{host.front_door.base_url}/api/echo/east"
        assert _request(url, "POST", {"a": 1})[0] == 401
        assert _request(f"{url}?code=not-the-key", "POST", {"a": 1})[0] == 401
        status, headers, body = _request(url, "POST", {"a": 1}, {"x-functions-key": host.function_keys["echo"]})
        assert status == 201 and headers["content-type"].startswith("application/json")
        assert json.loads(body)["name"] == "east" and json.loads(body)["body"] == {"a": 1}
        assert _request(f"{host.front_door.base_url}/api/open")[0:3:2] == (200, b"open")


def test_platform_authentication_replaces_a_forged_principal_with_the_signed_in_one(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        url = f"{host.front_door.base_url}/api/echo/x?code={host.function_keys['echo']}"
        forged = {"x-ms-client-principal": "Zm9yZ2Vk"}
        assert json.loads(_request(url, "POST", {}, forged)[2])["principal"] is None
        token, _ = host.identity.issue("api://tandem", name="ana", roles=["Tandem.Failover.Operator"])
        principal = json.loads(_request(url, "POST", {}, {**forged, "Authorization": f"Bearer {token}"})[2])["principal"]
        claims = json.loads(base64.b64decode(principal))["claims"]
        assert {"typ": "roles", "val": "Tandem.Failover.Operator"} in claims
        assert host.settings["WEBSITE_AUTH_ENABLED"] == "True"


def test_without_platform_authentication_headers_pass_through_unchanged(storage: str, hub: str) -> None:
    with running(storage, hub, auth_enabled=False) as host:
        url = f"{host.front_door.base_url}/api/echo/x?code={host.function_keys['echo']}"
        assert json.loads(_request(url, "POST", {}, {"x-ms-client-principal": "Zm9yZ2Vk"})[2])["principal"] == "Zm9yZ2Vk"
        assert "WEBSITE_AUTH_ENABLED" not in host.settings
