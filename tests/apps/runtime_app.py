"""A Function App with one of each trigger the runtime must run faithfully."""

import json
import threading
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
bp = df.Blueprint()

seen: dict[str, list] = {"timer": [], "events": [], "flaky": []}
_lock = threading.Lock()
flaky_failures = {"left": 0}
nondeterministic = {"branch": "a"}


@bp.timer_trigger(schedule="%TEST_SCHEDULE%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    seen["timer"].append(timer.past_due)


@bp.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    seen["events"].append(event)


@bp.route(route="echo/{name}", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "name": req.route_params["name"],
        "query": dict(req.params),
        "body": req.get_json(),
        "principal": req.headers.get("x-ms-client-principal"),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json", status_code=201)


@bp.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def open_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("open")


@bp.route(route="start/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = req.params.get("id")
    existing = await client.get_status(instance_id) if instance_id else None
    if existing is not None and existing.runtime_status in (
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.Pending,
    ):
        return client.create_check_status_response(req, instance_id)
    instance_id = await client.start_new(req.route_params["name"], instance_id, req.get_json())
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def workflow(context: df.DurableOrchestrationContext):
    items = context.get_input()["items"]
    context.set_custom_status({"step": "retry"})
    flaky = yield context.call_activity_with_retry("flaky", df.RetryOptions(5000, 4), "f")
    context.set_custom_status({"step": "timer"})
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
    context.set_custom_status({"step": "approval"})
    timeout = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    winner = yield context.task_any([context.wait_for_external_event("Approval"), timeout])
    if winner == timeout:
        return {"approved": False}
    timeout.cancel()
    approval = winner.result
    doubled = yield context.task_all([context.call_activity("double", n) for n in items])
    child = yield context.call_sub_orchestrator("child", {"n": sum(doubled)})
    context.set_custom_status({"step": "done"})
    return {"flaky": flaky, "approval": approval, "doubled": doubled, "child": child}


@bp.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    n = context.get_input()["n"]
    result = yield context.call_activity("double", n)
    return result


@bp.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("double", 1)
    gate = yield context.wait_for_external_event("Go")
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    second = yield context.call_activity("double", 2)
    return [first, gate, second]


@bp.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    yield context.call_activity("double" if nondeterministic["branch"] == "a" else "flaky", 1)
    yield context.wait_for_external_event("Go")
    return "done"


@bp.orchestration_trigger(context_name="context")
def fan(context: df.DurableOrchestrationContext):
    results = yield context.task_all([context.call_activity("slow", n) for n in range(context.get_input())])
    return results


concurrency = {"now": 0, "max": 0}


@bp.activity_trigger(input_name="n")
def slow(n: int) -> int:
    with _lock:
        concurrency["now"] += 1
        concurrency["max"] = max(concurrency["max"], concurrency["now"])
    time.sleep(0.05)
    with _lock:
        concurrency["now"] -= 1
    return n


@bp.activity_trigger(input_name="n")
def double(n: int) -> int:
    return n * 2


@bp.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    with _lock:
        seen["flaky"].append(key)
        if flaky_failures["left"] > 0:
            flaky_failures["left"] -= 1
            raise RuntimeError("transient failure")
    return f"{key}-ok"


app.register_functions(bp)
