"""Tandem's own CloudEvents, published to an Event Grid topic (TANDEM_EVENTS_ENDPOINT).

Publishing is best effort: a failure is logged (event `events.publish_failed`) and never undoes the action
that the event reports.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared import settings
from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    from azure.eventgrid import EventGridPublisherClient

log = get_logger("events")
PREFIX = "Tandem."
_client: tuple[str, EventGridPublisherClient] | None = None
_lock = threading.Lock()


def _publisher(endpoint: str) -> EventGridPublisherClient:
    global _client
    with _lock:
        if _client is None or _client[0] != endpoint:
            from azure.core.credentials import AzureKeyCredential
            from azure.eventgrid import EventGridPublisherClient

            key = settings.get(settings.EVENTS_KEY)
            if key:
                credential: Any = AzureKeyCredential(key)
            else:
                from shared.azure.identity import default_credential

                credential = default_credential()
            _client = (endpoint, EventGridPublisherClient(endpoint, credential))
        return _client[1]


def publish(event_type: str, subject: str, data: dict[str, Any], *, source: str = "/tandem") -> bool:
    """Publish one CloudEvent `Tandem.<...>`; True when the topic accepted it (False when none is configured)."""
    return publish_many([(event_type, subject, data)], source=source)


def publish_many(events: list[tuple[str, str, dict[str, Any]]], *, source: str = "/tandem") -> bool:
    """Publish CloudEvents (type, subject, data) in one request; True when the topic accepted them."""
    if not events:
        return True
    for event_type, _, _ in events:
        if not event_type.startswith(PREFIX):
            raise ValueError(f"Tandem event types start with {PREFIX!r}")
    endpoint = settings.get(settings.EVENTS_ENDPOINT)
    if not endpoint:
        return False
    from azure.core.messaging import CloudEvent

    try:
        _publisher(endpoint).send([CloudEvent(source=source, type=t, subject=s, data=d) for t, s, d in events])
    except Exception as exc:  # the topic being down must not undo a scale action
        log_event(log, "events.publish_failed", level=30, count=len(events), error=type(exc).__name__)
        return False
    return True
