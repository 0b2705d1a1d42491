"""Health: is the topology valid and which capabilities are configured (for probes and admins)."""

import json

import azure.functions as func

from functions.http import guarded
from shared.health import check

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@guarded
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 with a summary of the estate when the topology loads, 503 with the problems when it does not."""
    report = check()
    return func.HttpResponse(json.dumps(report), status_code=200 if report["ok"] else 503, mimetype="application/json")
