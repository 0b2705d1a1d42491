"""The ARM twin: serves the behavioural model over the ARM REST paths Tandem's SDK clients call."""

from __future__ import annotations

import copy
import hashlib
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode

from local.runtime.clock import Clock, WallClock
from local.runtime.identity import LocalIdentity
from local.tls import LocalCA
from local.twins.arm.model import AppGroup, Estate, Host, ModelError, Pool, RoleAssignment, ScalingPlan, Session, Site, Vm
from local.twins.arm.seed import Seed, build_estate, load_seed
from local.twins.server import Request, Response, Twin, TwinServer

ARM_AUDIENCE = "https://management.azure.com"
KEY_VAULT_AUDIENCE = "https://vault.azure.net"
API_VERSIONS = {
    "microsoft.desktopvirtualization": {"2024-04-03"},
    "microsoft.compute": {"2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2026-04-01"},
    "microsoft.authorization": {"2022-04-01"},
    "microsoft.web": {"2024-04-01"},
}
_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"
_DV = _RG + r"/providers/microsoft\.desktopvirtualization"
_VMS = _RG + r"/providers/microsoft\.compute/virtualmachines"
_POOL = _DV + r"/hostpools/(?P<pool>[^/]+)"
_HOST = _POOL + r"/sessionhosts/(?P<host>[^/]+)"
_SESSION = _HOST + r"/usersessions/(?P<sid>[^/]+)"
_ASSIGNMENTS = r"(?P<scope>/.+?)/providers/microsoft\.authorization/roleassignments"
_SITE = _RG + r"/providers/microsoft\.web/sites/(?P<site>[^/]+)"
_DVA = "Microsoft.DesktopVirtualization/hostpools"
_VMA = "Microsoft.Compute/virtualMachines"
_RAA = "Microsoft.Authorization/roleAssignments"
KEY_VAULT_GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"  # a data action (Key Vault Secrets User)

# Every path the twin serves: method, path, handler, and the ARM action Azure authorizes the call against (from the
# resource provider operations list; a host pool's user-session listing is authorized as the session hosts' one).
ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    (m, re.compile(p, re.I), h, a)
    for m, p, h, a in [
        ("GET", _DV + r"/hostpools", "_list_pools", f"{_DVA}/read"),
        ("GET", _POOL, "_get_pool", f"{_DVA}/read"),
        ("GET", _POOL + r"/scalingplans", "_list_pool_plans", "Microsoft.DesktopVirtualization/scalingplans/read"),
        ("GET", _POOL + r"/sessionhosts", "_list_hosts", f"{_DVA}/sessionhosts/read"),
        ("GET", _HOST, "_get_host", f"{_DVA}/sessionhosts/read"),
        ("PATCH", _HOST, "_patch_host", f"{_DVA}/sessionhosts/write"),
        ("GET", _POOL + r"/usersessions", "_list_pool_sessions", f"{_DVA}/sessionhosts/usersessions/read"),
        ("GET", _HOST + r"/usersessions", "_list_host_sessions", f"{_DVA}/sessionhosts/usersessions/read"),
        ("GET", _SESSION, "_get_session", f"{_DVA}/sessionhosts/usersessions/read"),
        ("DELETE", _SESSION, "_delete_session", f"{_DVA}/sessionhosts/usersessions/delete"),
        ("POST", _SESSION + r"/disconnect", "_disconnect", f"{_DVA}/sessionhosts/usersessions/disconnect/action"),
        ("POST", _SESSION + r"/sendmessage", "_send_message", f"{_DVA}/sessionhosts/usersessions/sendMessage/action"),
        ("GET", _DV + r"/applicationgroups", "_list_app_groups", "Microsoft.DesktopVirtualization/applicationgroups/read"),
        ("GET", _DV + r"/applicationgroups/(?P<ag>[^/]+)", "_get_app_group", "Microsoft.DesktopVirtualization/applicationgroups/read"),
        ("GET", _VMS, "_list_vms", f"{_VMA}/read"),
        ("GET", _SUB + r"/providers/microsoft\.compute/virtualmachines", "_list_all_vms", f"{_VMA}/read"),
        ("GET", _VMS + r"/(?P<vm>[^/]+)", "_get_vm", f"{_VMA}/read"),
        ("GET", _VMS + r"/(?P<vm>[^/]+)/instanceview", "_instance_view", f"{_VMA}/instanceView/read"),
        ("POST", _VMS + r"/(?P<vm>[^/]+)/(?P<action>start)", "_vm_action", f"{_VMA}/start/action"),
        ("POST", _VMS + r"/(?P<vm>[^/]+)/(?P<action>deallocate)", "_vm_action", f"{_VMA}/deallocate/action"),
        ("POST", _VMS + r"/(?P<vm>[^/]+)/runcommand", "_run_command", f"{_VMA}/runCommand/action"),
        (
            "GET",
            _SUB + r"/providers/microsoft\.compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)",
            "_operation",
            "Microsoft.Compute/locations/operations/read",
        ),
        ("GET", _ASSIGNMENTS, "_list_assignments", f"{_RAA}/read"),
        ("GET", _ASSIGNMENTS + r"/(?P<name>[^/]+)", "_get_assignment", f"{_RAA}/read"),
        ("PUT", _ASSIGNMENTS + r"/(?P<name>[^/]+)", "_put_assignment", f"{_RAA}/write"),
        ("DELETE", _ASSIGNMENTS + r"/(?P<name>[^/]+)", "_delete_assignment", f"{_RAA}/delete"),
        # Microsoft.Web 2024-04-01 (WebApps.json): WebApps_Get, WebApps_GetAuthSettingsV2WithoutSecrets and
        # WebApps_ListFunctionKeys, what the operator's command line reads to find a deployed Tandem
        ("GET", _SITE, "_get_site", "Microsoft.Web/sites/read"),
        ("GET", _SITE + r"/config/authsettingsv2", "_get_auth_settings", "Microsoft.Web/sites/config/read"),
        ("POST", _SITE + r"/functions/(?P<fn>[^/]+)/listkeys", "_list_function_keys", "Microsoft.Web/sites/functions/listkeys/action"),
    ]
]

