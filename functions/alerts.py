"""Azure Monitor alerts: `POST /api/alerts`, the action group's Azure Function receiver (common alert schema).

Routing lives in shared/alerts.py. Answers: 202 when the alert was acted on, 200 with the reason when it was
ignored or is a repeat (action groups retry), 400 for anything that is not a common-schema alert, 503 when a
dependency failed (the action group retries that).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from functions.http import body_of, guarded, problem
from shared.telemetry import get_logger, log_event

bp = df.Blueprint()
log = get_logger("alerts")


def _answer(code: int, **body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=code, mimetype="application/json")


@bp.route(route="alerts", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def alerts_webhook(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One alert from an action group: deduplicated, routed to autoscale or failover, answered."""
    from functions import autoscale, failover
    from shared import alerts, payloads
    from shared.config.loader import get_topology
    from shared.errors import DependencyError, InputError

    alert = body_of(req, payloads.CommonAlert, max_bytes=payloads.MAX_ALERT_BYTES)
    if isinstance(alert, func.HttpResponse):
        return alert
    essentials = alert.essentials
    try:
        if await asyncio.to_thread(alerts.seen, alert):
            log_event(log, "alerts.repeat", alert=essentials.alertId[:200], condition=essentials.monitorCondition)
            return _answer(200, status="repeat", reason="this alert's delivery was handled already")
        route = alerts.route(get_topology(), alert)
        if isinstance(route, alerts.LogonRate):
            outcome = await asyncio.to_thread(autoscale.on_logon_rate, route.pool_id, route.per_minute)
        elif isinstance(route, alerts.Propose):
            outcome = await failover.propose(client, route.region, route.reason, essentials.alertId[:200])
        elif isinstance(route, alerts.Withdraw):
            outcome = await failover.withdraw(client, route.region, route.reason, essentials.alertId[:200])
        else:
            outcome = f"ignored: {route.why}"
        await asyncio.to_thread(alerts.record, alert, outcome)
    except InputError as exc:
        return problem(400, "Invalid alert", str(exc))
    except DependencyError as exc:
        return problem(503, "A dependency did not answer", str(exc)[:300])
    log_event(
        log,
        "alerts.handled",
        alert=essentials.alertId[:200],
        rule=essentials.alertRule[:200],
        condition=essentials.monitorCondition,
        outcome=outcome,
    )
    if outcome.startswith("ignored"):
        return _answer(200, status="ignored", reason=outcome.removeprefix("ignored").lstrip(": ") or "nothing to do")
    return _answer(202, status="accepted", outcome=outcome)
