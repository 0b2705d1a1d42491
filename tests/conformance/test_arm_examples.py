"""The ARM twin against the published REST examples: served through the SDK, the values are the example's own,
and the requests the SDK makes carry the example's parameters."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from local.twins.arm.seed import GENERATED_SUBSCRIPTION as SUB
from local.twins.arm.seed import pool_seed
from shared.azure import PoolRef
from shared.azure.retry import ArmRetryPolicy
from tests.conftest import load_event

EX_SUB = "daefabc0-95b4-48b3-b645-8a753a63c4fa"


def _example(name: str) -> dict[str, Any]:
    return load_event(f"{name}.json")


def _clients(twin: Any, subscription: str) -> tuple[Any, Any]:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.desktopvirtualization import DesktopVirtualizationMgmtClient

    options = {"base_url": twin.base_url, "retry_policy": ArmRetryPolicy(budget_s=5)}
    credential = ManagedIdentityCredential()
    return (
        DesktopVirtualizationMgmtClient(credential, subscription, **options),
        ComputeManagementClient(credential, subscription, **options),
    )


def _serve(arm: Any, *documents: dict[str, Any], subscription: str = EX_SUB) -> tuple[Any, Any, Any]:
    twin = arm({"resources": list(documents)})
    twin.server.clear_log()
    return (twin, *_clients(twin, subscription))


def _model(model_type: Any, body: dict[str, Any]) -> Any:
    """The SDK's own reading of a published body (msrest-style models deserialize, newer ones take the mapping)."""
    return model_type.deserialize(body) if hasattr(model_type, "deserialize") else model_type(body)


def _same(model: Any, body: dict[str, Any], model_type: type) -> None:
    assert model.as_dict() == _model(model_type, body).as_dict()


def _request(twin: Any, method: str) -> Any:
    calls = [c for c in twin.server.log(method) if c.path != "/msi/token"]
    assert len(calls) == 1, calls
    return calls[0]


def _query_matches(call: Any, params: dict[str, Any], *names: str) -> None:
    for name in ("api-version", *names):
        assert call.query[name].lower() == str(params[name]).lower(), name


def test_host_pool_get(arm: Any) -> None:
    from azure.mgmt.desktopvirtualization.models import HostPool

    ex = _example("avd_2024-04-03_HostPool_Get")
    p, body = ex["parameters"], ex["responses"]["200"]["body"]
    twin, dv, _ = _serve(arm, body)
    _same(dv.host_pools.get(p["resourceGroupName"], p["hostPoolName"]), body, HostPool)
    call = _request(twin, "GET")
    assert call.path.endswith(
        f"/resourceGroups/{p['resourceGroupName']}/providers/Microsoft.DesktopVirtualization/hostPools/{p['hostPoolName']}"
    )
    _query_matches(call, p)


def test_session_host_get_and_list_with_paging_parameters(arm: Any) -> None:
    from azure.mgmt.desktopvirtualization.models import SessionHost

    single = _example("avd_2024-04-03_SessionHost_Get")
    listing = _example("avd_2024-04-03_SessionHost_List")
    items = listing["responses"]["200"]["body"]["value"]
    twin, dv, _ = _serve(arm, *items)
    p = listing["parameters"]
    got = list(
        dv.session_hosts.list(
            p["resourceGroupName"],
            p["hostPoolName"],
            page_size=p["pageSize"],
            is_descending=p["isDescending"],
            initial_skip=p["initialSkip"],
        )
    )
    # the example does not say what isDescending sorts by, so compare as sets of values
    assert sorted(json.dumps(h.as_dict(), sort_keys=True) for h in got) == sorted(
        json.dumps(SessionHost.deserialize(i).as_dict(), sort_keys=True) for i in items
    )
    _query_matches(_request(twin, "GET"), p, "pageSize", "isDescending", "initialSkip")
    body = single["responses"]["200"]["body"]
    twin, dv, _ = _serve(arm, body)
    sp = single["parameters"]
    _same(dv.session_hosts.get(sp["resourceGroupName"], sp["hostPoolName"], sp["sessionHostName"]), body, SessionHost)


