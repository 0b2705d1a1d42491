"""The one place Tandem talks to Azure Resource Manager: batched reads, bounded parallel actions, safe retries.

A host pool is read in three calls (pool, session hosts, user sessions; plus ARM paging) and one VM listing
(tags) per VM resource group, shared by every pool in it. Power comes from each host's AVD status, with an
instance view only for the hosts whose status leaves it open (booting, unhealthy, just shut down): every call
is one the published specs offer (`$expand=instanceView` on a List needs a scale-set `$filter`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from shared import USER_AGENT, settings
from shared.azure.identity import default_credential
from shared.azure.models import HostState, Outcome, PoolRef, PoolState, Result, UserSession
from shared.azure.resource_id import ResourceId
from shared.azure.retry import ArmRetryPolicy
from shared.errors import DependencyError
from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = get_logger("azure")
T = TypeVar("T")
DESKTOP_VIRTUALIZATION_USER = "1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63"  # built-in role definition id
ARM_SCOPE = "https://management.azure.com/.default"  # the public cloud's; see arm_scope for the others


def arm_scope(endpoint: str) -> str:
    """The token scope for an ARM endpoint: a sovereign cloud's ARM (https://management.usgovcloudapi.net,
    https://management.chinacloudapi.cn) is its own audience; anything else (a local twin) takes the public one."""
    host = (urlsplit(endpoint).hostname or "").lower()
    return f"https://{host}/.default" if host.startswith("management.") else ARM_SCOPE


DV_API = "2024-04-03"  # what azure-mgmt-desktopvirtualization 2.0.0 calls
COMPUTE_API = "2026-04-01"  # what azure-mgmt-compute 39 calls
AVD_PAGE = 1000  # items per page of the AVD lists (their documented pageSize): a 1,000-host pool in one page
SETTLED = timedelta(minutes=5)  # a host Shutdown this long is taken as deallocated without asking its VM
PLANS_FRESH = timedelta(minutes=10)  # a pool's scaling plans are read again after this long (they rarely change)


@dataclass(frozen=True)
class Assignment:
    """A role assignment made directly at an application group."""

    name: str
    scope: str
    principal_id: str
    principal_type: str
    role_definition_id: str


@dataclass
class PoolReads:
    """The result of reading many pools at once: their states, and an error for each pool that failed."""

    states: dict[str, PoolState] = field(default_factory=dict)
    errors: dict[str, DependencyError] = field(default_factory=dict)


