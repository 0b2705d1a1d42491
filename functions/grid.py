"""Event Grid helpers shared by the blueprints: an event's type and topic, whichever schema delivered it."""

from __future__ import annotations

import azure.functions as func


def kind(event: func.EventGridEvent) -> str:
    """The event's type: `eventType` (Event Grid schema) or `type` (CloudEvents)."""
    return str(getattr(event, "event_type", None) or getattr(event, "type", ""))


def topic(event: func.EventGridEvent) -> str | None:
    """The event's topic: `topic` (Event Grid schema) or `source` (CloudEvents)."""
    value = getattr(event, "topic", None) or getattr(event, "source", None)
    return str(value) if value else None