def test_session_host_update_is_the_drain_call(arm: Any) -> None:
    from azure.mgmt.desktopvirtualization.models import SessionHost, SessionHostPatch

    ex = _example("avd_2024-04-03_SessionHost_Update")
    p, body = ex["parameters"], ex["responses"]["200"]["body"]
    before = json.loads(json.dumps(body))
    before["properties"].update(allowNewSession=False, friendlyName="old", assignedUser=None)
    twin, dv, _ = _serve(arm, before)
    patch = SessionHostPatch.deserialize(p["sessionHost"])
    updated = dv.session_hosts.update(
        p["resourceGroupName"], p["hostPoolName"], p["sessionHostName"], force=p["force"], session_host=patch
    )
    _same(updated, body, SessionHost)
    call = _request(twin, "PATCH")
    _query_matches(call, p, "force")


def test_user_sessions_list_by_host_and_by_pool_with_filter(arm: Any) -> None:
    from azure.mgmt.desktopvirtualization.models import UserSession

    by_host = _example("avd_2024-04-03_UserSession_List")
    p, items = by_host["parameters"], by_host["responses"]["200"]["body"]["value"]
    twin, dv, _ = _serve(arm, *items)
    got = list(
        dv.user_sessions.list(
            p["resourceGroupName"],
            p["hostPoolName"],
            p["sessionHostName"],
            page_size=p["pageSize"],
            is_descending=p["isDescending"],
            initial_skip=p["initialSkip"],
        )
    )
    assert sorted(json.dumps(s.as_dict(), sort_keys=True) for s in got) == sorted(
        json.dumps(UserSession.deserialize(i).as_dict(), sort_keys=True) for i in items
    )
    _query_matches(_request(twin, "GET"), p, "pageSize", "isDescending", "initialSkip")

    by_pool = _example("avd_2024-04-03_UserSession_ListByHostPool")
    p, items = by_pool["parameters"], by_pool["responses"]["200"]["body"]["value"]
    other = json.loads(json.dumps(items[0]))
    other["id"] = other["id"].rsplit("/", 1)[0] + "/9"
    other["properties"]["userPrincipalName"] = "someone.else@microsoft.com"
    twin, dv, _ = _serve(arm, *items, other)
    got = list(
        dv.user_sessions.list_by_host_pool(
            p["resourceGroupName"],
            p["hostPoolName"],
            filter=p["$filter"],
            page_size=p["pageSize"],
            is_descending=p["isDescending"],
            initial_skip=p["initialSkip"],
        )
    )
    assert sorted(s.name for s in got) == ["1", "2"]  # the filter left the other user out
    assert sorted(json.dumps(s.as_dict(), sort_keys=True) for s in got) == sorted(
        json.dumps(UserSession.deserialize(i).as_dict(), sort_keys=True) for i in items
    )
    _query_matches(_request(twin, "GET"), p, "$filter", "pageSize", "isDescending", "initialSkip")


def test_user_session_get_delete_disconnect_and_send_message(arm: Any) -> None:
    from azure.mgmt.desktopvirtualization.models import SendMessage, UserSession

    get = _example("avd_2024-04-03_UserSession_Get")
    body = get["responses"]["200"]["body"]
    twin, dv, _ = _serve(arm, body)
    p = get["parameters"]
    _same(dv.user_sessions.get(p["resourceGroupName"], p["hostPoolName"], p["sessionHostName"], p["userSessionId"]), body, UserSession)

    disconnect = _example("avd_2024-04-03_UserSession_Disconnect_Post")["parameters"]
    dv.user_sessions.disconnect(
        disconnect["resourceGroupName"], disconnect["hostPoolName"], disconnect["sessionHostName"], disconnect["userSessionId"]
    )
    assert twin.server.log("POST")[-1].path.endswith(
        f"/sessionHosts/{disconnect['sessionHostName']}/userSessions/{disconnect['userSessionId']}/disconnect"
    )
    assert (
        dv.user_sessions.get(p["resourceGroupName"], p["hostPoolName"], p["sessionHostName"], p["userSessionId"]).session_state
        == "Disconnected"
    )

    message = _example("avd_2024-04-03_UserSession_SendMessage_Post")["parameters"]
    dv.user_sessions.send_message(
        message["resourceGroupName"],
        message["hostPoolName"],
        message["sessionHostName"],
        message["userSessionId"],
        send_message=SendMessage.deserialize(message["sendMessage"]),
    )
    assert twin.estate.messages[-1][3:] == (message["sendMessage"]["messageTitle"], message["sendMessage"]["messageBody"])

    delete = _example("avd_2024-04-03_UserSession_Delete")["parameters"]
    dv.user_sessions.delete(
        delete["resourceGroupName"], delete["hostPoolName"], delete["sessionHostName"], delete["userSessionId"], force=delete["force"]
    )
    _query_matches(_request(twin, "DELETE"), delete, "force")
    assert list(dv.user_sessions.list(p["resourceGroupName"], p["hostPoolName"], p["sessionHostName"])) == []


