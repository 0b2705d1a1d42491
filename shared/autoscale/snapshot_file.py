"""The what-if snapshot file (`scripts/tandem plan --snapshot FILE`): one pool at one moment, validated strictly."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.autoscale.planner import Forecast, HostView, PoolSnapshot, Rules
from shared.config.model import Duration
from shared.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyFields(_Strict):
    """The rules in force (every field optional; defaults as in the topology)."""

    capacity_threshold_pct: int = Field(60, ge=1, le=100)
    minimum_hosts_pct: int = Field(0, ge=0, le=100)
    min_hosts: int | None = Field(None, ge=0)
    max_hosts: int | None = Field(None, ge=0)
    force_logoff: bool = False
    logoff_wait: Duration = timedelta(minutes=30)
    stop_hosts_when: Literal["ZeroSessions", "ZeroActiveSessions"] = "ZeroSessions"
    exclude_tagged_from_minimum: bool = False
    cooldown: Duration | None = None
    boot_lead: Duration = timedelta(minutes=10)
    session_threshold_per_cpu: float = Field(1.0, gt=0)
    minimum_hosts: int = Field(1, ge=0)
    cores_per_host: int = Field(8, ge=1)
    limit_seconds_to_force_logoff: int = Field(900, ge=0)


class HostFields(_Strict):
    """One session host."""

    name: str = Field(min_length=1)
    power: Literal["running", "starting", "deallocated", "deallocating", "stopped"]
    status: str = "Available"
    sessions: int = Field(0, ge=0)
    active_sessions: int | None = Field(None, ge=0)
    allow_new_session: bool = True
    excluded: bool = False
    booting: bool = False
    notified_at: datetime | None = None


class ForecastFields(_Strict):
    """What the tandem policy expects (optional)."""

    net_per_minute: list[float] = Field(default_factory=list)
    observed_rate: float = Field(0.0, ge=0)
    expected_rate: float = Field(0.0, ge=0)
    incoming: int = Field(0, ge=0)


class SnapshotFile(_Strict):
    """The whole file."""

    time: datetime
    phase: Literal["ramp_up", "peak", "ramp_down", "off_peak"]
    max_session_limit: int = Field(ge=1)
    load_balancer: Literal["breadth_first", "depth_first"] = "breadth_first"
    policy: PolicyFields = PolicyFields()
    hosts: list[HostFields] = Field(min_length=1)
    last_scale_out: datetime | None = None
    forecast: ForecastFields | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a UTC offset, e.g. 2026-11-30T07:45:00Z")
        return value


def parse_snapshot(doc: Any, file: str = "<snapshot>") -> tuple[PoolSnapshot, Rules, Forecast]:
    """The planner's inputs from a snapshot document; InputError naming the file and the field otherwise."""
    try:
        s = SnapshotFile.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{file}: {problems}") from None
    names = [h.name for h in s.hosts]
    if len(set(names)) != len(names):
        raise InputError(f"{file}: hosts: names must be unique")
    hosts = tuple(
        HostView(
            h.name,
            h.power,
            h.status,
            h.sessions,
            h.sessions if h.active_sessions is None else min(h.active_sessions, h.sessions),
            h.allow_new_session,
            h.excluded,
            h.booting,
            h.notified_at,
        )
        for h in s.hosts
    )
    p = s.policy
    rules = Rules(
        capacity_threshold_pct=p.capacity_threshold_pct,
        minimum_hosts_pct=p.minimum_hosts_pct,
        min_hosts=p.min_hosts,
        max_hosts=p.max_hosts,
        force_logoff=p.force_logoff,
        logoff_wait=p.logoff_wait,
        stop_hosts_when=p.stop_hosts_when,
        exclude_tagged_from_minimum=p.exclude_tagged_from_minimum,
        cooldown=p.cooldown or timedelta(0),
        boot_lead=p.boot_lead,
        session_threshold_per_cpu=p.session_threshold_per_cpu,
        minimum_hosts=p.minimum_hosts,
        cores_per_host=p.cores_per_host,
        limit_seconds_to_force_logoff=p.limit_seconds_to_force_logoff,
    )
    f = s.forecast or ForecastFields()
    forecast = Forecast(tuple(f.net_per_minute), f.observed_rate, f.expected_rate, f.incoming)
    return PoolSnapshot(s.time, s.phase, s.max_session_limit, hosts, s.load_balancer, s.last_scale_out), rules, forecast
