"""What the gateway reads and reports: a host pool's state and the outcome of each action, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from shared.config.model import HostPool, Region


@dataclass(frozen=True)
class PoolRef:
    """Where a host pool lives; `vm_resource_groups` are hints so VM listings start in the first round."""

    subscription: str
    resource_group: str
    name: str
    vm_resource_groups: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A stable, readable key: subscription/resourceGroup/pool (lower-case)."""
        return f"{self.subscription}/{self.resource_group}/{self.name}".lower()

    @property
    def arm_id(self) -> str:
        """The pool's ARM resource id (what an alert's `_ResourceId` dimension names)."""
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.DesktopVirtualization/hostPools/{self.name}")  # fmt: skip

    @classmethod
    def of(cls, region: Region, pool: HostPool) -> PoolRef:
        """A topology pool: in its own subscription or its region's; its VMs in the groups named, else its own."""
        return cls(
            pool.subscription_id or region.subscription_id,
            pool.resource_group,
            pool.name,
            tuple(pool.vm_resource_groups or [pool.resource_group]),
        )


INACTIVE_STATES = ("Disconnected", "LogOff")  # every other state (Active, Pending: signing in, Unknown) is a user at work


@dataclass(frozen=True)
class UserSession:
    """A user session on a session host."""

    id: str
    upn: str
    state: str  # Active | Disconnected | Pending | LogOff | UserProfileDiskMounted | Unknown
    created: datetime | None = None

    @property
    def active(self) -> bool:
        """A user is (or is becoming) at work in it: only disconnected and logging-off sessions are inactive."""
        return self.state not in INACTIVE_STATES


@dataclass(frozen=True)
class HostState:
    """One session host with its VM's power state and tags, joined from the batched reads."""

    name: str  # the session host FQDN, as the session-host calls take it
    vm_id: str  # ARM id of the VM ('' when AVD does not report one)
    status: str  # AVD status: Available, Unavailable, Shutdown, ...
    allow_new_session: bool
    power: str  # running, starting, deallocating, deallocated, stopped, ... or unknown
    tags: dict[str, str] = field(default_factory=dict)
    sessions: tuple[UserSession, ...] = ()

    @property
    def active(self) -> int:
        """Active sessions (Pending ones, users signing in, included)."""
        return sum(1 for s in self.sessions if s.active)

    @property
    def disconnected(self) -> int:
        """Sessions that are not active (disconnected and the like)."""
        return len(self.sessions) - self.active

    @property
    def vm_name(self) -> str:
        """The VM's name, from its ARM id."""
        return self.vm_id.rstrip("/").rsplit("/", 1)[-1] if self.vm_id else ""


@dataclass(frozen=True)
class PoolState:
    """A host pool as read at one moment."""

    ref: PoolRef
    load_balancer_type: str
    max_session_limit: int
    start_vm_on_connect: bool
    hosts: tuple[HostState, ...]
    tags: dict[str, str] = field(default_factory=dict)
    scaling_plan: str | None = None  # the ARM id of a native scaling plan enabled on the pool
    scaling_plan_unread: str = ""  # why the pool's scaling plans could not be read (then `scaling_plan` is None)


Result = Literal["done", "already", "conflict", "not_found", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one action on one target: done, already (no change needed), conflict, not_found, failed."""

    target: str
    action: str
    result: Result
    detail: str = ""

    @property
    def ok(self) -> bool:
        """The target is now as asked."""
        return self.result in ("done", "already")
