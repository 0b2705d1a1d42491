"""Snapshot triggers: the schedule, the recovery-point report, and the on-demand activity failover uses."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

from functions import services
from functions.http import answer, guarded
from shared.telemetry import get_logger, log_event

bp = df.Blueprint()
log = get_logger("snapshots")


@bp.timer_trigger(arg_name="timer", schedule="%SNAPSHOT_SCHEDULE%", run_on_startup=False, use_monitor=True)
def snapshots_timer(timer: func.TimerRequest) -> None:
    """Take the snapshot due in the current slot for every cluster and directory; alert on stale ones."""
    from shared.snapshots.service import summary

    log_event(log, "snapshots.run", past_due=timer.past_due, **summary(services.snapshotter().run()))


@bp.route(route="snapshots", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@guarded
def snapshots_report(req: func.HttpRequest) -> func.HttpResponse:
    """Recovery points per directory with their expiry, and each cluster's snapshot capacity."""
    return answer({"clusters": services.snapshotter().report()})


@bp.activity_trigger(input_name="request")
def snapshot_now(request: dict) -> int:  # type: ignore[type-arg]  # the worker binds plain (unparameterised) types only
    """Take a labelled snapshot of one directory now (idempotent per label) and return its id."""
    keep = request.get("keep_hours")
    made = services.snapshotter().take_now(str(request["region"]), str(request["path"]), str(request["label"]),
                                           timedelta(hours=float(keep)) if keep else None)  # fmt: skip
    return int(made)
