"""Health: is the topology valid and which capabilities are configured (for probes and admins)."""

import azure.functions as func

from functions.http import answer, guarded

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@guarded
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 with a summary of the estate when the topology loads, 503 with the problems when it does not."""
    from shared.health import check

    report = check()
    return answer(report, 200 if report["ok"] else 503)
