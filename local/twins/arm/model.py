"""The ARM twin's behavioural model: VMs, session hosts, users and a broker on a (virtual) clock.

Plain Python, no HTTP: the twin serves it over ARM REST, and benchmarks may drive it in-process.
Every public method takes the model lock and first settles the timed transitions that are due.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from local.runtime.clock import Clock
from shared.azure.resource_id import ResourceId

DESKTOP_VIRTUALIZATION_USER = "1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63"  # built-in role definition id
LoadBalancer = Literal["BreadthFirst", "DepthFirst"]
DV = "Microsoft.DesktopVirtualization"


def vm_id(subscription: str, resource_group: str, name: str) -> str:
    """A VM's ARM id."""
    return str(ResourceId(subscription, resource_group, "Microsoft.Compute", "virtualMachines", name))


class ModelError(Exception):
    """A request the model refuses; `status` and `code` are what ARM would answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(kind: str, name: str) -> ModelError:
    """ARM's 404 for a resource that does not exist."""
    return ModelError(404, "ResourceNotFound", f"The Resource '{kind}/{name}' was not found.")


@dataclass(frozen=True)
class Delay:
    """A distribution of seconds: fixed, uniform(low, high), normal(mean, sd) clipped at zero, lognormal(median, p95)."""

    kind: Literal["fixed", "uniform", "normal", "lognormal"] = "fixed"
    a: float = 0.0
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """One draw."""
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "normal":
            return max(0.0, rng.gauss(self.a, self.b))
        if self.kind == "lognormal":  # median a, 95th percentile b
            return self.a * math.exp(math.log(self.b / self.a) / 1.6449 * rng.gauss(0.0, 1.0))
        return self.a

    @property
    def low(self) -> float:
        """The shortest delay this distribution can produce."""
        return self.a if self.kind in ("fixed", "uniform") else 0.0

    @property
    def p95(self) -> float:
        """The 95th percentile of this distribution (what a reference that plans for the slow boot waits)."""
        if self.kind == "uniform":
            return self.a + 0.95 * (self.b - self.a)
        if self.kind == "normal":
            return self.a + 1.6449 * self.b
        return self.b if self.kind == "lognormal" else self.a


@dataclass(frozen=True)
class Timings:
    """How long things take in the modelled estate."""

    boot: timedelta = timedelta(seconds=45)
    deallocate: timedelta = timedelta(seconds=90)
    agent_ready: Delay = Delay("uniform", 60, 240)
    disconnected_logoff: timedelta | None = None  # the RDS "end a disconnected session" limit
    idle_disconnect: timedelta | None = None  # the RDS idle limit: an idle active session is disconnected
    svmoc_interval: timedelta = timedelta(minutes=5)  # Start VM on Connect: at most one pooled VM per interval


@dataclass
class Vm:
    """A virtual machine; power moves from a transitional state to its target at `due`."""

    id: str
    subscription: str
    resource_group: str
    name: str
    location: str
    vm_id: str
    size: str = "Standard_D8s_v5"
    tags: dict[str, str] = field(default_factory=dict)
    target: str = "deallocated"
    transitional: str | None = None
    due: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    host: Host | None = None  # the session host running on this VM, set when the host is added

    def power(self, now: datetime) -> str:
        """`starting`, `running`, `deallocating`, `deallocated` (as PowerState/<code>)."""
        if self.transitional is not None and self.due is not None and now < self.due:
            return self.transitional
        return self.target


