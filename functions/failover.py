"""Failover: the orchestration, its activities, and the HTTP routes operators and approvers use.

Start and cancel need the app role Tandem.Failover.Operator, approve and reject Tandem.Failover.Approver,
read from the principal App Service authentication puts on the request. Without platform authentication
(WEBSITE_AUTH_ENABLED) that header could be forged by anyone, so role-gated calls are refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from functions import services
from functions.http import body_of, guarded, problem
from shared.telemetry import get_logger, log_event

bp = df.Blueprint()
log = get_logger("failover")
OPERATOR, APPROVER = "Tandem.Failover.Operator", "Tandem.Failover.Approver"
ACTIVITIES = (
    "preflight",
    "warm",
    "drain",
    "undrain",
    "logoff",
    "handles",
    "move_assignments",
    "fence",
    "replicate",
    "replicated",
    "snapshot_target",
    "make_writable",
    "writable",
    "verify",
    "profile_check",
    "audit",
    "relationships",
    "reverse",
    "reconnect",
    "reconnected",
    "hold",
    "release",
    "try_fence",
    "unfence",
    "admit",
)


def steps() -> Any:
    """The process's failover steps, sharing the autoscale gateway and the snapshot clients."""
    from functions import autoscale, snapshots
    from shared.failover.steps import Steps

    return services.get(
        "failover",
        lambda topology: Steps(
            topology, autoscale.service().gateway, snapshots.service().client, autoscale.service(), snapshots.service()
        ),
    )


@bp.orchestration_trigger(context_name="context")
def failover_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Planned, unplanned or drill: see shared/failover/orchestrator.py."""
    from shared.failover.orchestrator import failover

    return (yield from failover(context))


def _activity(name: str) -> None:
    def run(request: dict) -> Any:  # type: ignore[type-arg]  # the worker binds plain (unparameterised) types only
        return getattr(steps(), name)(request)

    run.__name__ = f"failover_{name}"
    bp.function_name(f"failover_{name}")(bp.activity_trigger(input_name="request")(run))


for _name in ACTIVITIES:
    _activity(_name)


# ----------------------------------------------------------------------------------------------- HTTP


def _roles(req: func.HttpRequest) -> set[str] | None:
    """The caller's app roles from the platform's principal header; None when there is no signed-in caller."""
    from shared import settings

    if not settings.flag(settings.AUTH_ENABLED):
        return None
    principal = _principal(req)
    if principal is None:
        return None
    role_type = principal.get("role_typ", "roles")
    return {str(c.get("val")) for c in principal.get("claims", []) if isinstance(c, dict) and c.get("typ") in (role_type, "roles")}


def _principal(req: func.HttpRequest) -> dict[str, Any] | None:
    header = req.headers.get("x-ms-client-principal")
    if not header or len(header) > 16 * 1024:
        return None
    try:
        principal = json.loads(base64.b64decode(header, validate=True))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(principal, dict) or not isinstance(principal.get("claims", []), list):
        return None
    return principal


def _caller(req: func.HttpRequest) -> tuple[str, str]:
    """(object id, display name) of the signed-in caller, as the platform put them on the request."""
    principal = _principal(req) or {}
    name = next(
        (str(c.get("val")) for c in principal.get("claims", []) if isinstance(c, dict) and c.get("typ") == principal.get("name_typ")),
        "",
    )
    return req.headers.get("x-ms-client-principal-id", "")[:64], name[:256]


def _denied(req: func.HttpRequest, role: str) -> func.HttpResponse | None:
    from shared import settings

    if not settings.flag(settings.AUTH_ENABLED):
        return problem(403, "Authentication is off", "App Service authentication must be enabled for this call")
    roles = _roles(req)
    if roles is None:
        return problem(401, "Not signed in", "sign in with Microsoft Entra ID")
    if role not in roles:
        return problem(403, "Missing role", f"this call needs the app role {role}")
    return None


def _links(req: func.HttpRequest, instance: str) -> dict[str, str]:
    """Tandem's own routes for an instance: no Durable management URL, no key (callers send their own)."""
    parts = urlsplit(req.url)
    base = f"{parts.scheme}://{parts.netloc}/api/failover/{instance}"
    return {"status": base, **{action: f"{base}/{action}" for action in ("cancel", "resume", "approve", "reject")}}


def _known(req: func.HttpRequest) -> str | None:
    """The route's instance id when it is one Tandem starts (a pairing of the topology); None otherwise."""
    from shared.config.loader import get_topology
    from shared.failover import proposals

    instance = req.route_params.get("instance", "")
    return instance if instance in proposals.instance_ids(get_topology()) else None


