"""The Azure gateway against the ARM twin: real SDKs, real azure-identity, real HTTPS on loopback."""

from __future__ import annotations

import math
import socket
from datetime import timedelta
from typing import Any

import pytest
import requests

from local.twins.arm.seed import GENERATED_SUBSCRIPTION as SUB
from local.twins.arm.seed import pool_seed
from shared.azure import AzureGateway, PoolRef
from shared.errors import DependencyError

REF = PoolRef(SUB, "rg-avd", "hp0", ("rg-hosts",))


def _gateway(twin: Any, **options: Any) -> AzureGateway:
    options.setdefault("budget_s", 10.0)
    return AzureGateway(endpoint=twin.base_url, **options)


def _arm_calls(twin: Any) -> list[Any]:
    return [r for r in twin.server.log() if r.path != "/msi/token"]


def _log_on(twin: Any, users: int, pool: str = "hp0") -> None:
    estate = twin.estate
    target = estate.pool(SUB, "rg-avd", pool)
    for i in range(1, users + 1):
        assert estate.logon(target, f"user{i:03d}@contoso.com").outcome == "connected"


def test_a_1000_host_pool_is_read_in_the_constant_call_budget(arm: Any) -> None:
    twin = arm(pool_seed(1000, running=300, users=500, max_sessions=4))
    _log_on(twin, 500)
    twin.server.clear_log()
    with _gateway(twin) as gateway:
        state = gateway.read_pool(REF)
        first = _arm_calls(twin)
        twin.server.clear_log()
        gateway.read_pool(REF)
    vm_pages = math.ceil(1000 / twin.page_size)  # ARM pages VM lists its own way
    calls = _arm_calls(twin)
    # pool get + one page of session hosts + one of user sessions (AVD's pageSize, 1,000) + VM pages; nothing per host
    assert len(calls) == 1 + 1 + 1 + vm_pages
    # the first read also lists the pool's scaling plans; a read within ten minutes remembers them
    assert len(first) == len(calls) + 1 and [c for c in first if c.path.endswith("/scalingPlans")]
    assert not [c for c in calls if "/sessionHosts/" in c.path or "/virtualMachines/" in c.path]
    assert len(state.hosts) == 1000
    assert sum(h.status == "Available" for h in state.hosts) == 300
    assert sum(h.power == "running" for h in state.hosts) == 300
    assert sum(h.active for h in state.hosts) == 500


def test_power_comes_from_documented_calls_and_only_unsettled_hosts_ask_their_vm(arm: Any) -> None:
    """No List with `$expand=instanceView` (the spec allows it only with a scale-set `$filter`): the listing gives
    tags, the AVD status gives power, and a host booting or just shut down is asked through its instance view."""
    twin = arm(pool_seed(10, running=4))
    pool = twin.estate.pool(SUB, "rg-avd", "hp0")
    hosts = sorted(pool.hosts.values(), key=lambda h: h.name)
    twin.estate.start_vm(hosts[5].vm)  # booting: Unavailable
    twin.estate.deallocate_vm(hosts[0].vm)  # deallocating, then Shutdown for less than five minutes
    twin.server.clear_log()
    with _gateway(twin) as gateway:
        state = gateway.read_pool(REF)
        asked = sorted(c.path.split("/")[-2] for c in _arm_calls(twin) if c.path.endswith("/instanceView"))
        assert asked == ["hp0-vm-001", "hp0-vm-006"]
        assert not [c for c in _arm_calls(twin) if "$expand" in c.query]
        power = {h.name.split(".")[0]: h.power for h in state.hosts}
        assert (power["hp0-vm-001"], power["hp0-vm-006"], power["hp0-vm-002"], power["hp0-vm-010"]) == (
            "deallocating",
            "starting",
            "running",
            "deallocated",
        )
        twin.clock.advance(timedelta(minutes=10))  # both settle: the status alone says it again
        twin.server.clear_log()
        later = {h.name.split(".")[0]: h.power for h in gateway.read_pool(REF).hosts}
    assert not [c for c in _arm_calls(twin) if c.path.endswith("/instanceView")]
    assert (later["hp0-vm-001"], later["hp0-vm-006"]) == ("deallocated", "running")


def test_pools_sharing_a_vm_resource_group_list_it_once(arm: Any) -> None:
    twin = arm(pool_seed(30, pools=3, running=5))
    refs = [PoolRef(SUB, "rg-avd", f"hp{p}", ("rg-hosts",)) for p in range(3)]
    with _gateway(twin) as gateway:
        reads = gateway.read_pools(refs)
    assert sorted(s.ref.name for s in reads.states.values()) == ["hp0", "hp1", "hp2"]
    vm_lists = [c for c in _arm_calls(twin) if c.path.endswith("/virtualMachines")]
    assert len(vm_lists) == math.ceil(90 / twin.page_size)
    assert all(sum(h.power == "running" for h in s.hosts) == 5 for s in reads.states.values())


