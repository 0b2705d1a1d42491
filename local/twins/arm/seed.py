"""The ARM twin's seed file: the estate it starts with (subscriptions, pools, hosts, VMs, app groups, users)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from local.runtime.clock import Clock
from local.twins.arm.model import (
    DESKTOP_VIRTUALIZATION_USER,
    AppGroup,
    Delay,
    Estate,
    Pool,
    Session,
    Timings,
    Vm,
    vm_id,
)
from local.twins.seedfile import read_seed
from shared.config.model import Duration

DEMO_SEED = Path(__file__).with_name("demo.yaml")


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DelaySeed(_Seed):
    """Exactly one of fixed, uniform [low, high], normal [mean, sd] or lognormal [median, p95]."""

    fixed: Duration | None = None
    uniform: tuple[Duration, Duration] | None = None
    normal: tuple[Duration, Duration] | None = None
    lognormal: tuple[Duration, Duration] | None = None

    @model_validator(mode="after")
    def _one(self) -> DelaySeed:
        if sum(v is not None for v in (self.fixed, self.uniform, self.normal, self.lognormal)) != 1:
            raise ValueError("give exactly one of fixed, uniform, normal or lognormal")
        if self.lognormal is not None and self.lognormal[1] <= self.lognormal[0]:
            raise ValueError("lognormal is [median, p95] with p95 above the median")
        return self

    def delay(self) -> Delay:
        """The model's distribution."""
        if self.fixed is not None:
            return Delay("fixed", self.fixed.total_seconds())
        kind = next(k for k in ("uniform", "normal", "lognormal") if getattr(self, k) is not None)
        a, b = getattr(self, kind)
        return Delay(kind, a.total_seconds(), b.total_seconds())


class TimingsSeed(_Seed):
    """How long VMs and agents take; the RDS session limits."""

    boot: Duration = timedelta(seconds=45)
    deallocate: Duration = timedelta(seconds=90)
    agent_ready: DelaySeed = DelaySeed(uniform=(timedelta(seconds=60), timedelta(seconds=240)))
    disconnected_logoff: Duration | None = None
    idle_disconnect: Duration | None = None


class HostsSeed(_Seed):
    """`count` session hosts named <prefix>-001.<domain>, with VMs <prefix>-001 in `vm_resource_group`."""

    count: int = Field(ge=0)
    prefix: str
    domain: str = "avd.contoso.local"
    vm_resource_group: str | None = None
    running: int = Field(0, ge=0)
    sessions: int = Field(0, ge=0, description="sessions already open on each running host (generated users)")
    size: str = "Standard_D8s_v5"
    tags: dict[str, str] = Field(default_factory=dict)


class FslogixSeed(_Seed):
    """The FSLogix profile settings of every host in a pool (HKLM\\SOFTWARE\\FSLogix\\Profiles)."""

    enabled: bool = True
    vhd_locations: list[str] = Field(default_factory=list, description="UNC paths, searched in order")
    ccd_locations: list[str] = Field(default_factory=list, description="Cloud Cache providers: type=smb,connectionString=\\\\x\\y")
    profile_type: int = Field(0, ge=0, le=3)
    flip_flop_profile_directory_name: bool = False
    volume_type: Literal["VHD", "VHDX"] = "VHDX"

    def values(self) -> dict[str, Any]:
        """The registry values, as Get-ItemProperty returns them (unset values absent)."""
        values: dict[str, Any] = {
            "Enabled": int(self.enabled),
            "ProfileType": self.profile_type,
            "FlipFlopProfileDirectoryName": int(self.flip_flop_profile_directory_name),
            "VolumeType": self.volume_type,
        }
        if self.vhd_locations:
            values["VHDLocations"] = list(self.vhd_locations)
        if self.ccd_locations:
            values["CCDLocations"] = list(self.ccd_locations)
        return values


class PoolSeed(_Seed):
    """A pooled host pool."""

    name: str
    load_balancer_type: Literal["BreadthFirst", "DepthFirst"] = "BreadthFirst"
    max_session_limit: int = Field(10, ge=1)
    start_vm_on_connect: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    hosts: HostsSeed | None = None
    fslogix: FslogixSeed | None = Field(None, description="profile settings of the pool's hosts (none: FSLogix absent)")
    scaling_plan: str | None = Field(None, description="a native scaling plan (in the pool's resource group) on the pool")
    scaling_plan_enabled: bool = True


class AssignmentSeed(_Seed):
    """A Desktop Virtualization User assignment on an application group."""

    principal_id: str
    principal_type: Literal["User", "Group", "ServicePrincipal"] = "Group"


class AppGroupSeed(_Seed):
    """An application group of a host pool in the same resource group."""

    name: str
    host_pool: str
    type: Literal["Desktop", "RemoteApp"] = "Desktop"
    assignments: list[AssignmentSeed] = Field(default_factory=list)