def _unknown(req: func.HttpRequest) -> func.HttpResponse:
    return problem(404, "Unknown instance", "failover instances are named failover-<region>-<region> after a pairing")


def _status_body(req: func.HttpRequest, status: Any) -> dict[str, Any]:
    return {
        "instance": status.instance_id,
        "runtime_status": getattr(status.runtime_status, "value", None),
        "custom_status": status.custom_status,
        "output": status.output,
        "created": str(status.created_time),
        "last_updated": str(status.last_updated_time),
        "links": _links(req, status.instance_id),
    }


def _running(status: Any) -> bool:
    return status is not None and status.runtime_status in (
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.Pending,
    )


@bp.route(route="failover", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a failover: {source, target, mode: planned|unplanned|drill|failback, reason}; a duplicate returns the
    running one (200), a new one is 202. Either way the body has Tandem's own links, never Durable's."""
    from shared import payloads
    from shared.config.loader import get_topology
    from shared.errors import DependencyError, InputError
    from shared.failover import proposals
    from shared.failover.steps import pairing_of
    from shared.state.lease import Lease

    denied = _denied(req, OPERATOR)
    if denied is not None:
        return denied
    body = body_of(req, payloads.FailoverRequest)
    if isinstance(body, func.HttpResponse):
        return body
    try:
        pairing_of(get_topology(), body.source, body.target)
    except InputError as exc:
        return problem(400, "Unknown region pair", str(exc))
    caller_id, caller = _caller(req)
    request = {**body.model_dump(), "requested_by": caller, "requested_by_id": caller_id}
    instance = proposals.pair_id(body.source, body.target)
    try:
        lease = await asyncio.to_thread(Lease, instance)  # waiting for it must not stall the worker's loop
    except DependencyError as exc:
        return problem(503, "Could not take the pair's lock", str(exc))
    try:
        running = _running(await client.get_status(instance))
        if not running:
            await client.start_new("failover_orchestrator", instance, request)
            log_event(log, "failover.started", instance=instance, mode=body.mode, by=caller)
    finally:
        lease.release()  # one quick call; not in the thread pool, which waiting callers may fill
    answer = {"instance": instance, "running": running, "links": _links(req, instance)}
    return func.HttpResponse(
        json.dumps(answer),
        status_code=200 if running else 202,
        mimetype="application/json",
        headers={"Location": _links(req, instance)["status"]},
    )


@bp.route(route="failover/{instance}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The instance's state and its step list with times."""
    instance = _known(req)
    if instance is None:
        return _unknown(req)
    status = await client.get_status(instance)
    if status is None or status.instance_id is None:
        return problem(404, "Unknown instance", f"{instance} has not run")
    return func.HttpResponse(json.dumps(_status_body(req, status), default=str), mimetype="application/json")


@bp.route(route="failover/{instance}/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """cancel or resume (operator: resume retries a step parked in `needs operator` now), approve or reject
    (approver, who must not be the operator who asked for the failover)."""
    action = req.route_params.get("action", "")
    events = {
        "cancel": ("Cancel", OPERATOR),
        "resume": ("Resume", OPERATOR),
        "approve": ("Approve", APPROVER),
        "reject": ("Reject", APPROVER),
    }
    if action not in events:
        return problem(404, "Unknown action", "use cancel, resume, approve or reject")
    instance = _known(req)
    if instance is None:
        return _unknown(req)
    event, role = events[action]
    denied = _denied(req, role)
    if denied is not None:
        return denied
    status = await client.get_status(instance, show_input=True)
    if not _running(status):
        return problem(409, "Not running", f"{instance} is not running")
    caller_id, caller = _caller(req)
    if action == "approve" and _same_person(_request_of(status), caller_id, caller):
        log_event(log, "failover.self_approval_refused", level=30, instance=instance, by=caller)
        return problem(403, "Self-approval", "the operator who asked for a failover cannot approve it")
    await client.raise_event(instance, event, {"by": caller, "by_id": caller_id})
    log_event(log, f"failover.{action}", instance=instance, by=caller)
    return func.HttpResponse(
        json.dumps({"instance": instance, "sent": event, "links": _links(req, instance)}), status_code=202, mimetype="application/json"
    )


def _request_of(status: Any) -> dict[str, Any]:
    """The orchestration input of an instance's status (the client gives it as JSON text or a value)."""
    request = status.input_ if status is not None else None
    request = json.loads(request) if isinstance(request, str) else request
    return request if isinstance(request, dict) else {}


def _same_person(request: dict[str, Any], caller_id: str, caller: str) -> bool:
    if caller_id and request.get("requested_by_id"):
        return bool(caller_id == request["requested_by_id"])
    return bool(caller) and caller == request.get("requested_by")


# ----------------------------------------------------------------------------------------------- proposals


async def propose(client: df.DurableOrchestrationClient, region: str, reason: str, ref: str) -> str:
    """Propose an unplanned failover of `region` to its pair (an alert, a Resource Health share, the ANQ watch);
    what came of it: proposed, proposed_only, duplicate, debounced or ignored (unpaired, fenced)."""
    from shared import clock, events
    from shared.config.loader import get_topology
    from shared.failover import proposals
    from shared.state import holds

    topology = get_topology()
    target = proposals.target_of(topology, region)
    if target is None:
        log_event(log, "failover.proposal_ignored", ref=ref, region=region, reason=f"{region} has no pair")
        return "ignored"
    held = (await asyncio.to_thread(holds.read)).get(region)
    if held is not None and held.kind == "fenced":  # failed over already: it waits for a failback
        log_event(log, "failover.proposal_ignored", ref=ref, region=region, reason=f"{region} is fenced by {held.instance}")
        return "ignored"
    instance = proposals.pair_id(region, target)
    existing = await client.get_status(instance)
    if _running(existing):
        log_event(log, "failover.proposal_duplicate", ref=ref, instance=instance, reason=reason)
        return "duplicate"
    if proposals.debounced(topology, existing.last_updated_time if existing else None, clock.now()):
        log_event(log, "failover.proposal_debounced", ref=ref, instance=instance)
        return "debounced"
    request = proposals.proposal_request(region, reason, target)
    if topology.policies.failover.propose_only:
        log_event(log, "failover.proposed_only", ref=ref, instance=instance, reason=reason)
        await asyncio.to_thread(events.publish, "Tandem.Failover.Proposed", instance, {**request, "started": False})
        return "proposed_only"
    await client.start_new("failover_orchestrator", instance, request)
    log_event(log, "failover.proposed", ref=ref, instance=instance, reason=reason)
    return "proposed"


async def withdraw(client: df.DurableOrchestrationClient, region: str, reason: str, ref: str) -> str:
    """The alert behind a proposal resolved: cancel the proposed failover while it still waits for approval."""
    from shared.config.loader import get_topology
    from shared.failover import proposals

    target = proposals.target_of(get_topology(), region)
    if target is None:
        return "ignored"
    instance = proposals.pair_id(region, target)
    status = await client.get_status(instance, show_input=True)
    request = _request_of(status)
    waiting = _running(status) and (status.custom_status or {}).get("state") == "awaiting approval"
    if not waiting or request.get("requested_by") != "alert" or request.get("source") != region:
        log_event(log, "failover.withdraw_ignored", ref=ref, instance=instance, reason="nothing proposed awaits approval")
        return "ignored"
    await client.raise_event(instance, "Cancel", {"by": "alert resolved", "reason": reason})
    log_event(log, "failover.proposal_withdrawn", ref=ref, instance=instance, reason=reason)
    return "withdrawn"


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def failover_events(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Resource Health for session host VMs (HealthResources): more than the policy's share of a region
    unplanned-unavailable proposes an unplanned failover, which waits for approval (or proceeds by policy)."""
    from shared import clock
    from shared.config.loader import get_topology
    from shared.errors import InputError
    from shared.failover import proposals, signals

    topology = get_topology()
    event_type = str(getattr(event, "event_type", None) or getattr(event, "type", ""))
    try:
        signal = signals.parse(topology, event_type, getattr(event, "topic", None) or getattr(event, "source", None), event.get_json())
    except (InputError, ValueError, RecursionError) as exc:  # malformed: logged, never retried
        log_event(log, "failover.event_rejected", level=30, id=event.id, type=event_type[:200], reason=str(exc)[:300])
        return
    outcome = (
        signal
        if isinstance(signal, signals.Ignored)
        else await asyncio.to_thread(proposals.vm_share, topology, steps().gateway, signal, clock.now())
    )
    if isinstance(outcome, signals.Ignored):
        log_event(log, "failover.event_ignored", id=event.id, type=event_type, reason=outcome.why)
        return
    await propose(client, outcome.region, outcome.reason, event.id)


@bp.timer_trigger(arg_name="timer", schedule="%ANQ_WATCH_SCHEDULE%", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def anq_watch(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Probe each ANQ cluster from Tandem's region; propose for one that has not answered for `watch_window`."""
    from functions import snapshots
    from shared import clock
    from shared.config.loader import get_topology
    from shared.failover import watch

    found = await asyncio.to_thread(watch.probe_all, get_topology(), snapshots.service().client, clock.now())
    for proposal in found:
        await propose(client, proposal.region, proposal.reason, "anq-watch")
