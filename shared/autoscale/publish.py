"""What autoscale tells others: a log line and a CloudEvent per action applied, and the alert when it stood still because the
region holds could not be read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.autoscale.executor import Applied
from shared.autoscale.planner import Decision
from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    from shared.autoscale.evaluate import Target

log = get_logger("autoscale")


def holds_unreadable(chosen: list[Target], error: str) -> None:
    """The alert: autoscale stood still in these regions because it could not tell whether they are held."""
    from shared import events

    regions = sorted({t.region.name for t in chosen})
    log_event(log, "autoscale.holds_unreadable", level=40, regions=regions, error=error)
    events.publish("Tandem.Autoscale.HoldsUnreadable", "holds", {"regions": regions, "error": error[:300]})


EVENT_TYPES = {
    "start": "Tandem.Autoscale.HostStarted",
    "deallocate": "Tandem.Autoscale.HostStopped",
    "drain": "Tandem.Autoscale.HostDrained",
    "undrain": "Tandem.Autoscale.HostUndrained",
    "logoff": "Tandem.Autoscale.UsersLoggedOff",
    "message": "Tandem.Autoscale.UsersWarned",
}


def actions(target: Target, decision: Decision, applied: list[Applied]) -> None:
    """One log line per action applied (dry runs too), and a CloudEvent per action that changed something."""
    from shared import events

    for a in applied:
        log_event(log, "autoscale.action", pool=target.ref.key, region=target.region.name, host=a.step.host,
                  action=a.step.action, reason=a.step.reason, result=a.result, detail=a.detail[:300] or None,
                  target_hosts=decision.target_hosts)  # fmt: skip

    batch = [
        (
            EVENT_TYPES[a.step.action],
            f"{target.ref.key}/{a.step.host}",
            {
                "pool": target.pool.name,
                "region": target.region.name,
                "host": a.step.host,
                "action": a.step.action,
                "reason": a.step.reason,
                "result": a.result,
                "target_hosts": decision.target_hosts,
            },
        )
        for a in applied
        if a.ok and a.result != "dry_run"
    ]
    events.publish_many(batch)
