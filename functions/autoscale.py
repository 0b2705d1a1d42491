"""Autoscale triggers: a timer over every pool, Event Grid signals that act at once, the sweep's orchestration and
its partitions, and an HTTP what-if. Logon-rate alerts arrive through functions/alerts.py."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from functions import grid, services
from functions.http import answer, guarded

bp = df.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%AUTOSCALE_SCHEDULE%", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def autoscale_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Evaluate every pool of the topology: in this process when the estate is one partition, else as the singleton
    sweep orchestration (not started again while one runs)."""
    from shared.autoscale import sweep

    await sweep.tick(client, services.autoscaler(), past_due=timer.past_due)


@bp.orchestration_trigger(context_name="context")
def autoscale_sweep(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Every partition of the estate at once: see shared/autoscale/sweep.py."""
    from shared.autoscale import sweep

    return (yield from sweep.orchestrate(context))


@bp.activity_trigger(input_name="request")
def autoscale_partition(request: dict) -> dict:  # type: ignore[type-arg]  # the worker binds plain types only
    """One partition of a sweep: its pools evaluated as the timer would."""
    from shared.autoscale import sweep

    return sweep.partition(services.autoscaler(), request)


@bp.event_grid_trigger(arg_name="event")
def autoscale_events(event: func.EventGridEvent) -> None:
    """Tandem.Failover.Started and session host health (Event Grid): act now, not at the next tick."""
    from shared.autoscale import react

    react.on_event(services.autoscaler(), event.id, grid.kind(event), event.get_json)


@bp.route(route="autoscale/whatif", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@guarded
def autoscale_whatif(req: func.HttpRequest) -> func.HttpResponse:
    """The decision for one pool now, without acting: ?pool=NAME[&policy=native|legacy|tandem]."""
    from shared.autoscale.planner import POLICIES
    from shared.errors import InputError

    pool, policy = req.params.get("pool", "").strip(), req.params.get("policy") or None
    if not pool:
        raise InputError("give the host pool as ?pool=NAME", title="Missing pool")
    if policy is not None and policy not in POLICIES:
        raise InputError(f"policy must be one of {', '.join(POLICIES)}", title="Unknown policy")
    target, decision = services.autoscaler().what_if(pool, policy)
    return answer({"pool": target.pool.name, "region": target.region.name, **decision.to_json()})
