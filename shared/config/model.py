"""The topology and policy model: one YAML file describes the whole two-region estate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
_KEY_VAULT_SECRET = re.compile(
    r"^https://[a-z0-9-]{3,24}\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net)"
    r"/secrets/[A-Za-z0-9-]{1,127}(/[0-9a-f]{32})?/?$"
)
_APP_SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d{1,7})\s*(s|m|h|d|w)\s*$")
MAX_DURATION = timedelta(days=3660)  # ten years: the longest retention an estate keeps, and far below overflow
NO_AUTOSCALE = "none"  # autoscale_policy: the pool is not autoscaled by Tandem
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_DURATION.total_seconds():
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            amount = timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})  # 7 digits never overflow
            if amount > MAX_DURATION:
                raise ValueError(f"must be at most {MAX_DURATION.days}d")
            return amount
    raise ValueError("must be a duration such as '90s', '15m', '2h', '14d' or '8w' (at most 3660d)")


def _format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    AfterValidator(_positive),
    PlainSerializer(_format_duration, return_type=str),
    Field(json_schema_extra={"type": "string", "pattern": _DURATION.pattern}),
]
Name = Annotated[str, Field(pattern=_NAME)]


def _clock_time(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hour, minute = (int(x) for x in value.strip().split(":"))
        if 0 <= hour <= 23 and 0 <= minute <= 59:
            return time(hour, minute)
    raise ValueError("must be a time of day 'HH:MM' (24-hour)")


ClockTime = Annotated[
    time,
    BeforeValidator(_clock_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    Field(json_schema_extra={"type": "string", "pattern": r"^\d{1,2}:\d{2}$"}),
]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]


class _Model(BaseModel):
    """Strict base: unknown keys are errors, so a typo never silently changes behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SecretRef(_Model):
    """A reference to a secret: a Key Vault secret URI or the name of an app setting; never the value."""

    key_vault_secret: str | None = Field(None, description="https://<vault>.vault.azure.net/secrets/<name>[/<version>]")
    app_setting: str | None = Field(None, description="Name of an app setting (a Key Vault reference in Azure)")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.key_vault_secret is None) == (self.app_setting is None):
            raise ValueError("give exactly one of key_vault_secret or app_setting")
        if self.key_vault_secret is not None and not _KEY_VAULT_SECRET.match(self.key_vault_secret):
            raise ValueError("key_vault_secret must look like https://<vault>.vault.azure.net/secrets/<name>")
        if self.app_setting is not None and not _APP_SETTING.match(self.app_setting):
            raise ValueError("app_setting must be an app setting name (letters, digits, underscore)")
        return self


def _secret_ref(value: object) -> object:
    if isinstance(value, str):
        raise ValueError("secrets are references, never values: use {key_vault_secret: <uri>} or {app_setting: <NAME>}")
    return value


Secret = Annotated[SecretRef, BeforeValidator(_secret_ref)]


class QumuloCredentials(_Model):
    """How Tandem signs in to an ANQ cluster: a service account's password or a long-lived access token."""

    username: str | None = Field(None, min_length=1, description="Service account (not a secret)")
    password: Secret | None = None
    access_token: Secret | None = None

    @model_validator(mode="after")
    def _one_method(self) -> QumuloCredentials:
        if (self.password is None) == (self.access_token is None):
            raise ValueError("give exactly one of password (with username) or access_token")
        if self.password is not None and not self.username:
            raise ValueError("username is required with password")
        return self


class AnqCluster(_Model):
    """An Azure Native Qumulo cluster's REST endpoint in one region."""

    name: Name
    address: str = Field(description="REST base URL, https://<endpoint-ip-or-name>:8000")
    resource_id: str | None = Field(None, description="ARM id of the ANQ resource, for Resource Health events")
    ca_bundle: str | None = Field(None, description="PEM file that signs the cluster's certificate")
    credentials: QumuloCredentials
    connect_timeout: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=30)
    retry_budget: Duration = Field(timedelta(seconds=30), description="how long safe calls are retried (5xx, resets)")
    smb_endpoints: list[Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-:]+$")]] = Field(
        default_factory=list,
        max_length=32,
        description="DNS names and IP addresses that reach this cluster over SMB (the server part of the UNC paths "
        "in the hosts' FSLogix settings); a failover into this region checks its hosts' paths against them",
    )

    @field_validator("address")
    @classmethod
    def _https(cls, value: str) -> str:
        if not re.match(r"^https://[^/\s:]+(:\d{1,5})?/?$", value):
            raise ValueError("must be an https:// URL with host and optional port (TLS is always verified)")
        return value.rstrip("/")