def test_application_group_get(arm: Any) -> None:
    from azure.mgmt.desktopvirtualization.models import ApplicationGroup

    ex = _example("avd_2024-04-03_ApplicationGroup_Get")
    p, body = ex["parameters"], ex["responses"]["200"]["body"]
    twin, dv, _ = _serve(arm, body)
    _same(dv.application_groups.get(p["resourceGroupName"], p["applicationGroupName"]), body, ApplicationGroup)
    _query_matches(_request(twin, "GET"), p)


def _vm_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def test_virtual_machine_get_and_instance_view(arm: Any) -> None:
    from azure.mgmt.compute.models import VirtualMachine, VirtualMachineInstanceView

    ex = _example("compute_2024-07-01_VirtualMachine_Get")
    p, body = ex["parameters"], ex["responses"]["200"]["body"]
    sub = body["id"].split("/")[2]
    twin, _, compute = _serve(arm, body, subscription=sub)
    got = compute.virtual_machines.get(p["resourceGroupName"], p["vmName"], expand=p.get("$expand"), api_version=p["api-version"])
    _same(got, body, VirtualMachine)
    _query_matches(_request(twin, "GET"), p, "$expand")

    view = _example("compute_2024-07-01_VirtualMachine_Get_InstanceView")
    vp, vbody = view["parameters"], view["responses"]["200"]["body"]
    sub = "00000000-0000-4000-8000-000000000c01"
    document = {"id": _vm_id(sub, vp["resourceGroupName"], vp["vmName"]), "location": "westus", "properties": {"instanceView": vbody}}
    twin, _, compute = _serve(arm, document, subscription=sub)
    got_view = compute.virtual_machines.instance_view(vp["resourceGroupName"], vp["vmName"], api_version=vp["api-version"])
    _same(got_view, vbody, VirtualMachineInstanceView)
    _query_matches(_request(twin, "GET"), vp)