class ResourceGroupSeed(_Seed):
    """A resource group and what lives in it."""

    name: str
    location: str
    host_pools: list[PoolSeed] = Field(default_factory=list)
    application_groups: list[AppGroupSeed] = Field(default_factory=list)


class SubscriptionSeed(_Seed):
    """A subscription."""

    id: str
    resource_groups: list[ResourceGroupSeed] = Field(default_factory=list)


class UsersSeed(_Seed):
    """`count` users <prefix>001@<domain>, members of `groups`."""

    prefix: str = "user"
    count: int = Field(ge=0)
    domain: str = "contoso.com"
    groups: list[str] = Field(default_factory=list)


class Seed(_Seed):
    """The whole seed file."""

    seed: int = 0
    timings: TimingsSeed = TimingsSeed()
    subscriptions: list[SubscriptionSeed] = Field(default_factory=list)
    users: list[UsersSeed] = Field(default_factory=list)
    resources: list[dict[str, Any]] = Field(default_factory=list, description="verbatim ARM documents to import")
    key_vaults: dict[str, dict[str, str]] = Field(default_factory=dict, description="vault name -> secret name -> value")


def load_seed(path: str | Path | None = None) -> Seed:
    """Read and validate a seed file (YAML or JSON); the demo estate when `path` is None."""
    return read_seed(Seed, path if path is not None else DEMO_SEED)


def build_estate(seed: Seed, clock: Clock) -> Estate:
    """The estate a seed describes, at the clock's current time."""
    t = seed.timings
    estate = Estate(
        clock,
        seed=seed.seed,
        timings=Timings(
            boot=t.boot,
            deallocate=t.deallocate,
            agent_ready=t.agent_ready.delay(),
            disconnected_logoff=t.disconnected_logoff,
            idle_disconnect=t.idle_disconnect,
        ),
    )
    ids = random.Random(seed.seed)
    for sub in seed.subscriptions:
        for rg in sub.resource_groups:
            estate.add_resource_group(sub.id, rg.name, rg.location)
            for ps in rg.host_pools:
                pool = estate.add_pool(
                    Pool(
                        sub.id,
                        rg.name,
                        ps.name,
                        rg.location,
                        ps.load_balancer_type,
                        ps.max_session_limit,
                        ps.start_vm_on_connect,
                        dict(ps.tags),
                    )
                )
                if ps.hosts is not None:
                    _add_hosts(estate, pool, ps.hosts, ids)
                if ps.fslogix is not None:
                    estate.set_fslogix(pool, ps.fslogix.values())
                if ps.scaling_plan:
                    estate.assign_scaling_plan(pool, ps.scaling_plan, enabled=ps.scaling_plan_enabled)
            for gs in rg.application_groups:
                group = estate.add_app_group(
                    AppGroup(sub.id, rg.name, gs.name, rg.location, estate.pool(sub.id, rg.name, gs.host_pool), gs.type)
                )
                for a in gs.assignments:
                    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{group.id}/{a.principal_id}"))
                    estate.create_assignment(group.id, name, role_definition(sub.id), a.principal_id, a.principal_type)
    for users in seed.users:
        for i in range(1, users.count + 1):
            upn = f"{users.prefix}{i:03d}@{users.domain}"
            estate.add_user(upn, {str(uuid.uuid5(uuid.NAMESPACE_DNS, upn)), *users.groups})
    for document in seed.resources:
        import_resource(estate, document)
    return estate


def role_definition(subscription: str) -> str:
    """The Desktop Virtualization User role definition's id, as ARM spells it in a subscription."""
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{DESKTOP_VIRTUALIZATION_USER}"


def _add_hosts(estate: Estate, pool: Pool, spec: HostsSeed, ids: random.Random) -> None:
    vm_rg = spec.vm_resource_group or pool.resource_group
    for i in range(1, spec.count + 1):
        name = f"{spec.prefix}-{i:03d}"
        vm = estate.add_vm(
            Vm(
                id=vm_id(pool.subscription, vm_rg, name),
                subscription=pool.subscription,
                resource_group=vm_rg,
                name=name,
                location=pool.location,
                vm_id=str(uuid.UUID(int=ids.getrandbits(128), version=4)),
                size=spec.size,
                tags=dict(spec.tags),
            )
        )
        host = estate.add_host(pool, f"{name}.{spec.domain}", vm, running=i <= spec.running)
        for n in range(spec.sessions if i <= spec.running else 0):  # already open: signed in an hour ago
            host.next_session(f"{name}-s{n + 1:02d}@contoso.com", estate.clock.now() - timedelta(hours=1))


def _segments(resource_id: str) -> dict[str, str]:
    parts = resource_id.strip("/").split("/")
    return {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}