class ProfileDirectory(_Model):
    """An FSLogix profile directory on a region's ANQ cluster."""

    path: str = Field(description="Absolute path on the cluster, e.g. /profiles/fslogix")
    freshness: Duration | None = Field(None, description="Override of snapshots.freshness for this directory")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "//" in value or "/../" in f"{value}/" or value != value.rstrip("/") or value == "/":
            raise ValueError("must be an absolute, normalised directory such as /profiles/fslogix (not /)")
        return value


class HostPool(_Model):
    """A pooled AVD host pool and where its session host VMs live."""

    name: Name
    resource_group: Name
    subscription_id: str | None = Field(None, description="Defaults to the region's subscription")
    vm_resource_groups: list[Name] = Field(default_factory=list, description="Defaults to [resource_group]")
    application_groups: list[Name] = Field(default_factory=list, description="Groups whose assignments move")
    autoscale_policy: Name = Field(
        "default",
        description="a policy of policies.autoscale, or none: Tandem does not "
        "autoscale the pool (a failover still warms and drains it)",
    )
    scaling_plan: Literal["defer", "take_over"] = Field(
        "defer",
        description="an enabled native scaling plan on the pool: defer (Tandem leaves the pool to it) or "
        "take_over (Tandem scales it anyway; disable the plan)",
    )


class Region(_Model):
    """One region of the estate: its host pools, its ANQ cluster and the profile directories on it."""

    name: Name
    location: Name = Field(description="Azure region, e.g. eastus2")
    subscription_id: str
    host_pools: list[HostPool] = Field(default_factory=list)
    anq: AnqCluster
    profile_directories: list[ProfileDirectory] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids(self) -> Region:
        for sub in [self.subscription_id, *(p.subscription_id for p in self.host_pools if p.subscription_id)]:
            if not _GUID.match(sub):
                raise ValueError(f"subscription id {sub!r} is not a GUID")
        _unique(
            "host_pools",
            [((p.subscription_id or self.subscription_id).lower(), p.resource_group.lower(), p.name.lower()) for p in self.host_pools],
        )
        _unique("profile_directories", [d.path for d in self.profile_directories])
        return self


class Replication(_Model):
    """A Qumulo continuous-replication relationship from the primary's directory to the secondary's."""

    source_directory: str
    target_directory: str
    relationship_id: str | None = Field(None, description="Found by path when omitted")


class Pairing(_Model):
    """Two regions that fail over to each other, and the profile data replicated between them."""

    primary: Name
    secondary: Name
    replication: list[Replication] = Field(min_length=1)


Phase = Literal["ramp_up", "peak", "ramp_down", "off_peak"]


class PhaseSettings(_Model):
    """Autoscale settings for one phase of the day."""

    phase: Phase
    start: ClockTime
    capacity_threshold_pct: int = Field(60, ge=1, le=100)
    minimum_hosts_pct: int = Field(0, ge=0, le=100)
    min_hosts: int | None = Field(None, ge=0)
    max_hosts: int | None = Field(None, ge=0)
    load_balancer: Literal["breadth_first", "depth_first"] = "breadth_first"

    @model_validator(mode="after")
    def _bounds(self) -> PhaseSettings:
        if self.min_hosts is not None and self.max_hosts is not None and self.min_hosts > self.max_hosts:
            raise ValueError("min_hosts must not exceed max_hosts")
        return self


class LegacySettings(_Model):
    """The legacy scaling runbook's parameters (algorithm: legacy): peak is the ramp_up and peak phases."""

    session_threshold_per_cpu: float = Field(1.0, gt=0)
    minimum_hosts: int = Field(1, ge=0)
    cores_per_host: int = Field(8, ge=1)
    limit_seconds_to_force_logoff: int = Field(900, ge=0)


