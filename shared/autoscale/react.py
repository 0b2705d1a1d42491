"""Autoscale out of turn: what an Event Grid signal or a logon-rate alert asks of a pool now, not at the next tick.

- `Tandem.Failover.Started`: the target region's pools take the source's users (announced to the forecast).
- Resource Health for a session host VM: its pool is evaluated now, to replace lost capacity.
- A logon-rate alert (through `POST /api/alerts`): the pool is evaluated with the alerted rate (0: resolved).
Malformed or unknown events are logged and rejected, never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.telemetry import get_logger, log_event

log = get_logger("autoscale")


def on_event(scaler: Any, event_id: str, event_type: str, data: Callable[[], Any]) -> str:
    """One Event Grid event for `scaler` (the Autoscaler); what came of it: handled, ignored or rejected."""
    from shared.autoscale import signals
    from shared.errors import InputError

    try:
        signal = signals.parse(event_type, data())
    except (InputError, ValueError, RecursionError) as exc:
        log_event(log, "autoscale.event_rejected", level=30, id=event_id, type=event_type[:200], reason=str(exc)[:300])
        return "rejected"
    if isinstance(signal, signals.Ignored):
        log_event(log, "autoscale.event_ignored", id=event_id, type=event_type, reason=signal.why)
        return "ignored"
    options: dict[str, Any] = {}
    if isinstance(signal, signals.FailoverStarted):
        chosen, options = scaler.region_targets(signal.target), {"announce": signal.sessions}
        if not chosen:
            log_event(log, "autoscale.event_rejected", level=30, id=event_id, reason=f"no pools in region {signal.target}")
            return "rejected"
    elif isinstance(signal, signals.HostHealth):
        found = scaler.pool_of_vm(signal.vm_id)
        if found is None:
            log_event(log, "autoscale.event_ignored", id=event_id, reason=f"{signal.vm_id} is not a session host")
            return "ignored"
        chosen = [found]
    else:  # a logon-rate alert comes through POST /api/alerts, never through Event Grid
        log_event(log, "autoscale.event_rejected", level=30, id=event_id, reason=f"{type(signal).__name__} by Event Grid")
        return "rejected"
    results = scaler.run(chosen, wait_s=30, **options)  # act now; wait briefly if the timer is evaluating the pool
    log_event(log, "autoscale.event_handled", id=event_id, type=event_type, pools=[r.pool for r in results],
              actions=sum(len(r.applied) for r in results))  # fmt: skip
    return "handled"


def on_logon_rate(scaler: Any, pool_id: str, per_minute: float) -> str:
    """Evaluate the pool an alert names now with the alerted rate (0: resolved, forget it); what came of it. A pool
    that could not be evaluated (busy too) is a DependencyError: the action group retries a 503."""
    from shared.errors import DependencyError

    target = next((t for t in scaler.targets.values() if t.ref.arm_id.lower() == pool_id.lower()), None)
    if target is None:
        return f"ignored: {pool_id} is not a host pool of the topology"
    results = scaler.run([target], wait_s=30, alert_rate=per_minute)
    failed = [r.error for r in results if r.error]
    if failed:
        raise DependencyError(f"{target.ref.key}: {failed[0]}")
    return f"autoscale {target.ref.key}: {sum(len(r.applied) for r in results)} actions at {per_minute:.1f} logons/min"
