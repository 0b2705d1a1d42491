"""HTTP helpers shared by the blueprints: JSON problem bodies (RFC 9457)."""

from __future__ import annotations

import json

import azure.functions as func


def problem(status: int, title: str, detail: str) -> func.HttpResponse:
    """A problem+json response; never a stack trace."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/problem+json")
