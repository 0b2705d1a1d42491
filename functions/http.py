"""HTTP helpers shared by the blueprints: JSON problem bodies (RFC 9457), strict bodies, and a guard that turns
any unexpected exception into a 500 problem body with a correlation id."""

from __future__ import annotations

import functools
import inspect
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import azure.functions as func

from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    from pydantic import BaseModel

log = get_logger("http")


def problem(status: int, title: str, detail: str, **extra: Any) -> func.HttpResponse:
    """A problem+json response; never a stack trace."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/problem+json")


def answer(body: Any, status: int = 200, **headers: str) -> func.HttpResponse:
    """A JSON response."""
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json", headers=headers or None)


def body_of[M: BaseModel](req: func.HttpRequest, model: type[M], *, max_bytes: int | None = None, title: str = "Invalid body") -> M:
    """The request body as `model` (size-capped, depth-safe, strict); InputError (a 400 `title`) otherwise."""
    from shared import payloads
    from shared.errors import InputError

    try:
        raw = payloads.loads(req.get_body() or b"", max_bytes=max_bytes or payloads.MAX_BODY_BYTES, what="body")
        return payloads.validate(model, raw, "body")
    except InputError as exc:
        raise InputError(str(exc), title=title) from exc


def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
    """An HTTP handler (sync or async) whose Tandem errors become their problem bodies (each error names its status
    and title) and whose unexpected exceptions become a 500 problem body with a correlation id; the log line names
    the route's path, never its query string (which may carry the function key)."""
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
    from shared.errors import TandemError

    if isinstance(exc, TandemError):  # raised on purpose: the error says what the caller gets
        return problem(exc.http_status, exc.title, str(exc)[:500])
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