def test_virtual_machine_list_all_serves_minimal_items(arm: Any) -> None:
    from azure.mgmt.compute.models import VirtualMachine

    ex = _example("compute_2024-07-01_VirtualMachine_ListAll_MinimumSet_Gen")
    sub = "00000000-0000-4000-8000-000000000c02"
    # the published ids are templates; give each item a real, distinct id and keep its published shape
    items = [{**item, "id": _vm_id(sub, "rg-minimal", f"vm{i}")} for i, item in enumerate(ex["responses"]["200"]["body"]["value"])]
    twin, _, compute = _serve(arm, *items, subscription=sub)
    got = list(compute.virtual_machines.list_all(api_version=ex["parameters"]["api-version"]))
    assert [v.as_dict() for v in got] == [_model(VirtualMachine, i).as_dict() for i in items]
    assert _request(twin, "GET").path == f"/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines"


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("compute_2024-11-01_VirtualMachine_Start_MinimumSet_Gen", "start"),
        ("compute_2024-11-01_VirtualMachine_Start_MaximumSet_Gen", "start"),
        ("compute_2024-07-01_VirtualMachine_Deallocate_MinimumSet_Gen", "deallocate"),
        ("compute_2024-07-01_VirtualMachine_Deallocate_MaximumSet_Gen", "deallocate"),
    ],
)
def test_start_and_deallocate_are_long_running_operations(arm: Any, name: str, action: str) -> None:
    ex = _example(name)
    p = ex["parameters"]
    assert set(ex["responses"]) == {"200", "202"} and "location" in ex["responses"]["202"]["headers"]
    sub = "00000000-0000-4000-8000-000000000c03"
    power = "deallocated" if action == "start" else "running"
    document = {
        "id": _vm_id(sub, p["resourceGroupName"], p["vmName"]),
        "location": "eastus",
        "properties": {"instanceView": {"statuses": [{"code": f"PowerState/{power}"}]}},
    }
    twin, _, compute = _serve(arm, document, subscription=sub)
    begin = getattr(compute.virtual_machines, f"begin_{action}")
    extra = {"hibernate": p["hibernate"]} if "hibernate" in p else {}
    poller = begin(p["resourceGroupName"], p["vmName"], api_version=p["api-version"], polling_interval=0.01, **extra)
    first = _request(twin, "POST")
    assert (first.status, first.path.rsplit("/", 1)[-1]) == (202, action)
    _query_matches(first, p, *extra)
    assert not poller.done()
    twin.clock.advance(timedelta(minutes=2))
    poller.result(timeout=10)
    assert poller.status() == "Succeeded"
    view = compute.virtual_machines.instance_view(p["resourceGroupName"], p["vmName"], api_version=p["api-version"])
    assert [s.code for s in view.statuses if s.code.startswith("PowerState/")] == [
        "PowerState/running" if action == "start" else "PowerState/deallocated"
    ]
    # a repeat on a VM already in that state completes at once with the published 200
    begin(p["resourceGroupName"], p["vmName"], api_version=p["api-version"], polling_interval=0.01, **extra).result(timeout=10)
    assert twin.server.log("POST")[-1].status == 200


def test_the_twin_renders_the_published_shape_for_the_hosts_it_models(arm: Any) -> None:
    """Hosts, sessions and pools the twin models itself carry every property the published examples carry."""
    twin = arm(pool_seed(1, running=1, users=1))
    pool = twin.estate.pool(SUB, "rg-avd", "hp0")
    twin.estate.logon(pool, "user001@contoso.com")
    host = next(iter(pool.hosts.values()))
    session = next(iter(host.sessions.values()))
    group = twin.estate.app_group(SUB, "rg-avd", "dag0")
    pairs = [
        (twin.render_pool(pool), _example("avd_2024-04-03_HostPool_Get")["responses"]["200"]["body"]),
        (twin.render_host(host), _example("avd_2024-04-03_SessionHost_Get")["responses"]["200"]["body"]),
        (twin.render_session(host, session), _example("avd_2024-04-03_UserSession_Get")["responses"]["200"]["body"]),
        (twin.render_app_group(group), _example("avd_2024-04-03_ApplicationGroup_Get")["responses"]["200"]["body"]),
    ]
    for ours, published in pairs:
        assert set(ours) >= set(published) - {"tags", "location"} and set(ours["properties"]) == set(published["properties"])


def test_run_command_answers_the_fslogix_read_from_the_hosts_modelled_settings(arm: Any) -> None:
    """VirtualMachines_RunCommand through azure-mgmt-compute: the spec's 200 with a RunCommandResult; refused on a
    VM that is not running; a script the twin does not model gets standard error, not a made-up answer."""
    from shared.failover.fslogix import SCRIPT, Settings

    twin = arm(pool_seed(2, running=1))
    pool = twin.estate.pool(SUB, "rg-avd", "hp0")
    twin.estate.set_fslogix(pool, {"Enabled": 1, "VHDLocations": [r"\\anq.contoso.local\profiles"], "ProfileType": 0})
    _, compute = _clients(twin, SUB)
    result = compute.virtual_machines.begin_run_command(
        "rg-hosts", "hp0-vm-001", {"commandId": "RunPowerShellScript", "script": list(SCRIPT)}
    ).result(timeout=10)
    out = {s.code: s.message for s in result.value}
    assert set(out) == {"ComponentStatus/StdOut/succeeded", "ComponentStatus/StdErr/succeeded"}
    settings = Settings.from_output("hp0-vm-001", "now", out["ComponentStatus/StdOut/succeeded"])
    assert (settings.enabled, settings.locations) == (True, (r"\\anq.contoso.local\profiles",))
    other = compute.virtual_machines.begin_run_command(
        "rg-hosts", "hp0-vm-001", {"commandId": "RunPowerShellScript", "script": ["Restart-Computer"]}
    ).result(timeout=10)
    assert {s.code: s.message for s in other.value}["ComponentStatus/StdErr/succeeded"]
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as refused:
        compute.virtual_machines.begin_run_command(
            "rg-hosts", "hp0-vm-002", {"commandId": "RunPowerShellScript", "script": list(SCRIPT)}
        ).result(timeout=10)
    assert refused.value.status_code == 409