def test_a_vm_resource_group_the_topology_did_not_name_is_still_read(arm: Any) -> None:
    twin = arm(pool_seed(5, running=2))
    with _gateway(twin) as gateway:
        state = gateway.read_pool(PoolRef(SUB, "rg-avd", "hp0"))
    assert [h.power for h in state.hosts] == ["running", "running", "deallocated", "deallocated", "deallocated"]


def test_200_vms_start_in_parallel_and_become_available_after_the_modelled_delay(arm: Any) -> None:
    twin = arm(pool_seed(200, boot="45s", agent_ready="90s"))
    clock = twin.clock
    with _gateway(twin, max_workers=16) as gateway:
        before = gateway.read_pool(REF)
        outcomes = gateway.start_vms(h.vm_id for h in before.hosts)
        assert [o.result for o in outcomes] == ["done"] * 200
        assert 1 < twin.server.max_in_flight <= 16
        assert {(h.power, h.status) for h in gateway.read_pool(REF).hosts} == {("starting", "Unavailable")}
        clock.advance(timedelta(seconds=45 + 89))
        assert {(h.power, h.status) for h in gateway.read_pool(REF).hosts} == {("running", "Unavailable")}
        clock.advance(timedelta(seconds=1))
        assert {h.status for h in gateway.read_pool(REF).hosts} == {"Available"}
        again = gateway.start_vms(h.vm_id for h in before.hosts[:3])
    assert [o.result for o in again] == ["already"] * 3


def test_deallocating_ends_sessions_and_the_host_reports_shutdown(arm: Any) -> None:
    twin = arm(pool_seed(2, running=2, users=3))
    _log_on(twin, 3)
    with _gateway(twin) as gateway:
        host = next(h for h in gateway.read_pool(REF).hosts if h.sessions)
        assert [o.result for o in gateway.deallocate_vms([host.vm_id])] == ["done"]
        assert [o.result for o in gateway.start_vms([host.vm_id])] == ["conflict"]  # still deallocating
        twin.clock.advance(timedelta(seconds=60))
        after = {h.name: h for h in gateway.read_pool(REF).hosts}[host.name]
        assert [o.result for o in gateway.deallocate_vms([host.vm_id])] == ["already"]
    assert (after.power, after.status, after.sessions) == ("deallocated", "Shutdown", ())


def test_a_429_storm_is_ridden_out_within_the_budget(arm: Any) -> None:
    twin = arm(pool_seed(150, running=50, users=100))
    _log_on(twin, 100)
    twin.server.inject("throttle", rate=0.5, retry_after_s=0.05)
    with _gateway(twin, budget_s=30.0) as gateway:
        state = gateway.read_pool(REF)
        outcomes = gateway.start_vms(h.vm_id for h in state.hosts if h.power == "deallocated")
    throttled = [c for c in twin.server.log() if c.status == 429]
    assert len(throttled) > 10
    assert sum(h.active for h in state.hosts) == 100
    assert [o.result for o in outcomes] == ["done"] * 100


def test_throttling_longer_than_the_budget_is_a_clear_error(arm: Any) -> None:
    twin = arm(pool_seed(3))
    twin.server.inject("throttle", pattern="sessionHosts", retry_after_s=5)
    with _gateway(twin, budget_s=1.0) as gateway, pytest.raises(DependencyError, match="429 TooManyRequests"):
        gateway.read_pool(REF)
    assert len([c for c in twin.server.log() if c.status == 429]) == 1


def test_an_unreachable_arm_is_a_clear_error_not_a_hang(arm: Any) -> None:
    arm(pool_seed(1))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        AzureGateway(endpoint=f"https://127.0.0.1:{port}", budget_s=1.0) as gateway,
        pytest.raises(DependencyError, match="unreachable"),
    ):
        gateway.read_pool(REF)


def test_a_twin_that_stops_answering_times_out_with_a_clear_error(arm: Any) -> None:
    twin = arm(pool_seed(1), hang_s=5)
    twin.server.inject("timeout", pattern="sessionHosts")
    with _gateway(twin, budget_s=1.0, read_timeout_s=0.3) as gateway, pytest.raises(DependencyError, match="no complete answer"):
        gateway.read_pool(REF)