def pooled_transport(max_connections: int, **timeouts: float) -> Any:
    """One HTTPS session with a connection pool as large as the parallelism (TLS verified, keep-alive)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=max_connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False, **timeouts)


def _describe(exc: BaseException) -> str:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, HttpResponseError):
        code = getattr(exc.error, "code", None) or exc.reason
        message = getattr(exc.error, "message", None) or ""
        return f"{exc.status_code} {code}: {message}".strip()
    if isinstance(exc, ServiceRequestError):
        return f"unreachable ({type(exc.inner_exception or exc).__name__})"
    if isinstance(exc, ServiceResponseError):
        return f"no complete answer ({type(exc.inner_exception or exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


class AzureGateway:
    """AVD, Compute and role-assignment calls through the real azure-mgmt SDKs.

    `credential` defaults to the Function App's managed identity; `endpoint` to TANDEM_ARM_ENDPOINT.
    `budget_s` (default TANDEM_ARM_RETRY_BUDGET_S, else 60 s) bounds the retries of any one request;
    `max_workers` bounds parallel calls.
    """

    def __init__(
        self,
        credential: TokenCredential | None = None,
        *,
        endpoint: str | None = None,
        max_workers: int = 16,
        budget_s: float | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoint = (endpoint or settings.get(settings.ARM_ENDPOINT) or "").rstrip("/")
        self._credential = credential
        self.max_workers = max_workers
        if budget_s is None:
            budget_s = float(settings.get(settings.ARM_RETRY_BUDGET) or 60.0)
        self._retry = ArmRetryPolicy(budget_s=budget_s, sleep=sleep or time.sleep)
        self._timeouts = {"connection_timeout": connect_timeout_s, "read_timeout": read_timeout_s}
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._transport: Any = None
        self._warmed = False
        self._plans: dict[str, tuple[datetime, str | None, str]] = {}  # pool key -> (read at, enabled plan, error)

    # ----------------------------------------------------------------- plumbing

    def close(self) -> None:
        """Release threads and connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._transport is not None:
            self._transport.session.close()

    def __enter__(self) -> AzureGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="arm")
            return self._pool

    def _client(self, kind: str, subscription: str) -> Any:
        with self._lock:
            client = self._clients.get((kind, subscription))
            if client is not None:
                return client
            if self._credential is None:
                self._credential = default_credential()
            if self._transport is None:
                self._transport = pooled_transport(self.max_workers, **self._timeouts)
            options: dict[str, Any] = {
                "base_url": self.endpoint,
                "retry_policy": self._retry,
                "transport": self._transport,
                "credential_scopes": [arm_scope(self.endpoint)],
                "user_agent": USER_AGENT,
            }
            if kind == "dv":
                from azure.mgmt.desktopvirtualization import DesktopVirtualizationMgmtClient

                client = DesktopVirtualizationMgmtClient(self._credential, subscription, **options)
            elif kind == "compute":
                from azure.mgmt.compute import ComputeManagementClient

                client = ComputeManagementClient(self._credential, subscription, **options)
            else:
                from azure.mgmt.authorization.v2022_04_01 import AuthorizationManagementClient

                client = AuthorizationManagementClient(self._credential, subscription, **options)
            self._clients[(kind, subscription)] = client
            return client

    def _warm_token(self) -> None:
        """Fetch the first token before going parallel, so a cold start asks the identity endpoint once."""
        with self._lock:
            if self._warmed:
                return
            if self._credential is None:
                self._credential = default_credential()
            try:
                self._credential.get_token(arm_scope(self.endpoint))
            except Exception as exc:  # the first real call reports it with its context
                log_event(log, "arm.token_failed", level=30, error=type(exc).__name__)
            self._warmed = True

    def _parallel(self, calls: Sequence[Callable[[], T]]) -> list[Future[T]]:
        self._warm_token()
        executor = self._executor()
        return [executor.submit(call) for call in calls]

    # ----------------------------------------------------------------- reads

    def read_pool(self, ref: PoolRef) -> PoolState:
        """One pool's state; DependencyError when ARM cannot answer."""
        reads = self.read_pools([ref])
        if ref.key in reads.errors:
            raise reads.errors[ref.key]
        return reads.states[ref.key]

    def read_pools(self, refs: Iterable[PoolRef]) -> PoolReads:
        """Many pools at once: per pool, get + list hosts + list sessions; per VM resource group, one VM listing
        (tags); power from each host's AVD status, and an instance view only for the hosts whose status leaves it
        open (booting, unhealthy, just shut down). Every call is one the published specs offer; answers are read as
        JSON through the SDKs' pipelines (auth, retries), without building SDK models."""
        from shared import clock

        refs = list({r.key: r for r in refs}.values())
        vm_groups: dict[tuple[str, str], Future[dict[str, dict[str, str]]]] = {}

        def list_group(sub: str, rg: str) -> None:
            key = (sub.lower(), rg.lower())
            if key not in vm_groups:
                vm_groups[key] = self._parallel([partial(self._vm_tags, sub, rg)])[0]

        for ref in refs:
            for rg in ref.vm_resource_groups:
                list_group(ref.subscription, rg)
        base = {ref.key: ref.arm_id for ref in refs}
        parts: dict[str, list[Future[Any]]] = {
            ref.key: self._parallel(
                [
                    partial(self._get_json, "dv", ref.subscription, base[ref.key], DV_API),
                    partial(self._list_json, "dv", ref.subscription, f"{base[ref.key]}/sessionHosts", DV_API, page_size=AVD_PAGE),
                    partial(self._list_json, "dv", ref.subscription, f"{base[ref.key]}/userSessions", DV_API, page_size=AVD_PAGE),
                ]
            )
            for ref in refs
        }
        now = clock.now()
        plans = {ref.key: self._parallel([partial(self._scaling_plan, ref)])[0] for ref in refs if not self._plan_fresh(ref.key, now)}
        reads = PoolReads()
        hosts_of: dict[str, list[dict[str, Any]]] = {}
        unsure: dict[str, Future[str]] = {}
        for ref in refs:
            try:
                hosts_of[ref.key] = parts[ref.key][1].result()
            except Exception as exc:
                reads.errors[ref.key] = self._error(f"read session hosts of {ref.name}", exc)
                continue
            for host in hosts_of[ref.key]:
                vm_id = str((host.get("properties") or {}).get("resourceId") or "")
                if vm_id:  # a VM in a resource group the topology did not name: list it too
                    list_group(*_group_of(vm_id))
                    if power_from_status(host.get("properties") or {}, now) is None and vm_id.lower() not in unsure:
                        unsure[vm_id.lower()] = self._parallel([partial(self._instance_power, vm_id)])[0]
        for ref in refs:
            if ref.key in reads.errors:
                continue
            try:
                pool = parts[ref.key][0].result()
                sessions = parts[ref.key][2].result()
                state = self._join(ref, pool, hosts_of[ref.key], sessions, vm_groups, unsure, now)
                reads.states[ref.key] = self._with_plan(state, plans.get(ref.key), now)
            except DependencyError as exc:
                reads.errors[ref.key] = exc
            except Exception as exc:
                reads.errors[ref.key] = self._error(f"read host pool {ref.name}", exc)
        for key, error in reads.errors.items():
            log_event(log, "arm.read_failed", level=40, pool=key, error=str(error))
        return reads

    def _plan_fresh(self, key: str, now: datetime) -> bool:
        with self._lock:
            seen = self._plans.get(key)
        return seen is not None and now - seen[0] < PLANS_FRESH

    def _scaling_plan(self, ref: PoolRef) -> str | None:
        """The native scaling plan enabled on the pool, if any (ScalingPlans_ListByHostPool)."""
        pool_id = ref.arm_id.lower()
        for plan in self._list_json("dv", ref.subscription, f"{ref.arm_id}/scalingPlans", DV_API, page_size=AVD_PAGE):
            for reference in (plan.get("properties") or {}).get("hostPoolReferences") or []:
                if str(reference.get("hostPoolArmPath") or "").lower() == pool_id and reference.get("scalingPlanEnabled"):
                    return str(plan.get("id") or "")
        return None

    def _with_plan(self, state: PoolState, read: Future[str | None] | None, now: datetime) -> PoolState:
        """The pool state with its scaling plan: read now, or remembered from a read within PLANS_FRESH. A failed
        read is remembered too (a pool whose plans Tandem may not read is not asked every minute)."""
        key = state.ref.key
        if read is not None:
            try:
                found: tuple[datetime, str | None, str] = (now, read.result(), "")
            except Exception as exc:
                found = (now, None, _describe(exc))
                log_event(log, "arm.scaling_plans_unread", level=30, pool=key, error=found[2])
            with self._lock:
                self._plans[key] = found
        with self._lock:
            _, plan, error = self._plans.get(key, (now, None, ""))
        return replace(state, scaling_plan=plan, scaling_plan_unread=error)

    def _send(self, kind: str, subscription: str, url: str) -> Any:
        """One GET through the client's pipeline (token, retries, timeouts); the JSON body, or HttpResponseError."""
        from azure.core.rest import HttpRequest

        client = self._client(kind, subscription)
        send = getattr(client, "send_request", None) or client._send_request  # the AVD SDK names it privately
        response = send(HttpRequest("GET", url))
        response.raise_for_status()
        return response.json()

    def _get_json(self, kind: str, subscription: str, path: str, api_version: str) -> dict[str, Any]:
        body = self._send(kind, subscription, f"{path}?api-version={api_version}")
        return body if isinstance(body, dict) else {}

    def _list_json(
        self, kind: str, subscription: str, path: str, api_version: str, *, page_size: int | None = None
    ) -> list[dict[str, Any]]:
        """Every item of an ARM list, following `nextLink` (AVD's lists take a `pageSize`)."""
        items: list[dict[str, Any]] = []
        url: str | None = f"{path}?api-version={api_version}" + (f"&pageSize={page_size}" if page_size else "")
        for _ in range(10_000):  # a listing that never ends its paging must not hang a read
            if not url:
                return items
            body = self._send(kind, subscription, url)
            items += [i for i in (body.get("value") or []) if isinstance(i, dict)]
            url = body.get("nextLink") or None
        raise DependencyError(f"ARM at {self.endpoint}: the listing of {path} did not end")

    def _vm_tags(self, subscription: str, resource_group: str) -> dict[str, dict[str, str]]:
        """The tags of every VM in a resource group, from one listing (VirtualMachines_List, no expansion)."""
        path = f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/virtualMachines"
        return {
            str(vm.get("id", "")).lower(): dict(vm.get("tags") or {})
            for vm in self._list_json("compute", subscription, path, COMPUTE_API)
        }

    def _instance_power(self, vm_id: str) -> str:
        """One VM's power state from its instance view (VirtualMachines_InstanceView): running, starting, ..."""
        view = self._get_json("compute", ResourceId.parse(vm_id).subscription, f"{vm_id}/instanceView", COMPUTE_API)
        codes = [str(s.get("code", "")) for s in view.get("statuses") or [] if isinstance(s, dict)]
        return next((c.split("/", 1)[1] for c in codes if c.startswith("PowerState/")), "unknown")

    def _join(
        self,
        ref: PoolRef,
        pool: dict[str, Any],
        hosts: list[dict[str, Any]],
        sessions: list[dict[str, Any]],
        vm_groups: dict[tuple[str, str], Future[dict[str, dict[str, str]]]],
        unsure: dict[str, Future[str]],
        now: datetime,
    ) -> PoolState:
        by_host: dict[str, list[UserSession]] = {}
        for s in sessions:
            props = s.get("properties") or {}
            host_name, session_id = _session_parts(str(s.get("id", "")))
            by_host.setdefault(host_name.lower(), []).append(
                UserSession(
                    session_id,
                    str(props.get("userPrincipalName") or ""),
                    str(props.get("sessionState") or "Unknown"),
                    _time(props.get("createTime")),
                )
            )
        states = []
        for h in hosts:
            props = h.get("properties") or {}
            name = str(h.get("name", "")).split("/")[-1]
            vm_id = str(props.get("resourceId") or "")
            power, tags = "unknown", {}
            if vm_id:
                try:
                    tags = vm_groups[_group_of(vm_id)].result().get(vm_id.lower(), {})
                    power = power_from_status(props, now) or unsure[vm_id.lower()].result()
                except Exception as exc:
                    raise self._error(f"read VM {vm_id.rsplit('/', 1)[-1]}", exc) from exc
            states.append(
                HostState(
                    name,
                    vm_id,
                    str(props.get("status") or "Unknown"),
                    bool(props.get("allowNewSession")),
                    power,
                    tags,
                    tuple(by_host.get(name.lower(), ())),
                )
            )
        pprops = pool.get("properties") or {}
        return PoolState(
            ref,
            str(pprops.get("loadBalancerType") or "BreadthFirst"),
            int(pprops.get("maxSessionLimit") or 0),
            bool(pprops.get("startVMOnConnect")),
            tuple(states),
            dict(pool.get("tags") or {}),
        )

    def host_sessions(self, ref: PoolRef, host: str) -> list[UserSession]:
        """The sessions on one host, read now (the re-read before any deallocation)."""
        try:
            found = list(self._dv(ref).user_sessions.list(ref.resource_group, ref.name, host))
        except Exception as exc:
            raise self._error(f"list sessions on {host}", exc) from exc
        return [
            UserSession(_session_parts(s.id)[1], s.user_principal_name or "", s.session_state or "Unknown", s.create_time)
            for s in found
        ]

    # ----------------------------------------------------------------- compute actions

    def start_vms(self, vm_ids: Iterable[str]) -> list[Outcome]:
        """Start VMs in parallel; accepted starts are `done`, running ones `already`. Does not wait for boot."""
        return self._vm_action("start", vm_ids)

    def deallocate_vms(self, vm_ids: Iterable[str]) -> list[Outcome]:
        """Deallocate VMs in parallel (billing stops); deallocated ones are `already`."""
        return self._vm_action("deallocate", vm_ids)

    def _vm_action(self, action: str, vm_ids: Iterable[str]) -> list[Outcome]:
        def one(vm_id: str) -> Outcome:
            vm = ResourceId.parse(vm_id)
            seen: list[int] = []
            ops = self._client("compute", vm.subscription).virtual_machines
            begin = ops.begin_start if action == "start" else ops.begin_deallocate
            try:
                begin(
                    vm.resource_group, vm.name, polling=False, raw_response_hook=lambda r: seen.append(r.http_response.status_code)
                ).result()
            except Exception as exc:
                return self._outcome(vm_id, action, exc)
            return Outcome(vm_id, action, "already" if seen and seen[-1] == 200 else "done")

        outcomes = [f.result() for f in self._parallel([partial(one, v) for v in dict.fromkeys(vm_ids)])]
        self._log_outcomes(outcomes)
        return outcomes

    def run_command(self, vm_id: str, script: Sequence[str]) -> str:
        """Run a PowerShell script on a running VM (Compute Run Command) and return its standard output.

        The script must be read-only: a retried request runs it again. DependencyError when the VM cannot run it
        (not running, no agent) or the script wrote to standard error."""
        vm = ResourceId.parse(vm_id)
        try:
            result = (
                self._client("compute", vm.subscription)
                .virtual_machines.begin_run_command(
                    vm.resource_group, vm.name, {"commandId": "RunPowerShellScript", "script": list(script)}
                )
                .result()
            )
        except Exception as exc:
            raise self._error(f"run the FSLogix settings read on {vm.name}", exc) from exc
        out = {(s.code or "").split("/")[1].lower(): s.message or "" for s in (result.value or []) if (s.code or "").count("/") >= 2}
        if out.get("stderr"):
            raise DependencyError(f"Run Command on {vm.name} wrote to standard error: {out['stderr'][:200]}")
        return out.get("stdout", "")

    # ----------------------------------------------------------------- desktop virtualization actions

    def set_drain(self, ref: PoolRef, hosts: Iterable[str], drain: bool) -> list[Outcome]:
        """Drain (no new sessions) or undrain hosts; always sent, since ARM can report a drain it then applies."""
        from azure.mgmt.desktopvirtualization.models import SessionHostPatch

        action = "drain" if drain else "undrain"

        def one(host: str) -> Outcome:
            try:
                self._dv(ref).session_hosts.update(
                    ref.resource_group, ref.name, host, session_host=SessionHostPatch(allow_new_session=not drain)
                )
            except Exception as exc:
                return self._outcome(host, action, exc)
            return Outcome(host, action, "done")

        outcomes = [f.result() for f in self._parallel([partial(one, h) for h in dict.fromkeys(hosts)])]
        self._log_outcomes(outcomes, pool=ref.key)
        return outcomes

    def send_message(self, ref: PoolRef, host: str, session_id: str, title: str, body: str) -> Outcome:
        """Show a message in a user's session (not retried on ambiguous failures: it would show twice)."""
        from azure.mgmt.desktopvirtualization.models import SendMessage

        target = f"{host}/{session_id}"
        try:
            self._dv(ref).user_sessions.send_message(
                ref.resource_group, ref.name, host, session_id, send_message=SendMessage(message_title=title, message_body=body)
            )
        except Exception as exc:
            return self._outcome(target, "message", exc)
        return Outcome(target, "message", "done")

    def send_messages(self, ref: PoolRef, sessions: Iterable[tuple[str, str]], title: str, body: str) -> list[Outcome]:
        """`send_message` to many (host, session id) at once, in parallel."""
        return [f.result() for f in self._parallel([partial(self.send_message, ref, h, s, title, body) for h, s in sessions])]

    def logoffs(self, ref: PoolRef, sessions: Iterable[tuple[str, str]]) -> list[Outcome]:
        """`logoff` many (host, session id) at once, in parallel."""
        return [f.result() for f in self._parallel([partial(self.logoff, ref, h, s) for h, s in sessions])]

    def logoff(self, ref: PoolRef, host: str, session_id: str) -> Outcome:
        """Log a session off (force); a session already gone is `already`."""
        target = f"{host}/{session_id}"
        try:
            self._dv(ref).user_sessions.delete(ref.resource_group, ref.name, host, session_id, force=True)
        except Exception as exc:
            return self._outcome(target, "logoff", exc)
        return Outcome(target, "logoff", "done")

    # ----------------------------------------------------------------- application group assignments

    def assignments(self, app_group_id: str) -> list[Assignment]:
        """Desktop Virtualization User assignments made directly at an application group."""
        group = ResourceId.parse(app_group_id)
        try:
            found = list(self._client("auth", group.subscription).role_assignments.list_for_scope(app_group_id, filter="atScope()"))
        except Exception as exc:
            raise self._error(f"list assignments of {group.name}", exc) from exc
        return [
            Assignment(a.name, a.scope, a.principal_id, a.principal_type or "User", a.role_definition_id)
            for a in found
            if (a.scope or "").lower() == app_group_id.lower()
            and (a.role_definition_id or "").lower().endswith(DESKTOP_VIRTUALIZATION_USER)
        ]

    def assign(self, app_group_id: str, principal_id: str, principal_type: str = "Group") -> Outcome:
        """Grant Desktop Virtualization User at an application group; the name is derived, so a repeat is a no-op."""
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        group = ResourceId.parse(app_group_id)
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app_group_id.lower()}|{principal_id}|{DESKTOP_VIRTUALIZATION_USER}"))
        role = f"/subscriptions/{group.subscription}/providers/Microsoft.Authorization/roleDefinitions/{DESKTOP_VIRTUALIZATION_USER}"
        target = f"{group.name}:{principal_id}"
        seen: list[int] = []
        try:
            self._client("auth", group.subscription).role_assignments.create(
                app_group_id,
                name,
                RoleAssignmentCreateParameters(role_definition_id=role, principal_id=principal_id, principal_type=principal_type),
                raw_response_hook=lambda r: seen.append(r.http_response.status_code),
            )
        except Exception as exc:
            from azure.core.exceptions import HttpResponseError

            if isinstance(exc, HttpResponseError) and getattr(exc.error, "code", "") == "RoleAssignmentExists":
                return Outcome(target, "assign", "already")
            return self._outcome(target, "assign", exc)
        return Outcome(target, "assign", "done" if seen and seen[-1] == 201 else "already")

    def unassign(self, app_group_id: str, principal_id: str) -> list[Outcome]:
        """Remove a principal's Desktop Virtualization User assignments at an application group."""
        return self._revoke(app_group_id, [a for a in self.assignments(app_group_id) if a.principal_id == principal_id])

    def _revoke(self, app_group_id: str, assignments: Sequence[Assignment]) -> list[Outcome]:
        group = ResourceId.parse(app_group_id)
        outcomes = []
        for assignment in assignments:
            target = f"{group.name}:{assignment.principal_id}"
            try:
                self._client("auth", group.subscription).role_assignments.delete(app_group_id, assignment.name)
            except Exception as exc:
                outcomes.append(self._outcome(target, "unassign", exc))
                continue
            outcomes.append(Outcome(target, "unassign", "done"))
        return outcomes

    def move_assignments(self, from_groups: Sequence[str], to_groups: Sequence[str]) -> list[Outcome]:
        """Move users between regions: grant every principal of `from_groups` on `to_groups`, then revoke.

        Revocation happens only after every grant succeeded, so no user is ever left without a desktop.
        """
        held = {group: self.assignments(group) for group in from_groups}
        principals = {a.principal_id: a.principal_type for found in held.values() for a in found}
        grants = [
            f.result() for f in self._parallel([partial(self.assign, g, p, t) for g in to_groups for p, t in principals.items()])
        ]
        outcomes = list(grants)
        if all(o.ok for o in grants):
            for group, found in held.items():
                outcomes.extend(self._revoke(group, found))
        self._log_outcomes(outcomes)
        return outcomes

    # ----------------------------------------------------------------- helpers

    def _dv(self, ref: PoolRef) -> Any:
        return self._client("dv", ref.subscription)

    def _outcome(self, target: str, action: str, exc: BaseException) -> Outcome:
        from azure.core.exceptions import HttpResponseError

        result: Result = "failed"
        if isinstance(exc, HttpResponseError):
            if exc.status_code == 404:
                # a session or assignment already gone is what a logoff or revoke wanted
                result = "already" if action in ("logoff", "unassign") else "not_found"
            elif exc.status_code == 409:
                result = "conflict"
        return Outcome(target, action, result, _describe(exc))

    def _error(self, what: str, exc: BaseException) -> DependencyError:
        return DependencyError(f"ARM at {self.endpoint}: could not {what}: {_describe(exc)}")

    @staticmethod
    def _log_outcomes(outcomes: Sequence[Outcome], **fields: Any) -> None:
        for o in outcomes:
            log_event(
                log, f"arm.{o.action}", level=20 if o.ok else 30, target=o.target, result=o.result, detail=o.detail or None, **fields
            )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def power_from_status(props: dict[str, Any], now: datetime) -> str | None:
    """A session host's VM power as its AVD status tells it, when it does: an Available (or NeedsAssistance) host runs;
    one Shutdown for SETTLED is deallocated (or stopped). Anything else (booting, unhealthy, just shut down) is for
    the VM's instance view to say: None."""
    status = props.get("status")
    if status in ("Available", "NeedsAssistance"):
        return "running"
    if status == "Shutdown":
        since = _time(props.get("statusTimestamp"))
        if since is not None and now - since >= SETTLED:
            return "deallocated"
    return None


def _session_parts(session_id: str) -> tuple[str, str]:
    """(session host name, session id) from a user session's ARM id (…/sessionHosts/{host}/userSessions/{id})."""
    parts = session_id.rstrip("/").rsplit("/", 4)
    if len(parts) == 5 and parts[1].lower() == "sessionhosts":
        return parts[2], parts[4]
    segments = session_id.rstrip("/").split("/")
    i = [p.lower() for p in segments].index("sessionhosts")
    return segments[i + 1], segments[-1]


def _group_of(vm_id: str) -> tuple[str, str]:
    """(subscription, resource group), lower-case, of a resource id: the key of the shared VM listings."""
    parts = vm_id.split("/")
    if len(parts) > 4 and parts[1].lower() == "subscriptions" and parts[3].lower() == "resourcegroups":
        return parts[2].lower(), parts[4].lower()
    vm = ResourceId.parse(vm_id)
    return vm.subscription.lower(), vm.resource_group.lower()
