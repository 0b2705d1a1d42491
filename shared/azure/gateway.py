"""The one place Tandem talks to Azure Resource Manager: batched reads, bounded parallel actions, safe retries.

A host pool is read in three list calls (pool, session hosts, user sessions; plus ARM paging) and one
VM listing with instance view per VM resource group, shared by every pool in it; never one call per host.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

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
ARM_SCOPE = "https://management.azure.com/.default"


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

    def __init__(self, credential: TokenCredential | None = None, *, endpoint: str | None = None,
                 max_workers: int = 16, budget_s: float | None = None, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 30.0, sleep: Callable[[float], None] | None = None) -> None:
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
            options: dict[str, Any] = {"base_url": self.endpoint, "retry_policy": self._retry,
                                       "transport": self._transport, "credential_scopes": [ARM_SCOPE],
                                       "user_agent": USER_AGENT}
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
                self._credential.get_token(ARM_SCOPE)
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
        """Many pools at once: per pool, get + list hosts + list sessions; per VM resource group, one listing."""
        refs = list({r.key: r for r in refs}.values())
        vm_groups: dict[tuple[str, str], Future[dict[str, tuple[str, dict[str, str]]]]] = {}

        def list_group(sub: str, rg: str) -> None:
            key = (sub.lower(), rg.lower())
            if key not in vm_groups:
                vm_groups[key] = self._parallel([lambda: self._vm_power(sub, rg)])[0]

        for ref in refs:
            for rg in ref.vm_resource_groups:
                list_group(ref.subscription, rg)
        parts = {ref.key: self._parallel([lambda r=ref: self._dv(r).host_pools.get(r.resource_group, r.name),
                                          lambda r=ref: list(self._dv(r).session_hosts.list(r.resource_group, r.name)),
                                          lambda r=ref: list(self._dv(r).user_sessions.list_by_host_pool(
                                              r.resource_group, r.name))])
                 for ref in refs}
        reads = PoolReads()
        hosts_of: dict[str, list[Any]] = {}
        for ref in refs:
            try:
                hosts_of[ref.key] = parts[ref.key][1].result()
            except Exception as exc:
                reads.errors[ref.key] = self._error(f"read session hosts of {ref.name}", exc)
                continue
            for host in hosts_of[ref.key]:
                if host.resource_id:  # a VM in a resource group the topology did not name: list it too
                    vm = ResourceId.parse(host.resource_id)
                    list_group(vm.subscription, vm.resource_group)
        for ref in refs:
            if ref.key in reads.errors:
                continue
            try:
                pool = parts[ref.key][0].result()
                sessions = parts[ref.key][2].result()
                reads.states[ref.key] = self._join(ref, pool, hosts_of[ref.key], sessions, vm_groups)
            except DependencyError as exc:
                reads.errors[ref.key] = exc
            except Exception as exc:
                reads.errors[ref.key] = self._error(f"read host pool {ref.name}", exc)
        for key, error in reads.errors.items():
            log_event(log, "arm.read_failed", level=40, pool=key, error=str(error))
        return reads

    def _vm_power(self, subscription: str, resource_group: str) -> dict[str, tuple[str, dict[str, str]]]:
        """Power state and tags of every VM in a resource group, from one listing with instance view."""
        machines = self._client("compute", subscription).virtual_machines.list(resource_group, expand="instanceView")
        power: dict[str, tuple[str, dict[str, str]]] = {}
        for vm in machines:
            statuses = vm.instance_view.statuses if vm.instance_view and vm.instance_view.statuses else []
            state = next((s.code.split("/", 1)[1] for s in statuses if s.code and s.code.startswith("PowerState/")),
                         "unknown")
            power[vm.id.lower()] = (state, dict(vm.tags or {}))
        return power

    def _join(self, ref: PoolRef, pool: Any, hosts: list[Any], sessions: list[Any],
              vm_groups: dict[tuple[str, str], Future[dict[str, tuple[str, dict[str, str]]]]]) -> PoolState:
        by_host: dict[str, list[UserSession]] = {}
        for s in sessions:
            host_name, session_id = _session_parts(s.id)
            by_host.setdefault(host_name.lower(), []).append(
                UserSession(session_id, s.user_principal_name or "", s.session_state or "Unknown", s.create_time))
        states = []
        for h in hosts:
            name = h.name.split("/")[-1]
            power, tags = "unknown", {}
            if h.resource_id:
                vm = ResourceId.parse(h.resource_id)
                try:
                    listing = vm_groups[(vm.subscription.lower(), vm.resource_group.lower())].result()
                except Exception as exc:
                    raise self._error(f"list VMs in {vm.resource_group}", exc) from exc
                power, tags = listing.get(h.resource_id.lower(), ("unknown", {}))
            states.append(HostState(name, h.resource_id or "", h.status or "Unknown", bool(h.allow_new_session),
                                    power, tags, tuple(by_host.get(name.lower(), ()))))
        return PoolState(ref, pool.load_balancer_type or "BreadthFirst", int(pool.max_session_limit or 0),
                         bool(pool.start_vm_on_connect), tuple(states), dict(pool.tags or {}))

    def host_sessions(self, ref: PoolRef, host: str) -> list[UserSession]:
        """The sessions on one host, read now (the re-read before any deallocation)."""
        try:
            found = list(self._dv(ref).user_sessions.list(ref.resource_group, ref.name, host))
        except Exception as exc:
            raise self._error(f"list sessions on {host}", exc) from exc
        return [UserSession(_session_parts(s.id)[1], s.user_principal_name or "", s.session_state or "Unknown",
                            s.create_time) for s in found]

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
                begin(vm.resource_group, vm.name, polling=False,
                      raw_response_hook=lambda r: seen.append(r.http_response.status_code)).result()
            except Exception as exc:
                return self._outcome(vm_id, action, exc)
            return Outcome(vm_id, action, "already" if seen and seen[-1] == 200 else "done")

        outcomes = [f.result() for f in self._parallel([lambda v=v: one(v) for v in dict.fromkeys(vm_ids)])]
        self._log_outcomes(outcomes)
        return outcomes

    def run_command(self, vm_id: str, script: Sequence[str]) -> str:
        """Run a PowerShell script on a running VM (Compute Run Command) and return its standard output.

        The script must be read-only: a retried request runs it again. DependencyError when the VM cannot run it
        (not running, no agent) or the script wrote to standard error."""
        vm = ResourceId.parse(vm_id)
        try:
            result = self._client("compute", vm.subscription).virtual_machines.begin_run_command(
                vm.resource_group, vm.name, {"commandId": "RunPowerShellScript", "script": list(script)}).result()
        except Exception as exc:
            raise self._error(f"run the FSLogix settings read on {vm.name}", exc) from exc
        out = {(s.code or "").split("/")[1].lower(): s.message or "" for s in (result.value or [])
               if (s.code or "").count("/") >= 2}
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
                self._dv(ref).session_hosts.update(ref.resource_group, ref.name, host,
                                                   session_host=SessionHostPatch(allow_new_session=not drain))
            except Exception as exc:
                return self._outcome(host, action, exc)
            return Outcome(host, action, "done")

        outcomes = [f.result() for f in self._parallel([lambda h=h: one(h) for h in dict.fromkeys(hosts)])]
        self._log_outcomes(outcomes, pool=ref.key)
        return outcomes

    def send_message(self, ref: PoolRef, host: str, session_id: str, title: str, body: str) -> Outcome:
        """Show a message in a user's session (not retried on ambiguous failures: it would show twice)."""
        from azure.mgmt.desktopvirtualization.models import SendMessage

        target = f"{host}/{session_id}"
        try:
            self._dv(ref).user_sessions.send_message(ref.resource_group, ref.name, host, session_id,
                                                     send_message=SendMessage(message_title=title, message_body=body))
        except Exception as exc:
            return self._outcome(target, "message", exc)
        return Outcome(target, "message", "done")

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
            found = list(self._client("auth", group.subscription).role_assignments.list_for_scope(
                app_group_id, filter="atScope()"))
        except Exception as exc:
            raise self._error(f"list assignments of {group.name}", exc) from exc
        return [Assignment(a.name, a.scope, a.principal_id, a.principal_type or "User", a.role_definition_id)
                for a in found if (a.scope or "").lower() == app_group_id.lower()
                and (a.role_definition_id or "").lower().endswith(DESKTOP_VIRTUALIZATION_USER)]

    def assign(self, app_group_id: str, principal_id: str, principal_type: str = "Group") -> Outcome:
        """Grant Desktop Virtualization User at an application group; the name is derived, so a repeat is a no-op."""
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        group = ResourceId.parse(app_group_id)
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app_group_id.lower()}|{principal_id}|{DESKTOP_VIRTUALIZATION_USER}"))
        role = (f"/subscriptions/{group.subscription}/providers/Microsoft.Authorization/roleDefinitions/"
                f"{DESKTOP_VIRTUALIZATION_USER}")
        target = f"{group.name}:{principal_id}"
        seen: list[int] = []
        try:
            self._client("auth", group.subscription).role_assignments.create(
                app_group_id, name, RoleAssignmentCreateParameters(
                    role_definition_id=role, principal_id=principal_id, principal_type=principal_type),
                raw_response_hook=lambda r: seen.append(r.http_response.status_code))
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
        grants = [f.result() for f in self._parallel(
            [lambda g=g, p=p, t=t: self.assign(g, p, t) for g in to_groups for p, t in principals.items()])]
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
            log_event(log, f"arm.{o.action}", level=20 if o.ok else 30, target=o.target, result=o.result,
                      detail=o.detail or None, **fields)


def _session_parts(session_id: str) -> tuple[str, str]:
    """(session host name, session id) from a user session's ARM id."""
    parts = session_id.rstrip("/").split("/")
    lower = [p.lower() for p in parts]
    i = lower.index("sessionhosts")
    return parts[i + 1], parts[-1]
