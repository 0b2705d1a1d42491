"""Snapshot triggers: the schedule, the recovery-point report, and the on-demand activity failover uses."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from functions import services
from functions.http import guarded
from shared.telemetry import get_logger, log_event

bp = df.Blueprint()
log = get_logger("snapshots")


def service() -> Any:
    """The process's Snapshotter (built on first use, rebuilt when the topology setting changes)."""
    from shared.snapshots.service import Snapshotter

    return services.get("snapshots", Snapshotter)


@bp.timer_trigger(arg_name="timer", schedule="%SNAPSHOT_SCHEDULE%", run_on_startup=False, use_monitor=True)
def snapshots_timer(timer: func.TimerRequest) -> None:
    """Take the snapshot due in the current slot for every cluster and directory; alert on stale ones."""
    results = service().run()
    log_event(
        log,
        "snapshots.run",
        taken=sum(r.result == "taken" for r in results),
        skipped=sum(r.result == "skipped" for r in results),
        failed=sum(r.result == "failed" for r in results),
        stale=sum(r.stale for r in results),
        past_due=timer.past_due,
    )


@bp.route(route="snapshots", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@guarded
def snapshots_report(req: func.HttpRequest) -> func.HttpResponse:
    """Recovery points per directory with their expiry, and each cluster's snapshot capacity."""
    return func.HttpResponse(json.dumps({"clusters": service().report()}), status_code=200, mimetype="application/json")


@bp.activity_trigger(input_name="request")
def snapshot_now(request: dict) -> int:  # type: ignore[type-arg]  # the worker binds plain (unparameterised) types only
    """Take a labelled snapshot of one directory now (idempotent per label) and return its id."""
    from datetime import timedelta

    keep = request.get("keep_hours")
    return int(
        service().take_now(
            str(request["region"]), str(request["path"]), str(request["label"]), timedelta(hours=float(keep)) if keep else None
        )
    )
