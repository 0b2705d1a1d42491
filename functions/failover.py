"""Failover: the orchestration, its activities, the HTTP routes operators and approvers use, the Resource Health
trigger and the ANQ watch. The control plane behind them is shared/failover/control.py; who may do what is
shared/auth.py (start and cancel: Tandem.Failover.Operator; approve and reject: Tandem.Failover.Approver)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from functions import grid, services
from functions.http import answer, body_of, guarded

bp = df.Blueprint()
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"  # the page runs nothing and fetches nothing
ACTIVITIES = (
    "preflight", "warm", "drain", "undrain", "logoff", "handles", "move_assignments", "fence", "replicate", "replicated",
    "snapshot_target", "make_writable", "writable", "verify", "profile_check", "audit", "relationships", "reverse",
    "reconnect", "reconnected", "hold", "release", "try_fence", "unfence", "admit",
)  # fmt: skip


@bp.orchestration_trigger(context_name="context")
def failover_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Planned, unplanned, drill or failback: see shared/failover/orchestrator.py."""
    from shared.failover.orchestrator import failover

    return (yield from failover(context))


def _activity(name: str) -> None:
    def run(request: dict) -> Any:  # type: ignore[type-arg]  # the worker binds plain (unparameterised) types only
        return getattr(services.steps(), name)(request)

    run.__name__ = f"failover_{name}"
    bp.function_name(f"failover_{name}")(bp.activity_trigger(input_name="request")(run))


for _name in ACTIVITIES:
    _activity(_name)


# ----------------------------------------------------------------------------------------------- HTTP


def _links(req: func.HttpRequest, instance: str) -> dict[str, str]:
    """Tandem's own routes for an instance: no Durable management URL, no key (callers send their own)."""
    parts = urlsplit(req.url)
    base = f"{parts.scheme}://{parts.netloc}/api/failover/{instance}"
    return {"status": base, **{action: f"{base}/{action}" for action in ("cancel", "resume", "approve", "reject")}}


@bp.route(route="failover", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a failover: {source, target, mode: planned|unplanned|drill|failback, reason}; a duplicate returns the
    running one (200), a new one is 202. Either way the body has Tandem's own links, never Durable's."""
    from shared import auth, payloads
    from shared.failover import control

    who = auth.authorize(req.headers, control.OPERATOR)
    started = await control.start(client, body_of(req, payloads.FailoverRequest), who)
    links = _links(req, started.instance)
    body = {"instance": started.instance, "running": started.running, "links": links}
    return answer(body, 200 if started.running else 202, Location=links["status"])


@bp.route(route="failover/{instance}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The instance's state and its step list with times."""
    from shared.failover import control

    found = await control.status(client, req.route_params.get("instance", ""))
    return answer({
        "instance": found.instance_id, "runtime_status": getattr(found.runtime_status, "value", None),
        "custom_status": found.custom_status, "output": found.output, "created": str(found.created_time),
        "last_updated": str(found.last_updated_time), "links": _links(req, found.instance_id),
    })  # fmt: skip


@bp.route(route="failover/{instance}/report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_report(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The evidence report of one drill or failover: a self-contained HTML page (inline SVG, no script) to file."""
    from shared.failover import control

    page = await control.report(client, req.route_params.get("instance", ""))
    return func.HttpResponse(page, mimetype="text/html", headers={"Content-Security-Policy": REPORT_CSP})


@bp.route(route="failover/{instance}/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def failover_decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """cancel or resume (operator: resume retries a step parked in `needs operator` now), approve or reject
    (approver, who must not be the operator who asked for the failover)."""
    from shared.failover import control

    instance = req.route_params.get("instance", "")
    sent = await control.decide(client, instance, req.route_params.get("action", ""), req.headers)
    return answer({"instance": instance, "sent": sent, "links": _links(req, instance)}, 202)


# ----------------------------------------------------------------------------------------------- proposals


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def failover_events(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Resource Health for session host VMs (HealthResources): more than the policy's share of a region
    unplanned-unavailable proposes an unplanned failover, which waits for approval (or proceeds by policy)."""
    from shared.failover import control

    await control.on_health_event(client, services.steps().gateway, event.id, grid.kind(event), grid.topic(event),
                                  event.get_json)  # fmt: skip


@bp.timer_trigger(arg_name="timer", schedule="%ANQ_WATCH_SCHEDULE%", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def anq_watch(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Probe each ANQ cluster from Tandem's region; propose for one that has not answered for `watch_window`."""
    from shared.failover import control

    await control.watch(client, services.snapshotter().client)
