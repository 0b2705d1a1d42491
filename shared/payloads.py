"""Strict parsers for everything that arrives from outside: HTTP bodies and event payloads.

One model per payload kind, with the shapes the published schemas give (Azure Monitor's common alert schema,
Resource Health's `AvailabilityStatusChanged`, Tandem's own events) and bounds on every field Tandem reads:
finite numbers, aware datetimes, strings of bounded length, shallow nesting. Fields Tandem does not read are
allowed (the published schemas grow) but never interpreted. Whatever is wrong, the one error out is an
InputError whose message names the field; nothing else escapes a parser.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shared.errors import InputError

# Resource Health's Event Grid event types (the HealthResources system topic), read by autoscale and failover
HEALTH_CHANGED = "Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged"
HEALTH_ANNOTATED = "Microsoft.ResourceNotifications.HealthResources.ResourceAnnotated"
MAX_BODY_BYTES = 16 * 1024  # an HTTP body Tandem takes is a few hundred bytes
MAX_ALERT_BYTES = 256 * 1024  # a common-schema alert: a few kilobytes, more with a log alert's search results
MAX_EVENT_BYTES = 1024 * 1024  # Event Grid's own limit for one event
MAX_DEPTH = 32  # the deepest published payload Tandem reads nests eight levels
MAX_REASON = 500  # characters of a failover's reason: one audit row, one log line
MAX_SESSIONS = 100_000  # more users than any estate announces; a region's seats bound it again (README)
MAX_RATE = 10_000.0  # logons per minute in one pool's alert

_WINDOW = re.compile(r"^P(?:(\d{1,3})D)?(?:T(?:(\d{1,4})H)?(?:(\d{1,5})M)?(?:(\d{1,6})S)?)?$")  # ISO 8601
Text = Annotated[str, StringConstraints(max_length=2048)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")]
ResourceId = Annotated[str, StringConstraints(pattern=r"^/subscriptions/[^/?#]+(/[^/?#]+)*$", max_length=1024)]


def depth(value: Any, *, limit: int = 1_000_000) -> int:
    """How deeply lists and mappings nest, walked iteratively (the value may be deeper than the stack). A value
    that contains itself (a YAML alias to its own ancestor) or has more than `limit` nodes (an alias bomb) counts
    as infinitely deep."""
    deepest, seen, on_path = 0, 0, set()
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        item, level, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            continue
        if not isinstance(item, dict | list):
            continue
        seen += 1
        if id(item) in on_path or seen > limit:
            return 1 << 30
        deepest = max(deepest, level)
        on_path.add(id(item))
        stack.append((item, level, True))
        stack.extend((v, level + 1, False) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES, what: str = "body") -> Any:
    """JSON from outside: at most `max_bytes`, UTF-8, finite numbers, at most MAX_DEPTH levels deep."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes} bytes")
    try:
        value = json.loads(data.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"{what} is not JSON: {str(exc)[:120]}") from None
    check_depth(value, what)
    return value


def check_depth(value: Any, what: str = "payload") -> None:
    """An already-decoded value (an event the worker parsed) must be shallow enough to walk."""
    if depth(value) > MAX_DEPTH:
        raise InputError(f"{what} is nested deeper than {MAX_DEPTH} levels")


def validate[M: BaseModel](model: type[M], data: Any, what: str) -> M:
    """`data` as `model`, or an InputError naming the first problems' fields."""
    check_depth(data, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False)[:3]:
            where = ".".join(str(p) for p in error["loc"]) or "(top level)"
            problems.append(f"{where}: {error['msg']}")
        raise InputError(f"{what}: " + "; ".join(problems)) from None


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False, str_max_length=4096)


class _Body(_Payload):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=4096)


# ----------------------------------------------------------------------------------------------- HTTP bodies


class FailoverRequest(_Body):
    """POST /api/failover."""

    source: Name
    target: Name
    mode: Literal["planned", "unplanned", "drill", "failback"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON, strip_whitespace=True)]


# ----------------------------------------------------------------------------------------------- the common alert schema


class Essentials(_Payload):
    alertId: Text
    alertRule: Text = ""
    severity: Text = ""
    signalType: Text = ""
    monitorCondition: Literal["Fired", "Resolved"]
    monitoringService: Text = ""
    alertTargetIDs: list[Text] = Field(default_factory=list, max_length=100)
    configurationItems: list[Text] | None = Field(None, max_length=100)
    firedDateTime: AwareDatetime | None = None
    resolvedDateTime: AwareDatetime | None = None


class AlertData(_Payload):
    essentials: Essentials
    alertContext: dict[str, Any] | None = None
    customProperties: dict[str, Any] | None = None