_seen: Counter[tuple[str, str]] = Counter()  # every ARM twin's (caller, action) counts in this process
_seen_lock = threading.Lock()


def caller_of(user_agent: str) -> str:
    """The first product token of a User-Agent ('tandem/0.1.0 azsdk-python-…' -> 'tandem'): who made the call."""
    first = user_agent.split(" ", 1)[0]
    return first.split("/", 1)[0].lower() or "unknown"


def actions_seen(caller: str | None = None) -> Counter[str]:
    """The ARM actions the twins of this process were asked for (by `caller`, or by anyone), with counts."""
    with _seen_lock:
        found: Counter[str] = Counter()
        for (who, action), count in _seen.items():
            if caller is None or who == caller:
                found[action] += count
        return found


_DISPLAY = {"running": "VM running", "starting": "VM starting", "deallocating": "VM deallocating", "deallocated": "VM deallocated"}
_SYSTEM_DATA = {
    "createdBy": "tandem-twin",
    "createdByType": "Application",
    "createdAt": "2026-01-05T08:00:00Z",
    "lastModifiedBy": "tandem-twin",
    "lastModifiedByType": "Application",
    "lastModifiedAt": "2026-01-05T08:00:00Z",
}


class Throttle:
    """ARM's request limits as documented since 2024 ("Understand how Azure Resource Manager throttles requests"):
    token buckets per subscription, per principal and per operation type (reads 250 refilled at 25/s, writes and
    deletes 200 at 10/s), the same for tenant-level requests, and a global bucket per subscription 15 times larger
    shared by every principal. Real time, not the model's clock: requests per second are what is limited. A
    request over the limit is answered 429 with Retry-After; every other carries x-ms-ratelimit-remaining-*."""

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}

    def __init__(self, *, enabled: bool = True, clock: Callable[[], float] | None = None, time_scale: float = 1.0) -> None:
        self.enabled = enabled
        self.time_scale = time_scale  # a benchmark compressing time refills the buckets this much faster
        self.clock = clock or time.monotonic
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()
        self.throttled = 0

    def _level(self, key: tuple[str, ...], size: float, rate: float, now: float) -> float:
        tokens, when = self._buckets.get(key, (size, now))
        return min(size, tokens + (now - when) * rate)

    def take(self, path: str, method: str, principal: str) -> tuple[Response | None, dict[str, str]]:
        """(None, headers) when the request may pass, or (its 429, {}) when a bucket is empty."""
        if not self.enabled:
            return None, {}
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method.upper(), "writes")
        size, rate = self.LIMITS[kind]
        rate *= self.time_scale
        match = re.match(r"/subscriptions/([^/]+)", path, re.I)
        scope, name = ("subscription", match.group(1).lower()) if match else ("tenant", "")
        who = hashlib.sha256(principal.encode()).hexdigest()[:12]
        keys = [((scope, name, who, kind), size, rate)]
        if scope == "subscription":
            keys.append(((scope, name, "*", kind), size * 15, rate * 15))
        with self._lock:
            now = self.clock()
            levels = [(key, self._level(key, sz, rt, now), rt) for key, sz, rt in keys]
            empty = next(((key, level, rt) for key, level, rt in levels if level < 1.0), None)
            if empty is not None:
                self.throttled += 1
                key, level, rt = empty
                wait = max(1, math.ceil((1.0 - level) / rt))
                actor = "all principals" if key[2] == "*" else who
                code = "SubscriptionRequestsThrottled" if scope == "subscription" else "TenantRequestsThrottled"
                target = f"subscription '{name}'" if scope == "subscription" else "tenant"
                return Response(
                    429,
                    error_body(
                        429,
                        code,
                        f"Number of '{kind[:-1]}' requests for {target} actor "
                        f"'{actor}' exceeded. Please try again after '{wait}' seconds after "
                        "additional tokens are available. Refer to https://aka.ms/arm-throttling",
                    ),
                    {"Retry-After": str(wait)},
                ), {}
            for key, level, _ in levels:
                self._buckets[key] = (level - 1.0, now)
            remaining = int(levels[0][1] - 1.0)
        return None, {f"x-ms-ratelimit-remaining-{scope}-{kind}": str(remaining)}


_SCALE_SET_FILTER = re.compile(r"virtualMachineScaleSet/id eq '[^']+'", re.I)  # the only documented List $filter


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """ARM's error shape."""
    return {"error": {"code": code, "message": message}}


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _merge(base: dict[str, Any], imported: dict[str, Any]) -> dict[str, Any]:
    """An imported document as published, else the twin's own rendering; the caller then overlays live fields."""
    return copy.deepcopy(imported or base)


