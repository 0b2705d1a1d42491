"""Failover: the orchestration, its activities, and the HTTP routes operators and approvers use.

Start and cancel need the app role Tandem.Failover.Operator, approve and reject Tandem.Failover.Approver,
read from the principal App Service authentication puts on the request. Without platform authentication
(WEBSITE_AUTH_ENABLED) that header could be forged by anyone, so role-gated calls are refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from functions import services
from functions.http import problem
from shared.telemetry import get_logger, log_event

bp = df.Blueprint()
log = get_logger("failover")
OPERATOR, APPROVER = "Tandem.Failover.Operator", "Tandem.Failover.Approver"
ACTIVITIES = ("preflight", "warm", "drain", "undrain", "logoff", "handles", "move_assignments", "fence", "replicate",
              "replicated", "snapshot_target", "make_writable", "writable", "verify", "audit", "relationships",
              "reverse", "reconnect", "reconnected", "hold", "release", "try_fence", "unfence")


def steps() -> Any:
    """The process's failover steps, sharing the autoscale gateway and the snapshot clients."""
    from functions import autoscale, snapshots
    from shared.failover.steps import Steps

    return services.get("failover", lambda topology: Steps(topology, autoscale.service().gateway,
                                                           snapshots.service().client, autoscale.service(),
                                                           snapshots.service()))


@bp.orchestration_trigger(context_name="context")
def failover_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Planned, unplanned or drill: see shared/failover/orchestrator.py."""
    from shared.failover.orchestrator import failover

    return (yield from failover(context))


def _activity(name: str) -> None:
    def run(request: dict) -> Any:  # the worker takes plain (unparameterised) types only
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
    header = req.headers.get("x-ms-client-principal")
    if not header:
        return None
    try:
        principal = json.loads(base64.b64decode(header))
        role_type = principal.get("role_typ", "roles")
        return {c["val"] for c in principal.get("claims", []) if c.get("typ") in (role_type, "roles")}
    except (ValueError, KeyError, TypeError):
        return None


def _caller(req: func.HttpRequest) -> str:
    try:
        principal = json.loads(base64.b64decode(req.headers.get("x-ms-client-principal", "")))
        return next((c["val"] for c in principal.get("claims", []) if c.get("typ") == principal.get("name_typ")), "")
    except (ValueError, KeyError, TypeError):
        return ""


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


def _status_body(status: Any) -> dict[str, Any]:
    return {"instance": status.instance_id, "runtime_status": getattr(status.runtime_status, "value", None),
            "custom_status": status.custom_status, "output": status.output,
            "created": str(status.created_time), "last_updated": str(status.last_updated_time)}


@bp.route(route="failover", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def failover_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a failover: {source, target, mode: planned|unplanned|drill, reason}. A duplicate returns the running one."""
    from shared.config.loader import get_topology
    from shared.errors import DependencyError, InputError
    from shared.failover import proposals
    from shared.failover.orchestrator import MODES
    from shared.failover.steps import pairing_of
    from shared.state.lease import Lease

    denied = _denied(req, OPERATOR)
    if denied is not None:
        return denied
    try:
        body = req.get_json()
    except ValueError:
        return problem(400, "Body is not JSON", "send {source, target, mode, reason} as JSON")
    if not isinstance(body, dict):
        return problem(400, "Body is not an object", "send {source, target, mode, reason} as a JSON object")
    unknown = sorted(set(body) - {"source", "target", "mode", "reason"})
    missing = [k for k in ("source", "target", "mode", "reason") if not isinstance(body.get(k), str) or not body[k]]
    if unknown or missing:
        return problem(400, "Invalid body", f"missing or not a string: {missing}; unknown: {unknown}")
    if body["mode"] not in MODES:
        return problem(400, "Invalid mode", f"mode must be one of {', '.join(MODES)}")
    topology = get_topology()
    try:
        pairing_of(topology, body["source"], body["target"])
    except InputError as exc:
        return problem(400, "Unknown region pair", str(exc))
    request = {**body, "requested_by": _caller(req), "policy": proposals.policy(topology)}
    instance = proposals.pair_id(body["source"], body["target"])
    try:
        lease = await asyncio.to_thread(Lease, instance)  # waiting for it must not stall the worker's loop
    except DependencyError as exc:
        return problem(503, "Could not take the pair's lock", str(exc))
    try:
        existing = await client.get_status(instance)
        running = existing is not None and existing.runtime_status in (
            df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending)
        if not running:
            await client.start_new("failover_orchestrator", instance, request)
            log_event(log, "failover.started", instance=instance, mode=body["mode"], by=request["requested_by"])
    finally:
        lease.release()  # one quick call; not in the thread pool, which waiting callers may fill
    response = client.create_check_status_response(req, instance)
    if running:
        response = func.HttpResponse(response.get_body(), status_code=200, mimetype="application/json")
    return response