class AutoscalePolicy(_Model):
    """How one or more host pools are scaled."""

    algorithm: Literal["native", "legacy", "tandem"] = "tandem"
    time_zone: TimeZoneName = "UTC"
    weekdays_only: bool = True
    phases: list[PhaseSettings] = Field(min_length=1)
    force_logoff: bool = False
    logoff_wait: Duration = timedelta(minutes=30)
    logoff_message: str = "Your session host is shutting down. Please save your work and sign out."
    stop_hosts_when: Literal["ZeroSessions", "ZeroActiveSessions"] = "ZeroSessions"
    exclusion_tag: str = "tandem-exclude"
    exclude_tagged_from_minimum: bool = True
    cooldown: Duration = timedelta(minutes=10)
    holidays: list[date] = Field(default_factory=list)
    dry_run: bool = False
    boot_lead: Duration = Field(timedelta(minutes=10), description="tandem: start hosts this far ahead of demand")
    legacy: LegacySettings = Field(default_factory=lambda: LegacySettings())

    @model_validator(mode="after")
    def _phases_ordered(self) -> AutoscalePolicy:
        _unique("phases", [p.phase for p in self.phases])
        starts = [p.start for p in self.phases]
        if starts != sorted(starts):
            raise ValueError("phases must be listed in order of their start times")
        return self


class SnapshotTier(_Model):
    """A retention tier: snapshots due on this tier's schedule are kept this long."""

    name: Literal["hourly", "daily", "weekly", "monthly"]
    keep: Duration


class SnapshotPolicy(_Model):
    """Which snapshots Tandem takes of the profile directories, and how fresh they must stay."""

    tiers: list[SnapshotTier] = Field(min_length=1)
    freshness: Duration = timedelta(hours=2)
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")] = "tandem"
    time_zone: TimeZoneName = Field("UTC", description="the zone of daily_at and weekly_on")
    daily_at: ClockTime = time(0, 0)
    weekly_on: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "sun"

    @model_validator(mode="after")
    def _unique_tiers(self) -> SnapshotPolicy:
        _unique("tiers", [t.name for t in self.tiers])
        return self


# The services an AVD estate on ANQ runs on, as Service Health names them.
WATCHED_SERVICES = (
    "Virtual Machines",
    "Azure Virtual Desktop",
    "Windows Virtual Desktop",
    "Virtual Network",
    "Storage",
    "Azure Native Qumulo Scalable File Service",
)


class FailoverPolicy(_Model):
    """The gates a failover must pass."""

    auto_approve_unplanned: bool = False
    max_rpo: Duration = timedelta(minutes=15)
    approval_timeout: Duration = timedelta(hours=1)
    drain_wait: Duration = timedelta(minutes=10)
    warning_message: str = "This region is failing over. Please save your work and sign out; sign in again shortly."
    unhealthy_hosts_pct: int = Field(50, ge=1, le=100)
    debounce: Duration = timedelta(minutes=5)
    detach_wait: Duration = Field(
        timedelta(minutes=5),
        description="how long a planned failover waits for FSLogix to "
        "close every profile container after sign-out before it gives up and rolls back",
    )
    replication_deadline: Duration = Field(
        timedelta(hours=2),
        description="how long a planned failover waits for the replication job after the fence before it rolls back",
    )
    propose_only: bool = Field(
        False,
        description="alerts' proposals are logged and published "
        "(Tandem.Failover.Proposed) but start no failover: for a deployment's first weeks",
    )
    watched_services: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(
        default_factory=lambda: list(WATCHED_SERVICES),
        min_length=1,
        description="Service Health service names whose incidents in a paired region propose a failover",
    )
    test_alerts_propose: bool = Field(False, description="may a synthetic (test action) Service Health alert propose")
    watch_window: Duration = Field(
        timedelta(minutes=5), description="how long an ANQ cluster must fail Tandem's own probe before a failover is proposed"
    )
    signin_sample: int = Field(
        20,
        ge=0,
        le=200,
        description="how many moved users' first sign-ins the verify step checks for their own profile container (0: none)",
    )
    signin_window: Duration = Field(
        timedelta(minutes=10), description="how long the verify step waits for that many first sign-ins before it reports what it saw"
    )