def test_a_vm_list_with_instance_view_needs_the_documented_scale_set_filter(arm: Any) -> None:
    """VirtualMachines_List: "'instanceView' ... can only be specified if a valid $filter option is specified";
    the twin refuses the expansion alone, as the spec reads, and takes it with a scale-set filter."""
    from azure.core.exceptions import HttpResponseError

    twin = arm(pool_seed(2, running=1))
    _, compute = _clients(twin, SUB)
    assert len(list(compute.virtual_machines.list("rg-hosts"))) == 2
    with pytest.raises(HttpResponseError) as refused:
        list(compute.virtual_machines.list("rg-hosts", expand="instanceView"))
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidParameter"
    scale_set = f"/subscriptions/{SUB}/resourceGroups/rg-hosts/providers/Microsoft.Compute/virtualMachineScaleSets/ss"
    assert (
        list(compute.virtual_machines.list("rg-hosts", expand="instanceView", filter=f"virtualMachineScaleSet/id eq '{scale_set}'"))
        == []
    )


def _published() -> list[tuple[dict[str, Any], re.Pattern[str]]]:
    from pathlib import Path

    doc = json.loads((Path(__file__).with_name("published_operations.json")).read_text(encoding="utf-8"))
    found = []
    for op in doc["operations"]:
        pattern = re.sub(r"\{scope\}", ".+", op["path"].lstrip("/"))  # a scope spans segments (x-ms-skip-url-encoding)
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", pattern)
        found.append((op, re.compile("/" + pattern, re.I)))
    return found


def test_every_call_the_gateway_makes_is_a_published_operation_with_documented_parameters(arm: Any) -> None:
    """Reads, power actions, drain, messages, log-offs, assignment moves and Run Command, as Tandem makes them:
    each request is an operation of the published specs, with only the query parameters that operation documents
    (and the `$skiptoken` a nextLink carries); VirtualMachines_List never expands without its filter."""
    from shared.azure import AzureGateway
    from shared.failover.fslogix import SCRIPT

    twin = arm(pool_seed(4, running=2, users=3, pools=2, sessions=1))
    estate = twin.estate
    pool = estate.pool(SUB, "rg-avd", "hp0")
    estate.logon(pool, "user001@contoso.com")
    refs = [PoolRef(SUB, "rg-avd", f"hp{p}", ("rg-hosts",)) for p in range(2)]
    groups = [estate.app_group(SUB, "rg-avd", f"dag{p}").id for p in range(2)]
    for a in estate.assignments_at(groups[1]):
        estate.delete_assignment(groups[1], a.name)
    twin.server.clear_log()
    with AzureGateway(endpoint=twin.base_url, budget_s=5) as gateway:
        state = gateway.read_pools(refs).states[refs[0].key]
        running = [h for h in state.hosts if h.power == "running"]
        off = [h for h in state.hosts if h.power == "deallocated"]
        host = next(h for h in running if h.sessions)
        gateway.host_sessions(refs[0], host.name)
        gateway.send_message(refs[0], host.name, host.sessions[0].id, "Tandem", "Please save your work")
        gateway.set_drain(refs[0], [host.name], True)
        gateway.set_drain(refs[0], [host.name], False)
        gateway.logoff(refs[0], host.name, host.sessions[0].id)
        gateway.start_vms([off[0].vm_id])
        gateway.deallocate_vms([running[-1].vm_id])
        gateway.run_command(running[0].vm_id, SCRIPT)
        gateway.move_assignments(groups[:1], groups[1:])
        twin.clock.advance(timedelta(seconds=20))
        gateway.read_pools(refs)  # hosts booting and shutting down are asked through their instance view
    published = _published()
    made = [c for c in twin.server.log() if c.path != "/msi/token" and "/operations/" not in c.path]  # LRO polls
    seen = set()
    for call in made:
        ops = [op for op, pattern in published if op["method"] == call.method and pattern.fullmatch(call.path)]
        assert ops, f"{call.method} {call.path} is not a published operation"
        op = max(ops, key=lambda o: len(o["path"]))  # the most specific template
        extra = set(call.query) - set(op["query"]) - {"$skiptoken"}
        assert not extra, f"{op['operationId']} does not document {extra}"
        if op["operationId"] == "VirtualMachines_List":
            assert "$expand" not in call.query or "$filter" in call.query
        seen.add(op["operationId"])
    assert seen >= {
        "HostPools_Get",
        "SessionHosts_List",
        "UserSessions_ListByHostPool",
        "UserSessions_List",
        "UserSessions_SendMessage",
        "SessionHosts_Update",
        "UserSessions_Delete",
        "VirtualMachines_List",
        "VirtualMachines_InstanceView",
        "VirtualMachines_Start",
        "VirtualMachines_Deallocate",
        "VirtualMachines_RunCommand",
        "RoleAssignments_Create",
        "RoleAssignments_Delete",
    }, seen
    # an application group's assignments are listed at its scope: the spec's ListForScope, or ListForResource's
    # more specific template for the same path
    assert seen & {"RoleAssignments_ListForScope", "RoleAssignments_ListForResource"}