def import_resource(estate: Estate, doc: dict[str, Any]) -> None:
    """Add a published ARM document (host pool, session host, user session, app group, VM) as-is.

    Fields the model owns are read from it; everything else is kept and served back verbatim.
    """
    seg = _segments(doc["id"])
    sub, rg = seg["subscriptions"], seg["resourcegroups"]
    props = doc.get("properties") or {}
    location = doc.get("location") or "eastus"
    estate.add_resource_group(sub, rg, location)
    if "virtualmachines" in seg:
        vm = Vm(
            doc["id"],
            sub,
            rg,
            seg["virtualmachines"],
            location,
            props.get("vmId") or str(uuid.uuid4()),
            tags=dict(doc.get("tags") or {}),
            extra=doc,
        )
        statuses = (props.get("instanceView") or {}).get("statuses") or []
        power = next((s["code"].split("/", 1)[1] for s in statuses if str(s.get("code", "")).startswith("PowerState/")), "deallocated")
        vm.target = "running" if power in ("running", "starting") else "deallocated"
        estate.add_vm(vm)
        return
    if "applicationgroups" in seg:
        pool_id = props.get("hostPoolArmPath") or ""
        pool = next((p for p in estate.pools.values() if p.id.lower() == pool_id.lower()), None)
        estate.add_app_group(
            AppGroup(sub, rg, seg["applicationgroups"], location, pool, props.get("applicationGroupType", "Desktop"), extra=doc)
        )
        return
    pool = estate.pools.get((sub.lower(), rg.lower(), seg["hostpools"].lower()))
    if pool is None:
        pool = estate.add_pool(Pool(sub, rg, seg["hostpools"], location))
    if "sessionhosts" not in seg:
        pool.load_balancer_type = props.get("loadBalancerType", pool.load_balancer_type)
        pool.max_session_limit = props.get("maxSessionLimit", pool.max_session_limit)
        pool.start_vm_on_connect = props.get("startVMOnConnect", pool.start_vm_on_connect)
        pool.location = location
        pool.extra = doc
        return
    host_name = seg["sessionhosts"]
    host = pool.hosts.get(host_name.lower())
    if host is None:
        vm = estate.vms.get(str(props.get("resourceId", "")).lower())
        host = estate.add_host(pool, host_name, vm)
        host.static_status = props.get("status", "Available")
    if "usersessions" not in seg:
        host.allow_new_session = props.get("allowNewSession", True)
        host.extra = doc
        return
    session = Session(
        int(seg["usersessions"]),
        props.get("userPrincipalName", ""),
        estate.clock.now(),
        props.get("sessionState", "Active"),
        props.get("applicationType", "Desktop"),
        extra=doc,
    )
    host.sessions[session.id] = session


GENERATED_SUBSCRIPTION = "00000000-0000-4000-8000-00000000a001"
GENERATED_GROUP = "00000000-0000-4000-8000-0000000000ff"


def pool_seed(
    hosts: int = 10,
    *,
    pools: int = 1,
    running: int = 0,
    users: int = 0,
    max_sessions: int = 10,
    load_balancer: str = "BreadthFirst",
    agent_ready: str = "90s",
    boot: str = "45s",
    vm_groups: int = 1,
    subscription: str = GENERATED_SUBSCRIPTION,
    sessions: int = 0,
) -> dict[str, Any]:
    """A generated estate for tests and benchmarks, as seed-file data.

    Pools hp0..hpN-1 in rg-avd, each with `hosts` hosts (the first `running` already up) whose VMs sit in
    rg-hosts (or rg-hosts-0..k-1 with `vm_groups` > 1); users user001.. assigned to every pool through one group.
    """

    def vm_group(p: int) -> str:
        return "rg-hosts" if vm_groups == 1 else f"rg-hosts-{p % vm_groups}"

    return {
        "seed": 1,
        "timings": {"boot": boot, "deallocate": "60s", "agent_ready": {"fixed": agent_ready}},
        "subscriptions": [
            {
                "id": subscription,
                "resource_groups": [
                    {
                        "name": "rg-avd",
                        "location": "eastus2",
                        "host_pools": [
                            {
                                "name": f"hp{p}",
                                "load_balancer_type": load_balancer,
                                "max_session_limit": max_sessions,
                                "hosts": {
                                    "count": hosts,
                                    "prefix": f"hp{p}-vm",
                                    "vm_resource_group": vm_group(p),
                                    "running": running,
                                    "sessions": sessions,
                                },
                            }
                            for p in range(pools)
                        ],
                        "application_groups": [
                            {"name": f"dag{p}", "host_pool": f"hp{p}", "assignments": [{"principal_id": GENERATED_GROUP}]}
                            for p in range(pools)
                        ],
                    }
                ],
            }
        ],
        "users": [{"count": users, "groups": [GENERATED_GROUP]}],
    }


def estate_seed(subscriptions: list[str], **options: Any) -> dict[str, Any]:
    """`pool_seed(**options)` in each of `subscriptions` (the same pool names in each), as one seed."""
    docs = [pool_seed(subscription=sub, **options) for sub in subscriptions]
    return {**docs[0], "subscriptions": [s for d in docs for s in d["subscriptions"]]}
