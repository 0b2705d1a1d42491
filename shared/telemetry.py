"""Structured logging: one JSON line per decision or action, with a stable event name.

OpenTelemetry export to Application Insights is switched on only when
APPLICATIONINSIGHTS_CONNECTION_STRING is set; the exporter is imported lazily so cold start stays small.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from shared import settings

LOGGER_NAME = "tandem"
_configured = threading.Lock()
_state = {"done": False}
# Keys that must never reach a log line, whatever a caller passes.
_SECRET_KEYS = frozenset({"password", "secret", "token", "access_token", "key", "authorization", "code"})


def configure(env: dict[str, str] | None = None) -> None:
    """Set up logging once per process: level from TANDEM_LOG_LEVEL, Azure Monitor export if configured."""
    with _configured:
        if _state["done"]:
            return
        _state["done"] = True
        logger = logging.getLogger(LOGGER_NAME)
        logger.setLevel(settings.get(settings.LOG_LEVEL, env=env) or "INFO")
        connection = settings.get(settings.APPINSIGHTS, env=env)
        if connection:
            from azure.monitor.opentelemetry import configure_azure_monitor  # lazy: heavy import

            options: dict[str, Any] = {}
            if "authorization=aad" in (settings.get(settings.APPINSIGHTS_AUTH, env=env) or "").lower():
                from shared.azure.identity import default_credential  # ingestion with local auth off takes Entra ID only

                options["credential"] = default_credential()
            configure_azure_monitor(connection_string=connection, logger_name=LOGGER_NAME, **options)


def get_logger(name: str) -> logging.Logger:
    """A child of the 'tandem' logger for one module; the first call configures logging for the process."""
    configure()
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k.lower() in _SECRET_KEYS else v) for k, v in fields.items() if v is not None}


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured line: `event` is a stable name such as 'autoscale.decision'."""
    payload = {"event": event, **_clean(fields)}
    logger.log(level, json.dumps(payload, default=str, sort_keys=True), extra={"custom_dimensions": payload})