@dataclass
class Session:
    """A user session on a session host."""

    id: int
    upn: str
    created: datetime
    state: str = "Active"  # Active | Disconnected
    app_type: str = "Desktop"
    changed: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Host:
    """A session host; its status follows its VM's power and the agent's readiness."""

    pool: Pool
    name: str  # FQDN, as ARM names it
    vm: Vm | None
    allow_new_session: bool = True
    sessions: dict[int, Session] = field(default_factory=dict)
    agent_ready_at: datetime | None = None
    static_status: str = "Available"  # used only for imported hosts whose VM the twin does not model
    status_since: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # friendlyName/assignedUser set through PATCH
    fslogix: dict[str, Any] = field(default_factory=dict)  # HKLM\SOFTWARE\FSLogix\Profiles values on the VM
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def status(self, now: datetime) -> str:
        """Available, Unavailable or Shutdown, as the AVD agent would report it."""
        if self.vm is None:
            return self.static_status
        power = self.vm.power(now)
        if power == "running":
            return "Available" if self.agent_ready_at is not None and now >= self.agent_ready_at else "Unavailable"
        if power == "starting":
            return "Unavailable"
        return "Shutdown"

    def status_timestamp(self, now: datetime) -> datetime | None:
        """When the current status began (derived from the VM's transitions)."""
        if self.vm is None:
            return self.status_since
        status = self.status(now)
        if status == "Available" and self.agent_ready_at is not None:
            return self.agent_ready_at
        if self.vm.due is not None and now >= self.vm.due:
            return self.vm.due
        return self.status_since

    def next_session(self, upn: str, now: datetime) -> Session:
        """Open a session for `upn` on this host."""
        session = Session(next(self._ids), upn, now, changed=now)
        self.sessions[session.id] = session
        return session


@dataclass
class Pool:
    """A pooled host pool."""

    subscription: str
    resource_group: str
    name: str
    location: str
    load_balancer_type: LoadBalancer = "BreadthFirst"
    max_session_limit: int = 10
    start_vm_on_connect: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    last_svmoc: datetime | None = None

    @property
    def id(self) -> str:
        """The pool's ARM id."""
        return str(ResourceId(self.subscription, self.resource_group, DV, "hostPools", self.name))

    def point(self, t: datetime, landed: int, missed: int, label: str | None = None) -> dict[str, Any]:
        """One point of the pool's day curve (the benchmark's and the demo's): billed hosts, hosts serving (Available
        and taking sessions), sessions, and the logons that landed and missed since the last point."""
        on = [h for h in self.hosts.values() if h.vm and h.vm.power(t) != "deallocated"]
        serving = sum(1 for h in on if h.allow_new_session and h.status(t) == "Available")
        sessions = sum(len(h.sessions) for h in self.hosts.values())
        return {"t": label or t.strftime("%H:%M"), "on": len(on), "serving": serving, "sessions": sessions, "logons": landed,
                "misses": missed}  # fmt: skip


@dataclass
class ScalingPlan:
    """A native autoscale scaling plan and the host pools it references (each enabled or not)."""

    subscription: str
    resource_group: str
    name: str
    location: str
    pools: dict[str, bool] = field(default_factory=dict)  # host pool ARM id (lower) -> scalingPlanEnabled
    time_zone: str = "W. Europe Standard Time"

    @property
    def id(self) -> str:
        """The plan's ARM id."""
        return str(ResourceId(self.subscription, self.resource_group, DV, "scalingPlans", self.name))


@dataclass
class AppGroup:
    """An application group (its role assignments live in Estate.assignments)."""

    subscription: str
    resource_group: str
    name: str
    location: str
    pool: Pool | None
    kind: str = "Desktop"
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The group's ARM id: the scope of its role assignments."""
        return str(ResourceId(self.subscription, self.resource_group, DV, "applicationGroups", self.name))


@dataclass
class Site:
    """A function app (Microsoft.Web/sites): where it answers, the Entra ID app its sign-in accepts, and its
    function keys, read from the runtime that serves it."""

    subscription: str
    resource_group: str
    name: str
    location: str
    host_name: str  # defaultHostName: the HTTPS listener's host (and, locally, its port)
    client_id: str  # the Entra ID app registration App Service authentication validates tokens for
    keys: Callable[[str], str | None]  # function name -> its default key, None when there is no such function

    @property
    def id(self) -> str:
        """The site's ARM id."""
        return str(ResourceId(self.subscription, self.resource_group, "Microsoft.Web", "sites", self.name))