def test_a_reset_retries_a_logoff_but_never_a_message(arm: Any) -> None:
    twin = arm(pool_seed(1, running=1, users=2))
    _log_on(twin, 2)
    twin.server.inject("reset", pattern="/userSessions/1(/sendMessage)?$", limit=2)
    with _gateway(twin) as gateway:
        host = gateway.read_pool(REF).hosts[0].name
        message = gateway.send_message(REF, host, "1", "Maintenance", "Please save your work")
        logoff = gateway.logoff(REF, host, "1")
        gone = gateway.logoff(REF, host, "1")
    assert (message.result, logoff.result, gone.result) == ("failed", "done", "done")
    assert len(twin.server.log("POST", "sendMessage$")) == 1
    assert [c.fault for c in twin.server.log("DELETE")] == ["reset", None, None]
    assert twin.estate.messages == []
    assert [s.upn for s in twin.estate.pool(SUB, "rg-avd", "hp0").hosts[host.lower()].sessions.values()] == ["user002@contoso.com"]


def test_drain_and_undrain_steer_the_broker(arm: Any) -> None:
    twin = arm(pool_seed(2, running=2, users=4))
    pool = twin.estate.pool(SUB, "rg-avd", "hp0")
    with _gateway(twin) as gateway:
        hosts = [h.name for h in gateway.read_pool(REF).hosts]
        assert all(o.ok for o in gateway.set_drain(REF, hosts[:1], drain=True))
        placed = {twin.estate.logon(pool, f"user{i:03d}@contoso.com").host for i in (1, 2, 3)}
        assert placed == {hosts[1]}
        assert all(o.ok for o in gateway.set_drain(REF, hosts[:1], drain=False))
        read = gateway.read_pool(REF)
    assert [h.allow_new_session for h in read.hosts] == [True, True]
    assert twin.estate.logon(pool, "user004@contoso.com").host == hosts[0]


def test_a_message_reaches_the_user_session(arm: Any) -> None:
    twin = arm(pool_seed(1, running=1, users=1))
    _log_on(twin, 1)
    with _gateway(twin) as gateway:
        host = gateway.read_pool(REF).hosts[0]
        outcome = gateway.send_message(REF, host.name, host.sessions[0].id, "Heads up", "Logging off in 10 minutes")
        assert [s.upn for s in gateway.host_sessions(REF, host.name)] == ["user001@contoso.com"]
    assert outcome.ok
    assert twin.estate.messages == [(host.name, 1, "user001@contoso.com", "Heads up", "Logging off in 10 minutes")]


def test_moving_assignments_moves_who_can_sign_in(arm: Any) -> None:
    twin = arm(pool_seed(2, running=2, users=2, pools=2))
    estate = twin.estate
    groups = [estate.app_group(SUB, "rg-avd", f"dag{p}").id for p in range(2)]
    for a in estate.assignments_at(groups[1]):  # start with users assigned to pool 0 only
        estate.delete_assignment(groups[1], a.name)
    pools = [estate.pool(SUB, "rg-avd", f"hp{p}") for p in range(2)]
    assert [estate.logon(p, "user001@contoso.com").outcome for p in pools] == ["connected", "not_assigned"]
    with _gateway(twin) as gateway:
        moved = gateway.move_assignments(groups[:1], groups[1:])
        again = gateway.move_assignments(groups[:1], groups[1:])
        assert [a.principal_type for a in gateway.assignments(groups[1])] == ["Group"]
        assert gateway.assignments(groups[0]) == []
    assert [(o.action, o.result) for o in moved] == [("assign", "done"), ("unassign", "done")]
    # each move lists its source group once (the revoke reuses it); then the two checks above
    assert len(twin.server.log("GET", "roleAssignments$")) == 2 + 2
    assert again == []
    assert [estate.logon(p, "user002@contoso.com").outcome for p in pools] == ["not_assigned", "connected"]


def test_assigning_twice_is_a_no_op(arm: Any) -> None:
    twin = arm(pool_seed(1))
    group = twin.estate.app_group(SUB, "rg-avd", "dag0").id
    with _gateway(twin) as gateway:
        first = gateway.assign(group, "00000000-0000-4000-8000-0000000000aa")
        second = gateway.assign(group, "00000000-0000-4000-8000-0000000000aa")
    assert (first.result, second.result) == ("done", "already")
    assert len(twin.estate.assignments_at(group)) == 2


def test_default_azure_credential_works_unchanged_against_the_twin(arm: Any) -> None:
    from azure.identity import DefaultAzureCredential

    twin = arm(pool_seed(2, running=1))
    credential = DefaultAzureCredential(
        exclude_cli_credential=True, exclude_powershell_credential=True, exclude_developer_cli_credential=True
    )
    with AzureGateway(credential, endpoint=twin.base_url) as gateway:
        assert len(gateway.read_pool(REF).hosts) == 2
    assert [r.status for r in twin.server.log(pattern="/msi/token")] == [200]


def test_the_twin_refuses_a_missing_or_forged_token(arm: Any) -> None:
    twin = arm(pool_seed(1))
    url = f"{twin.base_url}/subscriptions/{SUB}/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization/hostPools/hp0"
    missing = requests.get(url, params={"api-version": "2024-04-03"}, verify=twin.ca.ca_path, timeout=5)
    forged = requests.get(
        url,
        params={"api-version": "2024-04-03"},
        verify=twin.ca.ca_path,
        timeout=5,
        headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "AuthenticationFailed")
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")