def test_the_operator_cli_finds_a_deployed_tandem_with_published_web_operations_only(arm: Any, monkeypatch: Any) -> None:
    """`scripts/tandem --app`: WebApps_Get, WebApps_GetAuthSettingsV2WithoutSecrets and WebApps_ListFunctionKeys at
    api-version 2024-04-01, each a published operation with only its documented query; the audience it asks a token
    for is the one App Service authentication validates, and an app that is not there is ARM's 404, said plainly."""
    import argparse
    import ssl

    from local.operator import CliError, _deployed
    from local.twins.arm.model import Site

    twin = arm(pool_seed(1))
    twin.estate.add_site(
        Site(SUB, "rg-tandem", "func-t", "eastus2", "func-t.azurewebsites.net", "c0ffee", {"failover_status": "k1"}.get)
    )
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        monkeypatch.delenv(name)
    for name, value in twin.cloud_shell("ana@contoso.com", ["Tandem.Failover.Operator"]).items():
        monkeypatch.setenv(name, value)
    args = argparse.Namespace(app="func-t", resource_group="rg-tandem", subscription=SUB, arm_endpoint=twin.base_url)
    twin.server.clear_log()
    tandem = _deployed(args, ssl.create_default_context(cafile=twin.ca.bundle_path))
    assert tandem.base_url == "https://func-t.azurewebsites.net" and tandem.key_for("failover_status") == "k1"
    assert twin.identity.validate(tandem.token or "", "api://c0ffee")["roles"] == ["Tandem.Failover.Operator"]
    with pytest.raises(CliError, match=r"404 NotFound: Function 'failover_start' was not found"):
        tandem.key_for("failover_start")
    published = _published()
    made = [c for c in twin.server.log() if c.path.startswith("/subscriptions/")]
    assert len(made) == 4
    for call in made:
        ops = [op for op, pattern in published if op["method"] == call.method and pattern.fullmatch(call.path)]
        assert [op["operationId"] for op in ops] and ops[0]["api_version"] == call.query["api-version"], call
        assert set(call.query) <= set(ops[0]["query"]), call
    assert {
        op["operationId"] for c in made for op, pattern in published if op["method"] == c.method and pattern.fullmatch(c.path)
    } == {
        "WebApps_Get",
        "WebApps_GetAuthSettingsV2WithoutSecrets",
        "WebApps_ListFunctionKeys",
    }
    with pytest.raises(CliError, match=r"ARM GET func-gone: 404 ResourceNotFound: The Resource 'Microsoft.Web/sites/func-gone'"):
        _deployed(argparse.Namespace(**{**vars(args), "app": "func-gone"}), ssl.create_default_context(cafile=twin.ca.bundle_path))