@dataclass
class RoleAssignment:
    """A role assignment at some scope."""

    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str = "Group"
    created: datetime | None = None

    @property
    def id(self) -> str:
        """The assignment's ARM id."""
        return f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"


@dataclass
class Operation:
    """A long-running VM operation; it succeeds when the VM reaches its target power state."""

    id: str
    vm: Vm
    kind: str
    started: datetime
    done_at: datetime

    def status(self, now: datetime) -> str:
        """InProgress or Succeeded."""
        return "Succeeded" if now >= self.done_at else "InProgress"


@dataclass(frozen=True)
class Logon:
    """The broker's answer to a logon attempt."""

    upn: str
    at: datetime
    outcome: Literal["connected", "reconnected", "no_capacity", "not_assigned"]
    host: str | None = None
    session_id: int | None = None

    @property
    def missed(self) -> bool:
        """A logon miss: the user was assigned but no host could take them."""
        return self.outcome == "no_capacity"


def _key(*parts: str) -> tuple[str, ...]:
    return tuple(p.lower() for p in parts)


class Estate:
    """Subscriptions, resource groups, host pools, VMs, app groups, role assignments and users."""

    def __init__(self, clock: Clock, *, timings: Timings | None = None, seed: int = 0) -> None:
        self.clock = clock
        self.timings = timings or Timings()
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.resource_groups: dict[tuple[str, ...], str] = {}  # (sub, rg) -> location
        self.pools: dict[tuple[str, ...], Pool] = {}
        self.vms: dict[str, Vm] = {}
        self.app_groups: dict[tuple[str, ...], AppGroup] = {}
        self.scaling_plans: dict[tuple[str, ...], ScalingPlan] = {}
        self.assignments: dict[str, RoleAssignment] = {}
        self.sites: dict[tuple[str, ...], Site] = {}
        self.users: dict[str, set[str]] = {}  # upn (lower) -> principal ids (the user and their groups)
        self.operations: dict[str, Operation] = {}
        self.logons: list[Logon] = []
        self.messages: list[tuple[str, int, str, str, str]] = []  # (host, session id, upn, title, body)
        self.dropped_sessions = 0
        self.commands: list[tuple[str, str, list[str]]] = []  # every Run Command: (VM, command id, script)
        # FSLogix on the hosts: called ("attach" | "detach", host, upn) when a session starts or ends, so the
        # storage twin can open the user's profile container and close it (with its last write) after sign-out
        self.profile_hook: Callable[[str, Host, str], None] | None = None
        self._timers: list[tuple[datetime, int, str, Host, int]] = []
        self._seq = itertools.count()

    # ----------------------------------------------------------------- building

    def add_resource_group(self, subscription: str, name: str, location: str) -> None:
        """Create a resource group (idempotent)."""
        self.resource_groups.setdefault(_key(subscription, name), location)

    def add_pool(self, pool: Pool) -> Pool:
        """Register a host pool."""
        self.add_resource_group(pool.subscription, pool.resource_group, pool.location)
        self.pools[_key(pool.subscription, pool.resource_group, pool.name)] = pool
        return pool

    def add_site(self, site: Site) -> Site:
        """Register a function app (again, when the runtime behind it restarts on new ports)."""
        self.add_resource_group(site.subscription, site.resource_group, site.location)
        self.sites[_key(site.subscription, site.resource_group, site.name)] = site
        return site

    def add_vm(self, vm: Vm) -> Vm:
        """Register a VM."""
        self.add_resource_group(vm.subscription, vm.resource_group, vm.location)
        self.vms[vm.id.lower()] = vm
        return vm

    def add_host(self, pool: Pool, name: str, vm: Vm | None, *, running: bool = False) -> Host:
        """Register a session host, optionally already running with its agent ready."""
        # a host added switched off has been so for a while (its status is settled); one added running starts now
        host = Host(pool, name, vm, status_since=self.clock.now() - (timedelta(0) if running else timedelta(days=1)))
        if vm is not None:
            vm.host = host
        if vm is not None and running:
            vm.target, vm.transitional, vm.due = "running", None, None
            host.agent_ready_at = self.clock.now()
        pool.hosts[name.lower()] = host
        return host

    def set_fslogix(self, pool: Pool, values: dict[str, Any]) -> None:
        """Set the FSLogix profile registry values on every host of a pool (as a GPO or image would)."""
        with self.lock:
            for host in pool.hosts.values():
                host.fslogix = dict(values)

    def assign_scaling_plan(
        self, pool: Pool, name: str = "sp-native", *, enabled: bool = True, resource_group: str | None = None
    ) -> ScalingPlan:
        """Reference `pool` from scaling plan `name` (created in the pool's region), enabled or not."""
        rg = resource_group or pool.resource_group
        plan = self.scaling_plans.setdefault(
            _key(pool.subscription, rg, name), ScalingPlan(pool.subscription, rg, name, pool.location)
        )
        plan.pools[pool.id.lower()] = enabled
        return plan

    def scaling_plans_of(self, pool: Pool) -> list[ScalingPlan]:
        """The scaling plans that reference a pool (a pool has at most one in Azure)."""
        return [p for p in self.scaling_plans.values() if pool.id.lower() in p.pools]

    def add_app_group(self, group: AppGroup) -> AppGroup:
        """Register an application group."""
        self.add_resource_group(group.subscription, group.resource_group, group.location)
        self.app_groups[_key(group.subscription, group.resource_group, group.name)] = group
        return group

    def add_user(self, upn: str, principals: set[str]) -> None:
        """A user and the principals (their object id, their groups) that assignments may name."""
        self.users[upn.lower()] = set(principals)

    # ----------------------------------------------------------------- lookups

    def subscription_known(self, subscription: str) -> bool:
        """Does any resource group live in this subscription?"""
        return any(k[0] == subscription.lower() for k in self.resource_groups)

    def require_group(self, subscription: str, resource_group: str) -> None:
        """Raise ARM's 404s for an unknown subscription or resource group."""
        if not self.subscription_known(subscription):
            raise ModelError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        if _key(subscription, resource_group) not in self.resource_groups:
            raise ModelError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")

    def pool(self, subscription: str, resource_group: str, name: str) -> Pool:
        """A host pool, or ARM's 404."""
        self.require_group(subscription, resource_group)
        pool = self.pools.get(_key(subscription, resource_group, name))
        if pool is None:
            raise ModelError(404, "hostPoolDoesNotExist", "Host Pool Does Not Exist")
        return pool

    def site(self, subscription: str, resource_group: str, name: str) -> Site:
        """A function app, or ARM's 404 for a resource it does not have."""
        self.require_group(subscription, resource_group)
        site = self.sites.get(_key(subscription, resource_group, name))
        if site is None:
            raise ModelError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Web/sites/{name}' under resource group '{resource_group}' was not found.",
            )
        return site

    def pools_in(self, subscription: str, resource_group: str) -> list[Pool]:
        """The host pools of a resource group (404 if it does not exist), by name."""
        self.require_group(subscription, resource_group)
        return [p for k, p in sorted(self.pools.items()) if k[:2] == _key(subscription, resource_group)]

    def app_groups_in(self, subscription: str, resource_group: str) -> list[AppGroup]:
        """The application groups of a resource group (404 if it does not exist), by name."""
        self.require_group(subscription, resource_group)
        return [g for k, g in sorted(self.app_groups.items()) if k[:2] == _key(subscription, resource_group)]

    def host(self, pool: Pool, name: str) -> Host:
        """A session host of `pool`, or 404."""
        host = pool.hosts.get(name.lower())
        if host is None:
            raise not_found("Microsoft.DesktopVirtualization/hostPools/sessionHosts", f"{pool.name}/{name}")
        return host

    def vm(self, subscription: str, resource_group: str, name: str) -> Vm:
        """A VM, or 404."""
        self.require_group(subscription, resource_group)
        vm = self.vms.get(vm_id(subscription, resource_group, name).lower())
        if vm is None:
            raise ModelError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{resource_group}' was not found.",
            )
        return vm

    def app_group(self, subscription: str, resource_group: str, name: str) -> AppGroup:
        """An application group, or 404."""
        self.require_group(subscription, resource_group)
        group = self.app_groups.get(_key(subscription, resource_group, name))
        if group is None:
            raise not_found("Microsoft.DesktopVirtualization/applicationGroups", name)
        return group

    # ----------------------------------------------------------------- time

    def settle(self) -> datetime:
        """Apply the session timers that are due; return now."""
        now = self.clock.now()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, host, session_id = heapq.heappop(self._timers)
            session = host.sessions.get(session_id)
            if session is None:
                continue
            if kind == "logoff" and session.state == "Disconnected":
                del host.sessions[session_id]
                self._ended(host, session)
            elif kind == "idle" and session.state == "Active":
                self._disconnect(host, session, now)
        return now

    def _timer(self, due: datetime, kind: str, host: Host, session: Session) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), kind, host, session.id))

    # ----------------------------------------------------------------- compute

    def start_vm(self, vm: Vm) -> Operation | None:
        """Start a VM; None when it is already running or starting (ARM answers 200 at once)."""
        with self.lock:
            now = self.settle()
            power = vm.power(now)
            if power in ("running", "starting"):
                return None
            if power == "deallocating":
                raise ModelError(
                    409,
                    "OperationNotAllowed",
                    f"Operation 'start' is not allowed on VM '{vm.name}' since the VM is being deallocated.",
                )
            vm.target, vm.transitional, vm.due = "running", "starting", now + self.timings.boot
            host = vm.host
            if host is not None:
                host.agent_ready_at = vm.due + timedelta(seconds=self.timings.agent_ready.sample(self.rng))
            return self._operation(vm, "start", now, vm.due)

    def deallocate_vm(self, vm: Vm) -> Operation | None:
        """Deallocate a VM; its sessions end with it. None when it is already deallocated."""
        with self.lock:
            now = self.settle()
            power = vm.power(now)
            if power == "deallocated":
                return None
            if power == "deallocating" and vm.due is not None:
                return self._operation(vm, "deallocate", now, vm.due)
            vm.target, vm.transitional, vm.due = "deallocated", "deallocating", now + self.timings.deallocate
            host = vm.host
            if host is not None:
                self.dropped_sessions += len(host.sessions)
                ended = list(host.sessions.values())
                host.sessions.clear()
                for session in ended:
                    self._ended(host, session)
                host.agent_ready_at = None
            return self._operation(vm, "deallocate", now, vm.due)

    def run_command(self, vm: Vm, command_id: str, script: list[str]) -> tuple[str, str]:
        """Run Command on a VM: (stdout, stderr). The twin cannot run PowerShell; it answers the one script it
        models, a read of the FSLogix profile settings printed as JSON, from the host's registry values."""
        with self.lock:
            now = self.settle()
            if vm.power(now) != "running":
                raise ModelError(
                    409, "OperationNotAllowed", f"Operation 'RunCommand' is not allowed on VM '{vm.name}' since the VM is not running."
                )
            if vm.host is not None and vm.host.agent_ready_at is None:
                raise ModelError(
                    409, "VMAgentStatusCommunicationError", f"VM '{vm.name}' has not reported status for VM agent or extensions."
                )
            self.commands.append((vm.name, command_id, list(script)))
            text = "\n".join(script)
            if command_id != "RunPowerShellScript":
                return "", f"the twin runs only RunPowerShellScript, not {command_id}"
            if "HKLM:\\SOFTWARE\\FSLogix\\Profiles" not in text or "ConvertTo-Json" not in text:
                return "", "the twin models only a read of HKLM:\\SOFTWARE\\FSLogix\\Profiles printed with ConvertTo-Json"
            values = vm.host.fslogix if vm.host is not None else {}
            return json.dumps(values, separators=(",", ":")), ""

    def _operation(self, vm: Vm, kind: str, now: datetime, done_at: datetime) -> Operation:
        operation = Operation(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), vm, kind, now, done_at)
        self.operations[operation.id] = operation
        return operation

    # ----------------------------------------------------------------- desktop virtualization

    def set_drain(self, host: Host, allow_new_session: bool) -> None:
        """Drain mode on (False) or off (True)."""
        with self.lock:
            self.settle()
            host.allow_new_session = allow_new_session

    def session(self, host: Host, session_id: str | int) -> Session:
        """A user session, or 404."""
        session = host.sessions.get(int(session_id)) if str(session_id).isdigit() else None
        if session is None:
            raise not_found(
                "Microsoft.DesktopVirtualization/hostPools/sessionHosts/userSessions", f"{host.pool.name}/{host.name}/{session_id}"
            )
        return session

    def logoff(self, host: Host, session_id: str | int) -> None:
        """End a session (ARM: DELETE userSession with force)."""
        with self.lock:
            self.settle()
            session = self.session(host, session_id)
            del host.sessions[session.id]
            self._ended(host, session)

    def _ended(self, host: Host, session: Session) -> None:
        """A session is gone: FSLogix detaches the user's profile container (it closes a while later)."""
        if self.profile_hook is not None:
            self.profile_hook("detach", host, session.upn)

    def disconnect(self, host: Host, session_id: str | int) -> None:
        """Disconnect a session; it lingers until the user returns or the disconnected limit ends it."""
        with self.lock:
            now = self.settle()
            self._disconnect(host, self.session(host, session_id), now)

    def _disconnect(self, host: Host, session: Session, now: datetime) -> None:
        if session.state == "Disconnected":
            return
        session.state, session.changed = "Disconnected", now
        if self.timings.disconnected_logoff is not None:
            self._timer(now + self.timings.disconnected_logoff, "logoff", host, session)

    def send_message(self, host: Host, session_id: str | int, title: str, body: str) -> None:
        """Deliver a message to a session (recorded on it)."""
        with self.lock:
            self.settle()
            session = self.session(host, session_id)
            self.messages.append((host.name, session.id, session.upn, title, body))

    # ----------------------------------------------------------------- users and the broker

    def assigned(self, pool: Pool, upn: str) -> bool:
        """Is the user assigned, directly or through a group, to an application group of `pool`?"""
        principals = self.users.get(upn.lower(), set())
        scopes = {g.id.lower() for g in self.app_groups.values() if g.pool is pool}
        return any(
            a.scope.lower() in scopes
            and a.principal_id in principals
            and a.role_definition_id.lower().endswith(DESKTOP_VIRTUALIZATION_USER)
            for a in self.assignments.values()
        )

    def logon(self, pool: Pool, upn: str) -> Logon:
        """A user signs in: reconnect to their session, or the broker places them by the pool's algorithm."""
        with self.lock:
            now = self.settle()
            if not self.assigned(pool, upn):
                return self._logon(Logon(upn, now, "not_assigned"))
            for host in pool.hosts.values():
                for session in host.sessions.values():
                    if session.upn.lower() == upn.lower():
                        session.state, session.changed = "Active", now
                        self._arm_idle(host, session, now)
                        return self._logon(Logon(upn, now, "reconnected", host.name, session.id))
            candidates = [
                h
                for h in pool.hosts.values()
                if h.allow_new_session and h.status(now) == "Available" and len(h.sessions) < pool.max_session_limit
            ]
            if not candidates:
                self._start_vm_on_connect(pool, now)
                return self._logon(Logon(upn, now, "no_capacity"))
            if pool.load_balancer_type == "DepthFirst":
                host = max(candidates, key=lambda h: (len(h.sessions), [-ord(c) for c in h.name]))
            else:
                candidates.sort(key=lambda h: (len(h.sessions), h.name))
                host = self.rng.choice(candidates[: math.ceil(len(candidates) / 2)])
            session = host.next_session(upn, now)
            self._arm_idle(host, session, now)
            if self.profile_hook is not None:
                self.profile_hook("attach", host, upn)
            return self._logon(Logon(upn, now, "connected", host.name, session.id))

    def logoff_user(self, pool: Pool, upn: str) -> bool:
        """The user signs out; False when they had no session."""
        with self.lock:
            self.settle()
            for host in pool.hosts.values():
                for session in list(host.sessions.values()):
                    if session.upn.lower() == upn.lower():
                        del host.sessions[session.id]
                        self._ended(host, session)
                        return True
            return False

    def disconnect_user(self, pool: Pool, upn: str) -> bool:
        """The user closes the client without signing out; False when they had no session."""
        with self.lock:
            now = self.settle()
            for host in pool.hosts.values():
                for session in host.sessions.values():
                    if session.upn.lower() == upn.lower():
                        self._disconnect(host, session, now)
                        return True
            return False

    def _arm_idle(self, host: Host, session: Session, now: datetime) -> None:
        if self.timings.idle_disconnect is not None:
            self._timer(now + self.timings.idle_disconnect, "idle", host, session)

    def _start_vm_on_connect(self, pool: Pool, now: datetime) -> None:
        if not pool.start_vm_on_connect:
            return
        if pool.last_svmoc is not None and now - pool.last_svmoc < self.timings.svmoc_interval:
            return
        for host in sorted(pool.hosts.values(), key=lambda h: h.name):
            if host.vm is not None and host.allow_new_session and host.vm.power(now) == "deallocated":
                pool.last_svmoc = now
                self.start_vm(host.vm)
                return

    def _logon(self, logon: Logon) -> Logon:
        self.logons.append(logon)
        return logon

    # ----------------------------------------------------------------- role assignments

    def assignments_at(self, scope: str) -> list[RoleAssignment]:
        """Role assignments whose scope is exactly `scope`."""
        with self.lock:
            return [a for a in self.assignments.values() if a.scope.lower() == scope.rstrip("/").lower()]

    def create_assignment(
        self, scope: str, name: str, role_definition_id: str, principal_id: str, principal_type: str
    ) -> tuple[RoleAssignment, bool]:
        """Create (True) or return the identical existing assignment (False); 409 on a conflicting one."""
        with self.lock:
            now = self.settle()
            existing = self.assignments.get(name.lower())
            if existing is not None:
                if (existing.scope.lower(), existing.principal_id, existing.role_definition_id.lower()) != (
                    scope.lower(),
                    principal_id,
                    role_definition_id.lower(),
                ):
                    raise ModelError(
                        409,
                        "RoleAssignmentUpdateNotPermitted",
                        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                    )
                return existing, False
            for other in self.assignments_at(scope):
                if other.principal_id == principal_id and other.role_definition_id.lower() == role_definition_id.lower():
                    raise ModelError(409, "RoleAssignmentExists", "The role assignment already exists.")
            assignment = RoleAssignment(name, scope.rstrip("/"), role_definition_id, principal_id, principal_type, now)
            self.assignments[name.lower()] = assignment
            return assignment, True

    def delete_assignment(self, scope: str, name: str) -> RoleAssignment | None:
        """Delete an assignment at `scope`; None when there was none."""
        with self.lock:
            existing = self.assignments.get(name.lower())
            if existing is None or existing.scope.lower() != scope.rstrip("/").lower():
                return None
            del self.assignments[name.lower()]
            return existing