def test_tls_is_verified_so_an_untrusted_twin_is_refused(arm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    twin = arm(pool_seed(1))
    token = twin.identity.issue("https://management.azure.com")[0]

    class Fixed:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.credentials import AccessToken

            return AccessToken(token, 4102444800)

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with AzureGateway(Fixed(), endpoint=twin.base_url, budget_s=1.0) as gateway, pytest.raises(DependencyError, match="unreachable"):
        gateway.read_pool(REF)
    assert twin.server.log() == []


def test_unknown_pools_and_api_versions_get_arm_errors(arm: Any) -> None:
    twin = arm(pool_seed(1))
    with _gateway(twin) as gateway, pytest.raises(DependencyError, match="404 hostPoolDoesNotExist"):
        gateway.read_pool(PoolRef(SUB, "rg-avd", "nope"))
    token = twin.identity.issue("https://management.azure.com")[0]
    url = f"{twin.base_url}/subscriptions/{SUB}/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization/hostPools/hp0"
    old = requests.get(
        url,
        params={"api-version": "2019-01-23-preview"},
        verify=twin.ca.ca_path,
        timeout=5,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (old.status_code, old.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")


def test_the_standalone_twin_prints_ready_and_serves_the_demo_estate() -> None:
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-m", "local.twins.arm", "--port", "0"], stdout=subprocess.PIPE, text=True) as proc:
        try:
            _use_standalone(proc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _use_standalone(proc: Any) -> None:
    line = proc.stdout.readline() if proc.stdout else ""
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    assert line.startswith("READY ") and fields["subscription"] == "00000000-0000-4000-8000-0000000000e1"
    token = requests.get(
        fields["identity_endpoint"],
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": fields["identity_header"]},
        verify=fields["ca"],
        timeout=5,
    )
    pools = requests.get(
        f"{fields['base_url']}/subscriptions/{fields['subscription']}/resourceGroups/rg-avd-east"
        "/providers/Microsoft.DesktopVirtualization/hostPools",
        params={"api-version": "2024-04-03"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        verify=fields["ca"],
        timeout=5,
    )
    assert [p["name"] for p in pools.json()["value"]] == ["hp-east-pooled"]


def test_the_twin_throttles_as_arm_documents_and_the_gateway_stays_inside(arm: Any) -> None:
    """Token buckets per subscription and principal (reads 250 at 25/s): a burst past the bucket is answered 429
    with Retry-After and SubscriptionRequestsThrottled; every answer says what remains; the gateway's reads of a
    20-pool estate stay inside the bucket, and its retry rides out a throttled moment."""
    from local.twins.arm.api import Throttle

    now = [0.0]
    bucket = Throttle(clock=lambda: now[0])
    passed = [bucket.take(f"/subscriptions/{SUB}/resourceGroups/rg", "GET", "Bearer a")[0] is None for _ in range(260)]
    assert passed.count(True) == 250 and passed[250:] == [False] * 10
    refused, _ = bucket.take(f"/subscriptions/{SUB}/x", "GET", "Bearer a")
    assert refused is not None and refused.status == 429 and refused.headers["Retry-After"] == "1"
    assert refused.body["error"]["code"] == "SubscriptionRequestsThrottled"
    assert bucket.take(f"/subscriptions/{SUB}/x", "GET", "Bearer b") == (
        None,
        {"x-ms-ratelimit-remaining-subscription-reads": "249"},
    )  # another principal has its own bucket
    assert bucket.take(f"/subscriptions/{SUB}/x", "POST", "Bearer a")[0] is None  # writes have their own bucket
    now[0] += 1.0  # 25 tokens back
    assert [bucket.take(f"/subscriptions/{SUB}/x", "GET", "Bearer a")[0] is None for _ in range(26)].count(True) == 25

    twin = arm(pool_seed(20, pools=20, running=5, vm_groups=4))
    refs = [PoolRef(SUB, "rg-avd", f"hp{p}", (f"rg-hosts-{p % 4}",)) for p in range(20)]
    with _gateway(twin) as gateway:
        reads = gateway.read_pools(refs)
        assert not reads.errors and twin.throttle.throttled == 0  # 20 pools read well inside one bucket
        for key in list(twin.throttle._buckets):  # another tool has just spent the subscription's reads
            twin.throttle._buckets[key] = (0.0, twin.throttle.clock())
        again = gateway.read_pools(refs)
    assert not again.errors and twin.throttle.throttled > 0  # throttled, waited as told, read
    assert any(c.status == 429 for c in _arm_calls(twin))