class CommonAlert(_Payload):
    """An Azure Monitor alert in the common alert schema (what an action group delivers)."""

    schemaId: Literal["azureMonitorCommonAlertSchema"]
    data: AlertData

    @property
    def essentials(self) -> Essentials:
        return self.data.essentials

    @property
    def context(self) -> dict[str, Any]:
        return self.data.alertContext or {}


class Dimension(_Payload):
    name: Text
    value: Text


class Criterion(_Payload):
    """One `allOf` item of a log-search or metric alert's condition."""

    metricValue: Annotated[float, Field(ge=0, le=1e9)] | None = None
    dimensions: list[Dimension] = Field(default_factory=list, max_length=50)


class Condition(_Payload):
    windowSize: Annotated[str, StringConstraints(pattern=_WINDOW.pattern)] | None = None
    allOf: list[Criterion] = Field(min_length=1, max_length=50)
    windowStartTime: AwareDatetime | None = None
    windowEndTime: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window(self) -> Condition:
        start, end = self.windowStartTime, self.windowEndTime
        if (start is None) != (end is None) or (start and end and end < start):
            raise ValueError("windowStartTime and windowEndTime come together, the end not before the start")
        return self


class ConditionContext(_Payload):
    """alertContext of a log-search (Log Alerts V2) or metric alert."""

    condition: Condition


class ResourceHealthProperties(_Payload):
    currentHealthStatus: Text | None = None
    previousHealthStatus: Text | None = None
    cause: Text | None = None  # PlatformInitiated, UserInitiated, Unknown
    type: Text | None = None  # Downtime, ...


class ResourceHealthContext(_Payload):
    properties: ResourceHealthProperties


def _json_list(value: Any) -> Any:
    """Service Health sends impactedServices as JSON text inside the JSON."""
    return loads(value, max_bytes=64 * 1024, what="impactedServices") if isinstance(value, str) else value


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


class ImpactedRegion(_Payload):
    RegionName: Text


class ImpactedService(_Payload):
    ServiceName: Text = ""
    ImpactedRegions: list[ImpactedRegion] = Field(default_factory=list, max_length=100)


class ServiceHealthProperties(_Payload):
    title: Text = ""
    service: Text = ""
    incidentType: Text
    stage: Text | None = None
    trackingId: Text | None = None
    impactedServices: Annotated[list[ImpactedService], BeforeValidator(_json_list)] = Field(default_factory=list, max_length=200)
    is_synthetic: Annotated[bool, BeforeValidator(_flag)] = Field(False, alias="IsSynthetic")


class ServiceHealthContext(_Payload):
    properties: ServiceHealthProperties


# ----------------------------------------------------------------------------------------------- Event Grid data


class _Target(_Payload):
    """What every HealthResources event says of its resource."""

    targetResourceId: ResourceId
    targetResourceType: Text
    occurredTime: AwareDatetime | None = None


class _HealthProperties(_Target):
    availabilityState: Literal["Available", "Unavailable", "Degraded", "Unknown"]
    previousAvailabilityState: Text | None = None


class _AnnotationProperties(_Target):
    annotationName: Text = ""
    reason: Text | None = None
    context: Text | None = None  # "Customer Initiated", "Platform Initiated"
    category: Text | None = None  # "Planned", "Unplanned", "Not Applicable"


class _HealthInfo(_Payload):
    properties: _HealthProperties


class _AnnotationInfo(_Payload):
    properties: _AnnotationProperties


class HealthChanged(_Payload):
    """Resource Health `AvailabilityStatusChanged` (the HealthResources system topic), its data."""

    resourceInfo: _HealthInfo

    @property
    def properties(self) -> _HealthProperties:
        return self.resourceInfo.properties


class HealthAnnotated(_Payload):
    """Resource Health `ResourceAnnotated` (the HealthResources system topic), its data: why a resource changed."""

    resourceInfo: _AnnotationInfo

    @property
    def properties(self) -> _AnnotationProperties:
        return self.resourceInfo.properties


class FailoverStarted(_Payload):
    """`Tandem.Failover.Started`, its data: `target` takes `sessions` users from `source` now."""

    source: Name
    target: Name
    sessions: Annotated[StrictInt, Field(ge=0, le=MAX_SESSIONS)]


def window_minutes(condition: Condition) -> float:
    """The alert's evaluation window in minutes (windowSize, else the window's times, else 5)."""
    match = _WINDOW.match(condition.windowSize or "")
    if match and any(match.groups()):
        d, h, m, s = (int(x or 0) for x in match.groups())
        return max(1.0, (d * 86400 + h * 3600 + m * 60 + s) / 60)
    if condition.windowStartTime and condition.windowEndTime:
        return max(1.0, (condition.windowEndTime - condition.windowStartTime).total_seconds() / 60)
    return 5.0
