"""Durable Functions through the real SDK replay code: retries, timers, events, fan-out, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df

from local.runtime import VirtualClock
from tests.apps import runtime_app
from tests.functional.runtime_fixtures import START, running

ROOT = Path(__file__).parents[2]


def _names(host) -> Counter[str]:
    return Counter(name for _, name, _ in host.durable.activity_log)


def test_orchestration_with_retry_timer_event_and_fan_out_runs_each_activity_once(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        runtime_app.flaky_failures["left"] = 2
        host.durable.start_new("workflow", "wf", json.dumps({"items": [1, 2, 3]}))
        host.wait_idle()
        assert host.durable.status("wf")["customStatus"] == {"step": "retry"}
        host.advance(timedelta(seconds=11))  # attempts at 0 s, 5 s and 10 s on the virtual clock
        assert runtime_app.seen["flaky"] == ["f", "f", "f"]
        assert host.durable.status("wf")["customStatus"] == {"step": "timer"}
        host.advance(timedelta(minutes=9, seconds=58))  # the 10-minute timer started at 10 s
        assert host.durable.status("wf")["customStatus"] == {"step": "timer"}
        host.advance(timedelta(seconds=2))
        assert host.durable.status("wf")["customStatus"] == {"step": "approval"}
        host.durable.raise_event("wf", "Approval", json.dumps({"by": "ops"}))
        host.wait_idle()
        status = host.durable.status("wf")
        assert status["runtimeStatus"] == "Completed"
        assert status["output"] == {"flaky": "f-ok", "approval": {"by": "ops"}, "doubled": [2, 4, 6], "child": 24}
        assert _names(host) == Counter({"flaky": 3, "double": 4})
        assert sorted(arg for _, name, arg in host.durable.activity_log if name == "double") == [1, 2, 3, 12]
        assert host.durable.next_timer_due() is None  # the canceled approval timeout never fires


def test_fan_out_runs_concurrently_on_the_bounded_worker_pool(storage: str, hub: str) -> None:
    runtime_app.concurrency.update(now=0, max=0)
    with running(storage, hub, max_activity_workers=3) as host:
        host.durable.start_new("fan", "fan", json.dumps(12))
        host.wait_idle()
        assert host.durable.status("fan")["output"] == list(range(12))
    assert runtime_app.concurrency["max"] == 3  # in parallel, and never beyond the pool's bound


def test_approval_that_never_comes_times_out_on_the_virtual_clock(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        host.durable.start_new("workflow", "wf", json.dumps({"items": []}))
        host.advance(timedelta(minutes=10, seconds=1))
        host.advance(timedelta(minutes=59))
        assert host.durable.status("wf")["runtimeStatus"] == "Running"
        host.advance(timedelta(minutes=2))
        assert host.durable.status("wf")["output"] == {"approved": False}


def test_exhausted_retries_fail_the_orchestration_with_the_activity_error(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        runtime_app.flaky_failures["left"] = 10
        host.durable.start_new("workflow", "wf", json.dumps({"items": []}))
        host.advance(timedelta(minutes=1))
        status = host.durable.status("wf")
        assert status["runtimeStatus"] == "Failed"
        assert "transient failure" in status["output"]
        assert runtime_app.seen["flaky"] == ["f"] * 4


def test_non_deterministic_orchestrator_is_detected(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        host.durable.start_new("drifting", "d", None)
        host.wait_idle()
        runtime_app.nondeterministic["branch"] = "b"  # the code now schedules another activity on replay
        host.durable.raise_event("d", "Go", json.dumps(True))
        host.wait_idle()
        status = host.durable.status("d")
        assert status["runtimeStatus"] == "Failed"
        assert "Non-Deterministic workflow detected" in status["output"]


def test_terminate_stops_an_instance_and_events_after_it_are_refused(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        host.durable.start_new("waiter", "w", None)
        host.wait_idle()
        assert host.durable.terminate("w", "operator cancelled") == "ok"
        assert host.durable.status("w")["runtimeStatus"] == "Terminated"
        assert host.durable.raise_event("w", "Go", None) == "gone"
        assert host.durable.raise_event("nobody", "Go", None) == "missing"


def test_in_flight_orchestration_resumes_in_a_new_host_on_the_same_task_hub(storage: str, hub: str) -> None:
    clock = VirtualClock(START)
    with running(storage, hub, clock) as host:
        host.durable.start_new("waiter", "w", None)
        host.wait_idle()
        first_run = _names(host)
    with running(storage, hub, clock) as host:
        host.durable.raise_event("w", "Go", json.dumps("go"))
        host.advance(timedelta(seconds=2))
        assert host.durable.status("w")["output"] == [2, "go", 4]
        assert first_run + _names(host) == Counter({"double": 2})


def test_real_durable_client_starts_and_queries_through_the_http_api(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        client = df.DurableOrchestrationClient(json.dumps(host.durable_client_binding()))

        async def scenario() -> list[str]:
            instance_id = await client.start_new("waiter", "via-client", None)
            await asyncio.sleep(0)
            host.wait_idle()
            await client.raise_event(instance_id, "Go", "now")
            host.wait_idle()
            host.advance(timedelta(seconds=2))
            status = await client.get_status(instance_id)
            missing = await client.get_status("no-such-instance")
            return [instance_id, status.runtime_status.value, json.dumps(status.output), str(missing.runtime_status)]

        from local.runtime.host import async_runner

        assert async_runner().run(scenario()) == ["via-client", "Completed", '[2, "now", 4]', "None"]


def test_a_process_that_used_the_durable_client_exits_with_its_session_closed(storage: str, hub: str) -> None:
    """The client's aiohttp session lives on the runtime's loop; a demo or benchmark process closes it at exit,
    where it used to end by printing aiohttp's "Unclosed client session"."""
    script = (  # atexit runs handlers last-registered first: this check runs after the runtime's own
        "import atexit, json, sys\n"
        "import azure.durable_functions as df\n"
        "from azure.durable_functions.models.utils import http_utils\n"
        "atexit.register(lambda: print('open at exit' if http_utils._client_session and not http_utils._client_session.closed"
        " else 'closed at exit'))\n"
        "from local.runtime.host import async_runner\n"
        "from tests.functional.runtime_fixtures import running\n"
        "with running(sys.argv[1], sys.argv[2]) as host:\n"
        "    client = df.DurableOrchestrationClient(json.dumps(host.durable_client_binding()))\n"
        "    print(async_runner().run(client.get_status('no-such-instance')).runtime_status)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script, storage, hub], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["None", "closed at exit"]  # it talked to the runtime over HTTP, then closed
    assert "Unclosed client session" not in done.stderr


def test_http_starter_returns_the_running_instance_for_a_duplicate_start(storage: str, hub: str) -> None:
    with running(storage, hub) as host:
        url = f"{host.front_door.base_url}/api/start/waiter?id=one&code={host.function_keys['start']}"
        answers = []
        for _ in range(2):
            req = urllib.request.Request(url, data=b"null", method="POST", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                answers.append((resp.status, json.loads(resp.read())))
            host.wait_idle()
        assert [a[0] for a in answers] == [202, 202]
        assert answers[0][1]["id"] == answers[1][1]["id"] == "one"
        assert answers[0][1]["statusQueryGetUri"].startswith(host.front_door.base_url)
        assert _names(host) == Counter({"double": 1})


def _serve(storage: str, hub: str) -> tuple[subprocess.Popen[str], str, str]:
    """The runtime in its own process; returns it and its Durable webhook base with the system key's query."""
    env = dict(os.environ, AzureWebJobsStorage=storage, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.runtime",
            "serve",
            "--app",
            "tests.apps.runtime_app",
            "--hub",
            hub,
            "--setting",
            "TEST_SCHEDULE=0 0 0 1 1 *",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"base_url=(\S+).* system_key=(\S+)", line)
    assert match, f"runtime did not report READY: {line!r}"
    return proc, match.group(1), match.group(2)


def _get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return json.loads(err.read() or b"{}")


def _poll(url: str, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = _get(url)
        if predicate(doc):
            return doc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting on {url}: {doc}")


def test_orchestration_survives_a_killed_runtime_process(storage: str, hub: str) -> None:
    proc, base, key = _serve(storage, hub)
    hook = f"{base}/runtime/webhooks/durabletask"
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"{hook}/orchestrators/waiter/survivor?code={key}", data=b"null", method="POST"), timeout=10
        ).close()
        status_url = f"{hook}/instances/survivor?showHistory=True&code={key}"
        _poll(status_url, lambda d: any(e["EventType"] == 5 for e in d.get("historyEvents", [])))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    proc, base, key = _serve(storage, hub)  # a new process: a new system key, the same task hub
    hook = f"{base}/runtime/webhooks/durabletask"
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"{hook}/instances/survivor/raiseEvent/Go?code={key}", data=b'"go"', method="POST"), timeout=10
        ).close()
        done = _poll(f"{hook}/instances/survivor?showHistory=True&code={key}", lambda d: d.get("runtimeStatus") == "Completed")
        assert done["output"] == [2, "go", 4]
        scheduled = [e["Name"] for e in done["historyEvents"] if e["EventType"] == 4]
        assert scheduled == ["double", "double"]  # the activity finished before the kill did not run again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        proc.stdout.close()