@bp.route(route="failover/{instance}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def failover_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The instance's state and its step list with times."""
    status = await client.get_status(req.route_params["instance"])
    if status is None or status.instance_id is None:
        return problem(404, "Unknown instance", req.route_params["instance"])
    return func.HttpResponse(json.dumps(_status_body(status), default=str), mimetype="application/json")


@bp.route(route="failover/{instance}/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def failover_decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """cancel or resume (operator: resume retries a step parked in `needs operator` now), approve or reject
    (approver)."""
    action = req.route_params["action"]
    events = {"cancel": ("Cancel", OPERATOR), "resume": ("Resume", OPERATOR), "approve": ("Approve", APPROVER),
              "reject": ("Reject", APPROVER)}
    if action not in events:
        return problem(404, "Unknown action", "use cancel, resume, approve or reject")
    event, role = events[action]
    denied = _denied(req, role)
    if denied is not None:
        return denied
    status = await client.get_status(req.route_params["instance"])
    if status is None or status.runtime_status not in (df.OrchestrationRuntimeStatus.Running,
                                                       df.OrchestrationRuntimeStatus.Pending):
        return problem(409, "Not running", f"{req.route_params['instance']} is not running")
    await client.raise_event(req.route_params["instance"], event, {"by": _caller(req)})
    log_event(log, f"failover.{action}", instance=req.route_params["instance"], by=_caller(req))
    return func.HttpResponse(json.dumps({"instance": req.route_params["instance"], "sent": event}), status_code=202,
                             mimetype="application/json")


# ----------------------------------------------------------------------------------------------- proposals


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def failover_events(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Resource Health and Azure Monitor alerts propose an unplanned failover, which waits for approval
    (or proceeds within the policy's RPO); duplicates and flapping start nothing more."""
    from shared import clock
    from shared.config.loader import get_topology
    from shared.errors import InputError
    from shared.failover import proposals, signals

    topology = get_topology()
    event_type = str(getattr(event, "event_type", None) or getattr(event, "type", ""))
    try:
        signal = signals.parse(topology, event_type, getattr(event, "topic", None) or getattr(event, "source", None),
                               event.get_json())
    except (InputError, ValueError) as exc:
        log_event(log, "failover.event_rejected", level=30, id=event.id, type=event_type, reason=str(exc))
        return
    if isinstance(signal, signals.VmHealth):
        signal = await asyncio.to_thread(proposals.vm_share, topology, steps().gateway, signal)
    target = proposals.target_of(topology, signal.region) if isinstance(signal, signals.Proposal) else None
    if isinstance(signal, signals.Ignored) or target is None:
        why = signal.why if isinstance(signal, signals.Ignored) else f"{signal.region} has no pair"
        log_event(log, "failover.event_ignored", id=event.id, type=event_type, reason=why)
        return
    instance = proposals.pair_id(signal.region, target)
    existing = await client.get_status(instance)
    if existing is not None and existing.runtime_status in (df.OrchestrationRuntimeStatus.Running,
                                                           df.OrchestrationRuntimeStatus.Pending):
        log_event(log, "failover.proposal_duplicate", id=event.id, instance=instance, reason=signal.reason)
        return
    if proposals.debounced(topology, existing.last_updated_time if existing else None, clock.now()):
        log_event(log, "failover.proposal_debounced", id=event.id, instance=instance)
        return
    await client.start_new("failover_orchestrator", instance, proposals.proposal_request(topology, signal, target))
    log_event(log, "failover.proposed", id=event.id, instance=instance, reason=signal.reason)
