"""Autoscale triggers: a timer over every pool, Event Grid signals and logon-rate alerts that act at once, and an
HTTP what-if."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from functions import services
from functions.http import guarded, problem
from shared.telemetry import get_logger, log_event

bp = df.Blueprint()
log = get_logger("autoscale")


def service() -> Any:
    """The process's Autoscaler (built on first use, rebuilt when the topology setting changes)."""
    from shared.autoscale.service import Autoscaler

    return services.get("autoscale", Autoscaler)


@bp.timer_trigger(arg_name="timer", schedule="%AUTOSCALE_SCHEDULE%", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def autoscale_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Evaluate every pool of the topology: in this process when the estate is one partition, else as the singleton
    sweep orchestration (not started again while one runs)."""
    import asyncio

    from shared.autoscale import sweep

    scaler = service()
    parts = sweep.partitions(
        [(t.ref.key, t.ref.subscription, t.ref.vm_resource_groups) for t in scaler.targets.values()], sweep.partition_size()
    )
    if len(parts) <= 1:
        log_event(log, "autoscale.run", past_due=timer.past_due, **sweep.summary(await asyncio.to_thread(scaler.run)))
        return
    if sweep.running(await client.get_status(sweep.INSTANCE)):
        log_event(log, "autoscale.sweep_running", level=30, instance=sweep.INSTANCE, past_due=timer.past_due)
        return
    await client.start_new("autoscale_sweep", sweep.INSTANCE, {"partitions": parts})
    log_event(log, "autoscale.sweep_started", partitions=len(parts), pools=sum(map(len, parts)), past_due=timer.past_due)


@bp.orchestration_trigger(context_name="context")
def autoscale_sweep(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Every partition of the estate at once: see shared/autoscale/sweep.py."""
    from shared.autoscale import sweep

    return (yield from sweep.orchestrate(context))


@bp.activity_trigger(input_name="request")
def autoscale_partition(request: dict) -> dict:  # type: ignore[type-arg]  # the worker takes plain types only
    """One partition of a sweep: its pools evaluated as the timer would (keys the topology does not know are skipped)."""
    from shared.autoscale import sweep

    scaler = service()
    keys = {str(k) for k in (request or {}).get("pools") or []}
    summary = sweep.summary(scaler.run([t for key, t in scaler.targets.items() if key in keys]))
    log_event(log, "autoscale.partition", **summary)
    return summary


@bp.event_grid_trigger(arg_name="event")
def autoscale_events(event: func.EventGridEvent) -> None:
    """Tandem.Failover.Started and session host health (Event Grid): act now, not at the next tick."""
    from shared.autoscale import signals
    from shared.errors import InputError

    event_type = str(getattr(event, "event_type", None) or getattr(event, "type", ""))  # Event Grid or CloudEvents
    try:
        signal = signals.parse(event_type, event.get_json())
    except (InputError, ValueError, RecursionError) as exc:  # malformed: logged, never retried
        log_event(log, "autoscale.event_rejected", level=30, id=event.id, type=event_type[:200], reason=str(exc)[:300])
        return
    scaler = service()
    if isinstance(signal, signals.Ignored):
        log_event(log, "autoscale.event_ignored", id=event.id, type=event_type, reason=signal.why)
        return
    options: dict[str, Any] = {}
    if isinstance(signal, signals.FailoverStarted):
        chosen, options = scaler.region_targets(signal.target), {"announce": signal.sessions}
        if not chosen:
            log_event(log, "autoscale.event_rejected", level=30, id=event.id, reason=f"no pools in region {signal.target}")
            return
    elif isinstance(signal, signals.HostHealth):
        found = scaler.pool_of_vm(signal.vm_id)
        if found is None:
            log_event(log, "autoscale.event_ignored", id=event.id, reason=f"{signal.vm_id} is not a session host")
            return
        chosen = [found]
    else:  # a logon-rate alert comes through POST /api/alerts, never through Event Grid
        log_event(log, "autoscale.event_rejected", level=30, id=event.id, reason=f"{type(signal).__name__} by Event Grid")
        return
    results = scaler.run(chosen, wait_s=30, **options)  # act now; wait briefly if the timer is evaluating the pool
    log_event(
        log,
        "autoscale.event_handled",
        id=event.id,
        type=event_type,
        pools=[r.pool for r in results],
        actions=sum(len(r.applied) for r in results),
    )


def on_logon_rate(pool_id: str, per_minute: float) -> str:
    """A logon-rate alert (POST /api/alerts): evaluate the pool now with the alerted rate (0: resolved, forget it)."""
    scaler = service()
    target = next((t for t in scaler.targets.values() if _pool_id(t).lower() == pool_id.lower()), None)
    if target is None:
        return f"ignored: {pool_id} is not a host pool of the topology"
    results = scaler.run([target], wait_s=30, alert_rate=per_minute)
    failed = [r.error for r in results if r.error]  # busy too: the action group retries a 503
    if failed:
        from shared.errors import DependencyError

        raise DependencyError(f"{target.ref.key}: {failed[0]}")
    return f"autoscale {target.ref.key}: {sum(len(r.applied) for r in results)} actions at {per_minute:.1f} logons/min"


def _pool_id(target: Any) -> str:
    ref = target.ref
    return (
        f"/subscriptions/{ref.subscription}/resourceGroups/{ref.resource_group}"
        f"/providers/Microsoft.DesktopVirtualization/hostPools/{ref.name}"
    )


@bp.route(route="autoscale/whatif", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@guarded
def autoscale_whatif(req: func.HttpRequest) -> func.HttpResponse:
    """The decision for one pool now, without acting: ?pool=NAME[&policy=native|legacy|tandem]."""
    from shared.autoscale.planner import POLICIES
    from shared.errors import DependencyError, InputError

    pool = req.params.get("pool", "").strip()
    policy = req.params.get("policy") or None
    if not pool:
        return problem(400, "Missing pool", "give the host pool as ?pool=NAME")
    if policy is not None and policy not in POLICIES:
        return problem(400, "Unknown policy", f"policy must be one of {', '.join(POLICIES)}")
    try:
        target, decision = service().what_if(pool, policy)
    except InputError as exc:
        return problem(404, "Unknown pool", str(exc))
    except DependencyError as exc:
        return problem(502, "Azure did not answer", str(exc))
    body = {"pool": target.pool.name, "region": target.region.name, **decision.to_json()}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")
