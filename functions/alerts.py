"""Azure Monitor alerts: `POST /api/alerts`, the action group's Azure Function receiver (common alert schema).

Routing lives in shared/alerts.py. Answers: 202 when the alert was acted on, 200 with the reason when it was
ignored or is a repeat (action groups retry), 400 for anything that is not a common-schema alert, 503 when a
dependency failed (the action group retries that).
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions import services
from functions.http import answer, body_of, guarded

bp = df.Blueprint()


@bp.route(route="alerts", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@guarded
async def alerts_webhook(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One alert from an action group: deduplicated, routed to autoscale or failover, answered."""
    from shared import alerts, payloads

    alert = body_of(req, payloads.CommonAlert, max_bytes=payloads.MAX_ALERT_BYTES)
    handled = await alerts.handle(client, alert, services.autoscaler)
    if handled.status == "accepted":
        return answer({"status": "accepted", "outcome": handled.detail}, 202)
    return answer({"status": handled.status, "reason": handled.detail}, 200)