def _object_id(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, text.lower()))


class ArmTwin(Twin):
    """An HTTPS twin of the ARM subset Tandem uses, with a managed-identity endpoint at /msi/token."""

    def __init__(
        self,
        seed: Seed | None = None,
        *,
        clock: Clock | None = None,
        identity: LocalIdentity | None = None,
        port: int = 0,
        ca: LocalCA | None = None,
        latency_s: float = 0.0,
        page_size: int = 100,
        hang_s: float = 30.0,
        throttle: bool = True,
        time_scale: float = 1.0,
    ) -> None:
        self.clock = clock or WallClock()
        self.throttle = Throttle(enabled=throttle, time_scale=time_scale)  # ARM's documented token buckets
        seed = seed or load_seed()
        self.estate: Estate = build_estate(seed, self.clock)
        self.secrets = {(vault, name): value for vault, kept in seed.key_vaults.items() for name, value in kept.items()}
        self.identity = identity or LocalIdentity()
        self.page_size = page_size
        self.server = TwinServer(
            self._dispatch, error_body=error_body, port=port, ca=ca, latency_s=latency_s, hang_s=hang_s, name="arm"
        )
        self.base_url = self.server.base_url
        self.ca = self.server.ca
        self._routes = [(method, pattern, getattr(self, handler), action) for method, pattern, handler, action in ROUTES]
        self._shells: dict[str, tuple[str, list[str]]] = {}  # Cloud Shell session -> (the person, their app roles)

    # ----------------------------------------------------------------- lifecycle

    @property
    def identity_settings(self) -> dict[str, str]:
        """App settings that point azure-identity's managed-identity credential at this twin."""
        return {
            "IDENTITY_ENDPOINT": f"{self.base_url}/msi/token",
            "IDENTITY_HEADER": self.identity.header_secret,
            "TANDEM_ARM_ENDPOINT": self.base_url,
            "TANDEM_KEY_VAULT_ENDPOINT": f"{self.base_url}/vaults",
            "REQUESTS_CA_BUNDLE": self.ca.bundle_path,
        }

    def cloud_shell(self, upn: str, roles: Sequence[str] = ()) -> dict[str, str]:
        """The environment of an Azure Cloud Shell session `upn` signed in to: MSI_ENDPOINT, where azure-identity's
        DefaultAzureCredential asks for the person's own tokens (an app's token carries the app roles the person is
        assigned, `roles`), and the CA bundle that trusts the twins."""
        session = uuid.uuid4().hex
        self._shells[session] = (upn, list(roles))
        return {"MSI_ENDPOINT": f"{self.base_url}/cloudshell/{session}/oauth2/token", "REQUESTS_CA_BUNDLE": self.ca.bundle_path}

    def set_secret(self, vault: str, name: str, value: str) -> None:
        """Put a secret in one of the twin's key vaults (what an administrator does before deploying)."""
        self.secrets[(vault, name)] = value

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, request: Request) -> Response:
        if request.path == "/msi/token":
            status, body = self.identity.answer_msi(request.headers, request.query)
            return Response(status, body)
        if request.path.startswith("/cloudshell/"):
            return self._cloud_shell_token(request)
        if request.path == "/twin/stats":  # the twin's own counters, for benchmarks; not an ARM path
            arm_requests = sum(1 for r in self.server.log() if r.path.startswith("/subscriptions/"))
            return Response(200, {"requests": arm_requests, "throttled": self.throttle.throttled})
        if request.path.startswith("/vaults/"):
            self._note(request, KEY_VAULT_GET_SECRET if request.method == "GET" else f"unmapped {request.method} vault")
            return self._key_vault(request)
        path = request.path.rstrip("/")
        route = self._route(request.method, path)
        # Azure authorizes the action before the provider sees the call, so a refused or failed call still needed it.
        self._note(request, route[2] if route else f"unmapped {request.method} {path}")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        claims = self.identity.validate(request.headers["authorization"][7:], ARM_AUDIENCE) or {}
        principal = str(claims.get("oid") or claims.get("sub") or "")  # ARM limits per principal, not per token
        limited, remaining = self.throttle.take(path, request.method, principal)
        if limited is not None:
            return limited
        answer = self._answer(request, path, route)
        answer.headers.update(remaining)
        return answer

    def _answer(self, request: Request, path: str, route: tuple[re.Match[str], Callable[..., Response], str] | None) -> Response:
        if route is not None:
            match, handler, _ = route
            bad_version = self._check_api_version(path, request.query.get("api-version"))
            if bad_version is not None:
                return bad_version
            try:
                with self.estate.lock:
                    self.estate.settle()
                    return handler(request, **match.groupdict())
            except ModelError as exc:
                return Response(exc.status, error_body(exc.status, exc.code, exc.message))
        return Response(404, error_body(404, "NotFound", f"No route for {request.method} {request.path}"))

    def _route(self, method: str, path: str) -> tuple[re.Match[str], Callable[..., Response], str] | None:
        for verb, pattern, handler, action in self._routes:
            match = pattern.fullmatch(path) if verb == method else None
            if match is not None:
                return match, handler, action
        return None

    def _note(self, request: Request, action: str) -> None:
        key = (caller_of(request.headers.get("user-agent", "")), action)
        with _seen_lock:
            _seen[key] += 1

    def _cloud_shell_token(self, request: Request) -> Response:
        """Cloud Shell's token endpoint: POST, header `Metadata: true`, a form body with `resource`; the answer is an
        OAuth token response for the signed-in person."""
        match = re.fullmatch(r"/cloudshell/(?P<session>[0-9a-f]{32})/oauth2/token", request.path)
        shell = self._shells.get(match["session"]) if match else None
        if shell is None or request.method != "POST":
            return Response(404, {"error": "not_found"})
        if request.headers.get("metadata", "").lower() != "true":
            return Response(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        resource = (parse_qs(request.body.decode("utf-8", "replace")).get("resource") or [""])[0].removesuffix("/.default")
        if not resource:
            return Response(400, {"error": "invalid_request", "error_description": "resource is required"})
        upn, roles = shell
        app_roles = roles if resource not in (ARM_AUDIENCE, KEY_VAULT_AUDIENCE) else []  # ARM's token carries no app roles
        token, expires = self.identity.issue(resource, subject=self.identity.person_id(upn), name=upn, roles=app_roles)
        lifetime = str(int(expires - time.time()))
        return Response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "expires_on": str(expires), "resource": resource},
        )

    def _key_vault(self, request: Request) -> Response:
        """Key Vault's GET secret (data plane), for the vaults in the seed; token audience https://vault.azure.net."""
        match = re.fullmatch(r"/vaults/(?P<vault>[^/]+)/secrets/(?P<name>[^/]+)(/(?P<version>[0-9a-f]{32}))?/?", request.path)
        denied = self._authenticate(request, KEY_VAULT_AUDIENCE)
        if denied is not None:
            return denied
        if match is None or request.method != "GET":
            return Response(404, error_body(404, "NotFound", f"No route for {request.method} {request.path}"))
        value = self.secrets.get((match["vault"], match["name"]))
        if value is None:
            return Response(
                404, error_body(404, "SecretNotFound", f"A secret with (name/id) {match['name']} was not found in this key vault.")
            )
        version = match["version"] or "0" * 32
        return Response(
            200,
            {
                "value": value,
                "id": f"https://{match['vault']}.vault.azure.net/secrets/{match['name']}/{version}",
                "attributes": {"enabled": True},
            },
        )

    def _authenticate(self, request: Request, audience: str = ARM_AUDIENCE) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return Response(
                401, error_body(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            )
        if not header.lower().startswith("bearer ") or self.identity.validate(header[7:], audience) is None:
            return Response(401, error_body(401, "InvalidAuthenticationToken", "The access token is invalid or has expired."))
        return None

    @staticmethod
    def _check_api_version(path: str, version: str | None) -> Response | None:
        namespaces = re.findall(r"/providers/([^/]+)", path.lower())
        provider = namespaces[-1] if namespaces else None  # a scope may nest providers: the last one answers
        if provider not in API_VERSIONS:
            return None
        if not version:
            return Response(
                400,
                error_body(
                    400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."
                ),
            )
        if version not in API_VERSIONS[provider]:
            return Response(
                400,
                error_body(
                    400,
                    "InvalidApiVersionParameter",
                    f"The api-version '{version}' is invalid. The supported versions are "
                    f"'{', '.join(sorted(API_VERSIONS[provider]))}'.",
                ),
            )
        return None

    def _page(self, request: Request, items: Sequence[Any], render: Callable[[Any], dict[str, Any]], *, avd: bool) -> Response:
        """One page of a list; AVD pages with pageSize/initialSkip, the others with $skiptoken."""
        query = dict(request.query)
        if avd:
            size = min(int(query.get("pageSize") or self.page_size), 1000)
            start = int(query.get("initialSkip") or 0)
            if str(query.get("isDescending", "")).lower() == "true":
                items = list(reversed(items))
        else:
            size = self.page_size
            start = int(query.get("$skiptoken") or 0)
        chunk = items[start : start + size]
        body: dict[str, Any] = {"value": [render(item) for item in chunk]}
        if start + size < len(items):
            if avd:
                query.update(pageSize=str(size), initialSkip=str(start + size))
            else:
                query["$skiptoken"] = str(start + size)
            body["nextLink"] = f"{self.base_url}{request.path}?{urlencode(query)}"
        return Response(200, body)

    # ----------------------------------------------------------------- desktop virtualization

    def _list_pools(self, request: Request, sub: str, rg: str) -> Response:
        return self._page(request, self.estate.pools_in(sub, rg), self.render_pool, avd=True)

    def _get_pool(self, request: Request, sub: str, rg: str, pool: str) -> Response:
        return Response(200, self.render_pool(self.estate.pool(sub, rg, pool)))

    def _list_pool_plans(self, request: Request, sub: str, rg: str, pool: str) -> Response:
        p = self.estate.pool(sub, rg, pool)
        return self._page(request, self.estate.scaling_plans_of(p), self.render_scaling_plan, avd=True)

    def render_scaling_plan(self, plan: ScalingPlan) -> dict[str, Any]:
        """A ScalingPlan as the 2024-04-03 spec describes it (the schedules are not modelled)."""
        refs = [{"hostPoolArmPath": pid, "scalingPlanEnabled": on} for pid, on in plan.pools.items()]
        return {
            "id": plan.id,
            "name": plan.name,
            "type": "Microsoft.DesktopVirtualization/scalingPlans",
            "location": plan.location,
            "systemData": dict(_SYSTEM_DATA),
            "properties": {
                "objectId": str(uuid.uuid5(uuid.NAMESPACE_URL, plan.id.lower())),
                "timeZone": plan.time_zone,
                "hostPoolType": "Pooled",
                "exclusionTag": "",
                "schedules": [],
                "hostPoolReferences": refs,
            },
        }

    def _list_hosts(self, request: Request, sub: str, rg: str, pool: str) -> Response:
        p = self.estate.pool(sub, rg, pool)
        return self._page(request, [p.hosts[k] for k in sorted(p.hosts)], self.render_host, avd=True)

    def _get_host(self, request: Request, sub: str, rg: str, pool: str, host: str) -> Response:
        return Response(200, self.render_host(self._host(sub, rg, pool, host)))

    def _patch_host(self, request: Request, sub: str, rg: str, pool: str, host: str) -> Response:
        h = self._host(sub, rg, pool, host)
        props = (request.json() or {}).get("properties") or {}
        if "allowNewSession" in props:
            if not isinstance(props["allowNewSession"], bool):
                raise ModelError(400, "InvalidRequestContent", "allowNewSession must be a boolean.")
            self.estate.set_drain(h, props["allowNewSession"])
        for key in ("friendlyName", "assignedUser"):
            if key in props:
                h.overrides[key] = props[key]
        return Response(200, self.render_host(h))

    @staticmethod
    def _sessions(hosts: Sequence[Host]) -> list[tuple[Host, Session]]:
        return [(h, h.sessions[i]) for h in hosts for i in sorted(h.sessions)]

    def _list_pool_sessions(self, request: Request, sub: str, rg: str, pool: str) -> Response:
        p = self.estate.pool(sub, rg, pool)
        pairs = self._sessions([p.hosts[k] for k in sorted(p.hosts)])
        wanted = _odata_filter(request.query.get("$filter"))
        pairs = [(h, s) for h, s in pairs if _filter_match(wanted, s)]
        return self._page(request, pairs, lambda pair: self.render_session(*pair), avd=True)

    def _list_host_sessions(self, request: Request, sub: str, rg: str, pool: str, host: str) -> Response:
        p = self.estate.pool(sub, rg, pool)
        return self._page(request, self._sessions([self.estate.host(p, host)]), lambda pair: self.render_session(*pair), avd=True)

    def _host(self, sub: str, rg: str, pool: str, host: str) -> Host:
        return self.estate.host(self.estate.pool(sub, rg, pool), host)

    def _get_session(self, request: Request, sub: str, rg: str, pool: str, host: str, sid: str) -> Response:
        h = self._host(sub, rg, pool, host)
        return Response(200, self.render_session(h, self.estate.session(h, sid)))

    def _delete_session(self, request: Request, sub: str, rg: str, pool: str, host: str, sid: str) -> Response:
        h = self._host(sub, rg, pool, host)
        try:
            self.estate.logoff(h, sid)
        except ModelError as exc:
            if exc.status != 404:
                raise
            return Response(204)  # ARM's answer for deleting what is not there
        return Response(200)

    def _disconnect(self, request: Request, sub: str, rg: str, pool: str, host: str, sid: str) -> Response:
        self.estate.disconnect(self._host(sub, rg, pool, host), sid)
        return Response(200)

    def _send_message(self, request: Request, sub: str, rg: str, pool: str, host: str, sid: str) -> Response:
        body = request.json() or {}
        self.estate.send_message(
            self._host(sub, rg, pool, host), sid, str(body.get("messageTitle", "")), str(body.get("messageBody", ""))
        )
        return Response(200)

    def _list_app_groups(self, request: Request, sub: str, rg: str) -> Response:
        return self._page(request, self.estate.app_groups_in(sub, rg), self.render_app_group, avd=True)

    def _get_app_group(self, request: Request, sub: str, rg: str, ag: str) -> Response:
        return Response(200, self.render_app_group(self.estate.app_group(sub, rg, ag)))

    # ----------------------------------------------------------------- compute

    def _list_vms(self, request: Request, sub: str, rg: str) -> Response:
        self.estate.require_group(sub, rg)
        expand = request.query.get("$expand", "").lower() == "instanceview"
        scale_set = _SCALE_SET_FILTER.fullmatch(request.query.get("$filter", "").strip())
        if expand and scale_set is None:  # the spec: "can only be specified if a valid $filter option is specified"
            raise ModelError(
                400,
                "InvalidParameter",
                "The $expand parameter 'instanceView' can only be specified "
                "with a valid $filter (virtualMachineScaleSet/id eq '<scale set id>').",
            )
        vms = [
            v
            for k, v in sorted(self.estate.vms.items())
            if v.subscription.lower() == sub.lower() and v.resource_group.lower() == rg.lower()
        ]
        if scale_set is not None:  # the twin models no scale sets: no VM belongs to one
            vms = []
        return self._page(request, vms, lambda v: self.render_vm(v, instance_view=expand), avd=False)

    def _list_all_vms(self, request: Request, sub: str) -> Response:
        if not self.estate.subscription_known(sub):
            raise ModelError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        status_only = request.query.get("statusOnly", "").lower() == "true"
        vms = [v for k, v in sorted(self.estate.vms.items()) if v.subscription.lower() == sub.lower()]
        return self._page(request, vms, lambda v: self.render_vm(v, instance_view=status_only), avd=False)

    def _get_vm(self, request: Request, sub: str, rg: str, vm: str) -> Response:
        expand = request.query.get("$expand", "").lower() == "instanceview"
        return Response(200, self.render_vm(self.estate.vm(sub, rg, vm), instance_view=expand))

    def _instance_view(self, request: Request, sub: str, rg: str, vm: str) -> Response:
        return Response(200, self.render_instance_view(self.estate.vm(sub, rg, vm)))

    def _vm_action(self, request: Request, sub: str, rg: str, vm: str, action: str) -> Response:
        machine = self.estate.vm(sub, rg, vm)
        operation = (self.estate.start_vm if action.lower() == "start" else self.estate.deallocate_vm)(machine)
        if operation is None:
            return Response(200)
        version = request.query["api-version"]
        url = (
            f"{self.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{machine.location}"
            f"/operations/{operation.id}?api-version={version}"
        )
        return Response(202, None, {"Azure-AsyncOperation": url, "Location": f"{url}&monitor=true"})

    def _run_command(self, request: Request, sub: str, rg: str, vm: str) -> Response:
        """VirtualMachines_RunCommand, answered at once (the spec's 200 with a RunCommandResult)."""
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("commandId"), str):
            raise ModelError(400, "InvalidParameter", "The value of parameter commandId is invalid.")
        script = body.get("script") or []
        if not isinstance(script, list) or not all(isinstance(line, str) for line in script):
            raise ModelError(400, "InvalidParameter", "The value of parameter script is invalid.")
        stdout, stderr = self.estate.run_command(self.estate.vm(sub, rg, vm), body["commandId"], script)
        status = {"level": "Info", "displayStatus": "Provisioning succeeded"}
        return Response(
            200,
            {
                "value": [
                    {"code": "ComponentStatus/StdOut/succeeded", **status, "message": stdout},
                    {"code": "ComponentStatus/StdErr/succeeded", **status, "message": stderr},
                ]
            },
        )

    def _operation(self, request: Request, sub: str, loc: str, op: str) -> Response:
        operation = self.estate.operations.get(op)
        if operation is None:
            raise ModelError(404, "OperationNotFound", f"The operation '{op}' was not found.")
        now = self.clock.now()
        status = operation.status(now)
        if request.query.get("monitor", "").lower() == "true":
            return Response(
                202 if status == "InProgress" else 200,
                None,
                {"Location": f"{self.base_url}{request.path}?{urlencode(request.query)}"} if status == "InProgress" else {},
            )
        body = {"name": operation.id, "status": status, "startTime": _iso(operation.started)}
        if status == "Succeeded":
            body["endTime"] = _iso(operation.done_at)
        return Response(200, body)

    # ----------------------------------------------------------------- role assignments

    def _list_assignments(self, request: Request, scope: str) -> Response:
        wanted = scope.rstrip("/").lower()
        found = [a for a in self.estate.assignments.values() if wanted == a.scope.lower() or wanted.startswith(a.scope.lower() + "/")]
        principal = re.search(r"principalId eq '([^']+)'", request.query.get("$filter", ""))
        if principal:
            found = [a for a in found if a.principal_id == principal.group(1)]
        return self._page(request, sorted(found, key=lambda a: a.name), self.render_assignment, avd=False)

    def _get_assignment(self, request: Request, scope: str, name: str) -> Response:
        found = self.estate.assignments.get(name.lower())
        if found is None or found.scope.lower() != scope.rstrip("/").lower():
            raise ModelError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return Response(200, self.render_assignment(found))

    def _put_assignment(self, request: Request, scope: str, name: str) -> Response:
        props = (request.json() or {}).get("properties") or {}
        if not props.get("roleDefinitionId") or not props.get("principalId"):
            raise ModelError(400, "InvalidRoleAssignmentRequest", "roleDefinitionId and principalId are required.")
        assignment, created = self.estate.create_assignment(
            scope, name, props["roleDefinitionId"], props["principalId"], props.get("principalType", "User")
        )
        return Response(201 if created else 200, self.render_assignment(assignment))

    def _delete_assignment(self, request: Request, scope: str, name: str) -> Response:
        removed = self.estate.delete_assignment(scope, name)
        return Response(204) if removed is None else Response(200, self.render_assignment(removed))

    # ----------------------------------------------------------------- rendering

    def render_pool(self, pool: Pool) -> dict[str, Any]:
        """A host pool as HostPools_Get returns it."""
        base = {
            "id": pool.id,
            "name": pool.name,
            "type": "Microsoft.DesktopVirtualization/hostPools",
            "location": pool.location,
            "tags": dict(pool.tags),
            "systemData": dict(_SYSTEM_DATA),
            "properties": {
                "objectId": _object_id(pool.id),
                "friendlyName": pool.name,
                "description": None,
                "hostPoolType": "Pooled",
                "personalDesktopAssignmentType": None,
                "customRdpProperty": None,
                "maxSessionLimit": pool.max_session_limit,
                "loadBalancerType": pool.load_balancer_type,
                "validationEnvironment": False,
                "ring": None,
                "registrationInfo": None,
                "vmTemplate": None,
                "ssoadfsAuthority": None,
                "ssoClientId": None,
                "ssoClientSecretKeyVaultPath": None,
                "ssoSecretType": None,
                "preferredAppGroupType": "Desktop",
                "startVMOnConnect": pool.start_vm_on_connect,
                "cloudPcResource": False,
                "agentUpdate": {
                    "type": "Default",
                    "useSessionHostLocalTime": False,
                    "maintenanceWindowTimeZone": None,
                    "maintenanceWindows": [],
                },
            },
        }
        doc = _merge(base, pool.extra)
        doc.setdefault("properties", {}).update(
            maxSessionLimit=pool.max_session_limit, loadBalancerType=pool.load_balancer_type, startVMOnConnect=pool.start_vm_on_connect
        )
        return doc

    def render_host(self, host: Host) -> dict[str, Any]:
        """A session host as SessionHosts_Get/List return it."""
        now = self.clock.now()
        status = host.status(now)
        vm = host.vm
        base = {
            "id": f"{host.pool.id}/sessionHosts/{host.name}",
            "name": f"{host.pool.name}/{host.name}",
            "type": "Microsoft.DesktopVirtualization/hostPools/sessionHosts",
            "systemData": dict(_SYSTEM_DATA),
            "properties": {
                "objectId": _object_id(host.name),
                "lastHeartBeat": _iso(now if status == "Available" else host.status_timestamp(now)),
                "sessions": len(host.sessions),
                "agentVersion": "1.0.9742.2500",
                "allowNewSession": host.allow_new_session,
                "assignedUser": None,
                "status": status,
                "statusTimestamp": _iso(host.status_timestamp(now)),
                "osVersion": "10.0.22631",
                "sxSStackVersion": "rdp-sxs240131002",
                "updateState": "Succeeded",
                "lastUpdateTime": _iso(host.status_since),
                "updateErrorMessage": "",
                "virtualMachineId": vm.vm_id if vm else None,
                "friendlyName": None,
                "resourceId": vm.id if vm else None,
                "sessionHostHealthCheckResults": [
                    {
                        "healthCheckName": "DomainJoinedCheck",
                        "healthCheckResult": "SessionHostShutdown" if status == "Shutdown" else "HealthCheckSucceeded",
                        "additionalFailureDetails": {
                            "message": "SessionHost healthy: is joined to domain",
                            "errorCode": 0,
                            "lastHealthCheckDateTime": _iso(now),
                        },
                    }
                ],
            },
        }
        doc = _merge(base, host.extra)
        doc.setdefault("properties", {}).update(host.overrides, allowNewSession=host.allow_new_session)
        if vm is not None:  # the model owns these for hosts on modelled VMs
            doc["properties"].update(status=status, sessions=len(host.sessions))
        return doc

    def render_session(self, host: Host, session: Session) -> dict[str, Any]:
        """A user session as UserSessions_Get/List return it."""
        user = session.upn.split("@")[0]
        base = {
            "id": f"{host.pool.id}/sessionHosts/{host.name}/userSessions/{session.id}",
            "name": f"{host.pool.name}/{host.name}/{session.id}",
            "type": "Microsoft.DesktopVirtualization/hostPools/sessionHosts/userSessions",
            "systemData": dict(_SYSTEM_DATA),
            "properties": {
                "objectId": _object_id(session.upn),
                "userPrincipalName": session.upn,
                "applicationType": session.app_type,
                "sessionState": session.state,
                "activeDirectoryUserName": f"CONTOSO\\{user}",
                "createTime": _iso(session.created),
            },
        }
        doc = _merge(base, session.extra)
        doc.setdefault("properties", {})["sessionState"] = session.state
        return doc

    def render_app_group(self, group: AppGroup) -> dict[str, Any]:
        """An application group as ApplicationGroups_Get returns it."""
        base = {
            "id": group.id,
            "name": group.name,
            "type": "Microsoft.DesktopVirtualization/applicationGroups",
            "location": group.location,
            "tags": dict(group.tags),
            "systemData": dict(_SYSTEM_DATA),
            "properties": {
                "objectId": _object_id(group.id),
                "description": None,
                "friendlyName": group.name,
                "hostPoolArmPath": group.pool.id if group.pool else None,
                "workspaceArmPath": None,
                "applicationGroupType": group.kind,
                "cloudPcResource": False,
                "showInFeed": True,
            },
        }
        return _merge(base, group.extra)

    def _statuses(self, vm: Vm, imported: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The imported statuses (or the twin's own) with the PowerState entry set to the modelled power."""
        power = vm.power(self.clock.now())
        statuses = copy.deepcopy(imported) or [
            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}
        ]
        entry = {"code": f"PowerState/{power}", "level": "Info", "displayStatus": _DISPLAY[power]}
        for i, status in enumerate(statuses):
            if str(status.get("code", "")).startswith("PowerState/"):
                if status["code"] != entry["code"]:
                    statuses[i] = entry
                return statuses
        return [*statuses, entry]

    def render_vm(self, vm: Vm, *, instance_view: bool = False) -> dict[str, Any]:
        """A VM as VirtualMachines_Get/List return it; with its instance view when expanded."""
        base = {
            "id": vm.id,
            "name": vm.name,
            "type": "Microsoft.Compute/virtualMachines",
            "location": vm.location,
            "tags": dict(vm.tags),
            "properties": {
                "vmId": vm.vm_id,
                "hardwareProfile": {"vmSize": vm.size},
                "provisioningState": "Succeeded",
                "osProfile": {"computerName": vm.name[:15], "adminUsername": "avdadmin"},
                "storageProfile": {"osDisk": {"osType": "Windows", "name": f"{vm.name}-osdisk", "createOption": "FromImage"}},
            },
        }
        doc = _merge(base, vm.extra)
        if instance_view:
            doc.setdefault("properties", {})["instanceView"] = self.render_instance_view(vm)
        return doc

    def render_instance_view(self, vm: Vm) -> dict[str, Any]:
        """A VM's instance view; the power state is the modelled one."""
        imported = (vm.extra.get("properties") or {}).get("instanceView") or {}
        doc = copy.deepcopy(imported) or {
            "computerName": vm.name[:15],
            "osName": "Windows 11 Enterprise multi-session",
            "osVersion": "10.0.22631",
        }
        doc["statuses"] = self._statuses(vm, imported.get("statuses") or [])
        return doc

    @staticmethod
    def render_assignment(assignment: RoleAssignment) -> dict[str, Any]:
        """A role assignment as api-version 2022-04-01 returns it."""
        return {
            "id": assignment.id,
            "name": assignment.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": assignment.role_definition_id,
                "principalId": assignment.principal_id,
                "principalType": assignment.principal_type,
                "scope": assignment.scope,
                "condition": None,
                "conditionVersion": None,
                "createdOn": _iso(assignment.created),
                "updatedOn": _iso(assignment.created),
                "createdBy": None,
                "updatedBy": None,
                "delegatedManagedIdentityResourceId": None,
                "description": None,
            },
        }

    # ----------------------------------------------------------------- web (the function app itself)

    def _get_site(self, request: Request, sub: str, rg: str, site: str) -> Response:
        return Response(200, self.render_site(self.estate.site(sub, rg, site)))

    def _get_auth_settings(self, request: Request, sub: str, rg: str, site: str) -> Response:
        return Response(200, self.render_auth_settings(self.estate.site(sub, rg, site)))

    def _list_function_keys(self, request: Request, sub: str, rg: str, site: str, fn: str) -> Response:
        s = self.estate.site(sub, rg, site)
        key = s.keys(fn)
        if key is None:
            raise ModelError(404, "NotFound", f"Function '{fn}' was not found in site '{s.name}'.")
        return Response(200, {"id": f"{s.id}/functions/{fn}", "name": fn, "properties": {"default": key}})

    @staticmethod
    def render_site(site: Site) -> dict[str, Any]:
        """A function app as WebApps_Get returns it (Site, the fields a caller of a function app reads)."""
        return {
            "id": site.id,
            "name": site.name,
            "type": "Microsoft.Web/sites",
            "kind": "functionapp,linux",
            "location": site.location,
            "properties": {
                "state": "Running",
                "hostNames": [site.host_name],
                "enabled": True,
                "enabledHostNames": [site.host_name],
                "availabilityState": "Normal",
                "hostNameSslStates": [{"name": site.host_name, "sslState": "Disabled", "hostType": "Standard"}],
                "reserved": True,
                "resourceGroup": site.resource_group,
                "defaultHostName": site.host_name,
                "httpsOnly": True,
            },
        }

    @staticmethod
    def render_auth_settings(site: Site) -> dict[str, Any]:
        """The site's App Service authentication as WebApps_GetAuthSettingsV2WithoutSecrets returns it: what
        infra/app/api.bicep deploys (Entra ID, authentication required, 401 for anonymous callers)."""
        return {
            "id": f"{site.id}/config/authsettingsV2",
            "name": "authsettingsV2",
            "type": "Microsoft.Web/sites/config",
            "properties": {
                "platform": {"enabled": True, "runtimeVersion": "~1"},
                "globalValidation": {
                    "requireAuthentication": True,
                    "unauthenticatedClientAction": "Return401",
                    "excludedPaths": ["/runtime/webhooks/eventgrid", "/api/alerts"],
                },
                "identityProviders": {
                    "azureActiveDirectory": {
                        "enabled": True,
                        "registration": {"clientId": site.client_id, "openIdIssuer": "https://login.microsoftonline.com/common/v2.0"},
                        "validation": {"allowedAudiences": [f"api://{site.client_id}", site.client_id]},
                    }
                },
                "login": {"tokenStore": {"enabled": False}},
                "httpSettings": {"requireHttps": True},
            },
        }


def _odata_filter(text: str | None) -> dict[str, str]:
    """The `field eq 'value'` clauses of an OData filter joined by `and` (what AVD's list filter accepts)."""
    if not text:
        return {}
    clauses = re.findall(r"(\w+)\s+eq\s+'([^']*)'", text)
    return {name.lower(): value for name, value in clauses}


def _filter_match(wanted: dict[str, str], session: Session) -> bool:
    upn = wanted.get("userprincipalname")
    state = wanted.get("state") or wanted.get("sessionstate")
    return (upn is None or upn.lower() == session.upn.lower()) and (state is None or state.lower() == session.state.lower())
