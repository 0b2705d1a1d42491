"""HTTP helpers shared by the blueprints: JSON problem bodies (RFC 9457), strict bodies, and a guard that turns
any unexpected exception into a 500 problem body with a correlation id."""

from __future__ import annotations

import functools
import inspect
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from shared.telemetry import get_logger, log_event

log = get_logger("http")


def problem(status: int, title: str, detail: str, **extra: Any) -> func.HttpResponse:
    """A problem+json response; never a stack trace."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/problem+json")


def body_of(req: func.HttpRequest, model: Any, *, max_bytes: int | None = None) -> Any:
    """The request body as `model` (size-capped, depth-safe, strict), or a 400 problem response."""
    from shared import payloads
    from shared.errors import InputError

    try:
        raw = payloads.loads(req.get_body() or b"", max_bytes=max_bytes or payloads.MAX_BODY_BYTES, what="body")
        return payloads.validate(model, raw, "body")
    except InputError as exc:
        return problem(400, "Invalid body", str(exc))


def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
    """An HTTP handler (sync or async) whose unexpected exceptions become a 500 problem body with a correlation
    id; the log line names the route's path, never its query string (which may carry the function key)."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def run_async(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
            try:
                response: func.HttpResponse = await handler(req, *args, **kwargs)
            except Exception as exc:
                return _failed(req, exc)
            return response

        return run_async

    @functools.wraps(handler)
    def run(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            response: func.HttpResponse = handler(req, *args, **kwargs)
        except Exception as exc:
            return _failed(req, exc)
        return response

    return run


def _failed(req: func.HttpRequest, exc: Exception) -> func.HttpResponse:
    correlation = str(uuid.uuid4())
    log_event(
        log,
        "http.failed",
        level=40,
        correlation_id=correlation,
        method=req.method,
        path=urlsplit(req.url).path,
        error=type(exc).__name__,
    )
    return problem(500, "Internal error", f"the request failed; quote correlation id {correlation}", correlation_id=correlation)