class Policies(_Model):
    """Every policy of the estate."""

    autoscale: dict[Name, AutoscalePolicy] = Field(min_length=1)

    @field_validator("autoscale")
    @classmethod
    def _reserved(cls, value: dict[str, AutoscalePolicy]) -> dict[str, AutoscalePolicy]:
        if NO_AUTOSCALE in value:
            raise ValueError(f"{NO_AUTOSCALE!r} is reserved: a pool with autoscale_policy: none is not autoscaled")
        return value

    snapshots: SnapshotPolicy
    failover: FailoverPolicy = FailoverPolicy()


class EventSubscription(_Model):
    """Which Event Grid-triggered function receives which event types (locally; Event Grid in Azure)."""

    function: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    event_types: list[str] = Field(min_length=1)


class Events(_Model):
    """Tandem's own CloudEvents: their source and the local subscriptions that deliver them."""

    source: str = "/tandem"
    subscriptions: list[EventSubscription] = Field(default_factory=list)


class Topology(_Model):
    """The whole estate: regions, their pairing, and the policies."""

    version: Literal[1] = 1
    regions: list[Region] = Field(min_length=1)
    pairings: list[Pairing] = Field(default_factory=list)
    policies: Policies
    events: Events = Events()

    @model_validator(mode="after")
    def _references(self) -> Topology:
        names = [r.name for r in self.regions]
        _unique("regions", names)
        by_name = {r.name: r for r in self.regions}
        for pool in (p for r in self.regions for p in r.host_pools):
            if pool.autoscale_policy != NO_AUTOSCALE and pool.autoscale_policy not in self.policies.autoscale:
                raise ValueError(
                    f"host pool {pool.name!r} uses autoscale_policy {pool.autoscale_policy!r}, "
                    f"which policies.autoscale does not define"
                )
        paired: set[str] = set()
        for pairing in self.pairings:
            for side in (pairing.primary, pairing.secondary):
                if side not in by_name:
                    raise ValueError(f"pairing names region {side!r}, which regions does not define")
                if side in paired:
                    raise ValueError(f"region {side!r} is in more than one pairing")
                paired.add(side)
            if pairing.primary == pairing.secondary:
                raise ValueError("a pairing needs two different regions")
            for rep in pairing.replication:
                for region, path in ((pairing.primary, rep.source_directory), (pairing.secondary, rep.target_directory)):
                    if path not in {d.path for d in by_name[region].profile_directories}:
                        raise ValueError(f"replication directory {path!r} is not a profile directory of {region!r}")
        return self

    def deployment_parameters(self) -> dict[str, list[Any]]:
        """Where Tandem acts, as infra/main.bicep's parameters: the AVD resource groups (with the application groups
        whose assignments move), the VM resource groups, the ANQ resources and the host pools (whose Connection
        logs feed the logon-rate alert); each once, in topology order."""
        avd: dict[tuple[str, str], list[str]] = {}
        vms: dict[tuple[str, str], None] = {}
        pools: dict[tuple[str, str], list[str]] = {}
        for region in self.regions:
            for pool in region.host_pools:
                sub = pool.subscription_id or region.subscription_id
                pools.setdefault((sub, pool.resource_group), []).append(pool.name)
                groups = avd.setdefault((sub, pool.resource_group), [])
                groups.extend(g for g in pool.application_groups if g not in groups)
                for rg in pool.vm_resource_groups or [pool.resource_group]:
                    vms[(sub, rg)] = None
        return {
            "avdResourceGroups": [
                {"subscriptionId": s, "resourceGroup": rg, "applicationGroups": groups} for (s, rg), groups in avd.items()
            ],
            "vmResourceGroups": [{"subscriptionId": s, "resourceGroup": rg} for s, rg in vms],
            "anqResourceIds": [r.anq.resource_id for r in self.regions if r.anq.resource_id],
            "hostPools": [{"subscriptionId": s, "resourceGroup": rg, "names": names} for (s, rg), names in pools.items()],
        }

    def region(self, name: str) -> Region:
        """The region called `name` (KeyError if there is none)."""
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)


def _unique(field: str, values: Sequence[object]) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field} lists {value!r} more than once")
        seen.add(value)
