"""The local Functions host: indexes the app once and runs its triggers the way the host and worker do."""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib
import inspect
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
from azure.data.tables import UpdateMode
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequestConverter

from local.runtime.clock import Clock, VirtualClock, WallClock
from local.runtime.durable import DurableEngine
from local.runtime.durable_store import TableHistoryStore, open_table
from local.runtime.frontdoor import FrontDoor
from local.runtime.identity import LocalIdentity
from local.runtime.ncrontab import Schedule, resolve
from shared.errors import ConfigError

log = logging.getLogger("tandem.local.host")
PAST_DUE_TOLERANCE = timedelta(seconds=1)
SUPPORTED = {"httpTrigger", "timerTrigger", "eventGridTrigger", "orchestrationTrigger", "activityTrigger"}
SUPPORTED_BINDINGS = SUPPORTED | {"http", "durableClient"}


@functools.cache
def index_app(module_name: str) -> tuple[func.FunctionApp, tuple[Any, ...]]:
    """Import the app module and index it once per process (a second get_functions() raises)."""
    module = importlib.import_module(module_name)
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if len(apps) != 1:
        raise ConfigError(f"{module_name} must define exactly one FunctionApp, found {len(apps)}")
    return apps[0], tuple(apps[0].get_functions())


class _AsyncRunner:
    """One event loop thread per process for async functions, as the worker has one loop.

    The Durable client keeps a module-global aiohttp session bound to the loop that created it, so all
    async user code must share a single long-lived loop.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="functions-async", daemon=True).start()
        atexit.register(self.close_sessions)

    def run(self, awaitable: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(_await(awaitable), self.loop).result()

    def close_sessions(self) -> None:
        """At exit, close the Durable client's shared aiohttp session on its own loop, as a worker shutting down
        does; left open, aiohttp reports an "Unclosed client session" on every demo and benchmark run."""
        from azure.durable_functions.models.utils.http_utils import _close_session  # the library's own closer

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(_close_session(), self.loop).result(timeout=5)


async def _await(awaitable: Any) -> Any:
    return await awaitable


@functools.cache
def async_runner() -> _AsyncRunner:
    """The process-wide loop for async functions."""
    return _AsyncRunner()


@dataclass
class FunctionSpec:
    """One indexed function: its trigger binding as the worker sees it and the callable to invoke."""

    name: str
    trigger: dict[str, Any]
    call: Callable[..., Any]
    client_param: str | None = None

    @property
    def kind(self) -> str:
        return str(self.trigger["type"])


@dataclass
class TimerState:
    """A timer's schedule and its status, as the host's schedule monitor keeps it."""

    schedule: Schedule
    next: datetime
    last: datetime | None = None
    fired: list[tuple[datetime, bool]] = field(default_factory=list)


class LocalHost:
    """Runs a Functions app without the Functions host: timers, Event Grid, HTTP and Durable.

    `start()` indexes the app, resumes unfinished orchestrations from storage and starts the HTTP
    front door; `advance()` moves a virtual clock, firing timers and durable timers on the way.
    """

    def __init__(
        self,
        app_module: str = "function_app",
        *,
        storage: str,
        settings: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        hub: str = "tandem",
        auth_enabled: bool = True,
        event_subscriptions: Iterable[tuple[str, Iterable[str]]] = (),
        max_activity_workers: int = 4,
        identity: LocalIdentity | None = None,
    ) -> None:
        self.app_module = app_module
        self.storage = storage
        self.clock: Clock = clock or WallClock()
        self.hub = hub
        self.auth_enabled = auth_enabled
        self.identity = identity or LocalIdentity()
        self.max_activity_workers = max_activity_workers
        self.master_key = secrets.token_urlsafe(24)
        self.system_key = secrets.token_urlsafe(24)
        self.topic_key = secrets.token_urlsafe(24)
        self.function_keys: dict[str, str] = {}
        self.settings = dict(settings or {})
        self.subscriptions = [(fn, set(types)) for fn, types in event_subscriptions]
        self.functions: dict[str, FunctionSpec] = {}
        self.timers: dict[str, TimerState] = {}
        self.dead_letters: list[tuple[str, str]] = []
        self.received: list[dict[str, Any]] = []  # every event the topic accepted (what the portal's metrics count)
        self._deliveries: deque[tuple[str, str]] = deque()
        self._delivery_lock = threading.Condition()
        self._delivering = 0
        self._saved_env: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.durable: DurableEngine
        self.front_door: Any = None

    # ----------------------------------------------------------------- lifecycle

    def start(self, *, serve_http: bool = True, host_port: int = 0, topic_port: int = 0) -> LocalHost:
        """Index the app, resume stored work and (optionally) serve HTTP on 127.0.0.1."""
        if serve_http:
            self.front_door = FrontDoor(self, host_port=host_port, topic_port=topic_port)
            self.settings.setdefault("IDENTITY_ENDPOINT", f"{self.front_door.base_url}/msi/token")
            self.settings.setdefault("IDENTITY_HEADER", self.identity.header_secret)
            self.settings.setdefault("TANDEM_EVENTS_ENDPOINT", self.front_door.topic_url)
            self.settings.setdefault("TANDEM_EVENTS_KEY", self.topic_key)
            self.settings.setdefault("REQUESTS_CA_BUNDLE", self.front_door.ca.bundle_path)
        self.settings.setdefault("AzureWebJobsStorage", self.storage)
        self.settings.setdefault("TANDEM_TASK_HUB", self.hub)
        if self.auth_enabled:
            self.settings.setdefault("WEBSITE_AUTH_ENABLED", "True")
        self._apply_env()
        from shared import clock as app_clock  # the app decides by the runtime's clock, virtual or not

        app_clock.set_source(self.clock.now)
        _, functions = index_app(self.app_module)
        self._index(functions)
        engine_activities = {n: (s.call, s.trigger["name"]) for n, s in self.functions.items() if s.kind == "activityTrigger"}
        orchestrators = {n: s.call for n, s in self.functions.items() if s.kind == "orchestrationTrigger"}
        self.durable = DurableEngine(
            orchestrators,
            engine_activities,
            clock=self.clock,
            store=TableHistoryStore(self.storage, self.hub),
            run_async=async_runner().run,
            max_activity_workers=self.max_activity_workers,
        )
        self._load_timers()
        resumed = self.durable.recover()
        if resumed:
            log.info("resumed %d unfinished orchestration(s) from the task hub", resumed)
        self._spawn(self._delivery_loop, "eventgrid-delivery")
        if self.front_door is not None:
            self.front_door.start()
        if not getattr(self.clock, "virtual", False):
            self._spawn(self._wall_clock_loop, "clock")
        return self

    def close(self) -> None:
        """Stop serving, finish in-flight work and restore the environment."""
        self._stop.set()
        with self._delivery_lock:
            self._delivery_lock.notify_all()
        if self.front_door is not None:
            self.front_door.close()
        if hasattr(self, "durable"):
            self.durable.close()
        for thread in self._threads:
            thread.join(timeout=5)
        from shared import clock as app_clock

        app_clock.set_source(None)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> LocalHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _apply_env(self) -> None:
        for name, value in self.settings.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # ----------------------------------------------------------------- indexing

    def _index(self, functions: Iterable[Any]) -> None:
        for fn in functions:
            bindings = json.loads(fn.get_function_json())["bindings"]
            trigger = next(b for b in bindings if b["type"].endswith("Trigger"))
            unsupported = [b["type"] for b in bindings if b["type"] not in SUPPORTED_BINDINGS]
            if unsupported:
                raise ConfigError(f"function {fn.get_function_name()} uses bindings the local runtime cannot run: {unsupported}")
            client = next((b["name"] for b in bindings if b["type"] == "durableClient"), None)
            name = fn.get_function_name()
            self.functions[name] = FunctionSpec(name, trigger, fn.get_user_function(), client)
            if trigger["type"] == "httpTrigger" and trigger.get("authLevel", "FUNCTION").upper() != "ANONYMOUS":
                self.function_keys[name] = secrets.token_urlsafe(24)

    # ----------------------------------------------------------------- invocation

    def invoke(self, name: str, **inputs: Any) -> Any:
        """Invoke a function with already-converted inputs; async functions run on the worker loop."""
        spec = self.functions[name]
        if spec.client_param is not None:
            inputs[spec.client_param] = json.dumps(self.durable_client_binding())
        result = spec.call(**inputs)
        if inspect.isawaitable(result):
            result = async_runner().run(result)
        return result

    def durable_client_binding(self) -> dict[str, Any]:
        """The JSON the Durable extension gives a `durableClient` input binding."""
        base = self.front_door.base_url if self.front_door else "http://127.0.0.1:0"
        hook = f"{base}/runtime/webhooks/durabletask"
        query = f"taskHub={self.hub}&connection=Storage&code={self.system_key}"
        instance = f"{hook}/instances/INSTANCEID"
        return {
            "taskHubName": self.hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{hook}/orchestrators/{{functionName}}[/{{instanceId}}]?code={self.system_key}",
                "createAndWaitOnNewInstancePostUri": f"{hook}/orchestrators/{{functionName}}[/{{instanceId}}]"
                f"?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&code={self.system_key}",
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": f"{instance}?{query}",
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
                "purgeHistoryDeleteUri": f"{instance}?{query}",
                "restartPostUri": f"{instance}/restart?{query}",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
                "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
            },
            "baseUrl": hook,
            "requiredQueryStringParameters": f"code={self.system_key}",
            "rpcBaseUrl": f"{base}/durabletask/{self.system_key}/",
        }

    # ----------------------------------------------------------------- timers

    def _load_timers(self) -> None:
        table = open_table(self.storage, self.hub, "Timers")
        now = self.clock.now()
        stored = {e["RowKey"]: e for e in table.query_entities("PartitionKey eq 'timers'")}
        env = {**os.environ, **self.settings}
        for name, spec in self.functions.items():
            if spec.kind != "timerTrigger":
                continue
            schedule = Schedule.parse(resolve(spec.trigger["schedule"], env))
            row = stored.get(name)
            if row and row.get("Schedule") == schedule.expression:
                state = TimerState(
                    schedule, datetime.fromisoformat(row["Next"]), datetime.fromisoformat(row["Last"]) if row.get("Last") else None
                )
            else:
                state = TimerState(schedule, schedule.next_after(now))
                if spec.trigger.get("runOnStartup"):
                    state.next = now
            self.timers[name] = state
        self._timer_rows = table

    def _save_timer(self, name: str, state: TimerState) -> None:
        self._timer_rows.upsert_entity(
            {
                "PartitionKey": "timers",
                "RowKey": name,
                "Schedule": state.schedule.expression,
                "Next": state.next.isoformat(),
                "Last": state.last.isoformat() if state.last else "",
            },
            mode=UpdateMode.REPLACE,
        )

    def fire_timer(self, name: str, *, past_due: bool = False) -> Any:
        """Invoke a timer function now through the worker's TimerRequestConverter."""
        state = self.timers[name]
        now = self.clock.now()
        payload = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {
                "Last": (state.last or now).isoformat(),
                "Next": state.schedule.next_after(now).isoformat(),
                "LastUpdated": now.isoformat(),
            },
            "IsPastDue": past_due,
        }
        timer = TimerRequestConverter.decode(meta.Datum(type="json", value=json.dumps(payload)), trigger_metadata=None)
        state.fired.append((now, past_due))
        return self.invoke(name, **{self.functions[name].trigger["name"]: timer})

    def run_due(self) -> None:
        """Fire every timer trigger and durable timer due at the clock's current time."""
        now = self.clock.now()
        for name, state in self.timers.items():
            if state.next <= now:
                past_due = now - state.next > PAST_DUE_TOLERANCE
                try:
                    self.fire_timer(name, past_due=past_due)
                except Exception:  # a failing timer function is logged; the schedule goes on, as on the host
                    log.exception("timer function %s failed", name)
                state.last, state.next = now, state.schedule.next_after(now)
                self._save_timer(name, state)
        self.durable.fire_due_timers()

    def next_due(self) -> datetime | None:
        """The earliest moment a timer trigger or a durable timer is due."""
        candidates = [s.next for s in self.timers.values()]
        durable = self.durable.next_timer_due()
        if durable is not None:
            candidates.append(durable)
        return min(candidates, default=None)

    def advance(self, delta: timedelta) -> datetime:
        """Move the virtual clock forward, firing everything due on the way in order."""
        return self.run_until(self.clock.now() + delta)

    def run_until(self, target: datetime) -> datetime:
        """Move the virtual clock to `target`, stopping at every due moment to fire and settle."""
        if not isinstance(self.clock, VirtualClock):
            raise RuntimeError("only a virtual clock can be advanced")
        self.wait_idle()
        while (due := self.next_due()) is not None and due <= target:
            if due > self.clock.now():
                self.clock.set(due)
            self.run_due()
            self.wait_idle()
        if target > self.clock.now():  # the calls of what ran may already have moved time past it
            self.clock.set(target)
        self.run_due()
        self.wait_idle()
        return self.clock.now()

    def _wall_clock_loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.run_due()
            except Exception:
                log.exception("timer loop failed")

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until Durable work and Event Grid deliveries have settled."""
        # Activities may publish events and deliveries may start orchestrations: settle until neither moves.
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.durable.wait_idle(remaining):
                return False
            with self._delivery_lock:
                if not self._delivery_lock.wait_for(lambda: not self._deliveries and not self._delivering, remaining):
                    return False
            if self.durable.wait_idle(0):
                return True
        return False

    # ----------------------------------------------------------------- Event Grid

    def http(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        function: str | None = None,
        roles: Iterable[str] = (),
        name: str = "operator@contoso.com",
    ) -> tuple[int, Any]:
        """Call an HTTP function through the front door: `/api/<path>`, with `function`'s key when given, signed
        in (emulated App Service authentication) with `roles` when given. Returns (status, JSON body or {})."""
        import urllib.error
        import urllib.request

        url = f"{self.front_door.base_url}/api/{path}"
        if function is not None:
            url += ("&" if "?" in url else "?") + f"code={self.function_keys[function]}"
        headers = {"Content-Type": "application/json"}
        roles = list(roles)
        if roles:
            headers["Authorization"] = f"Bearer {self.identity.user_token(name, roles)}"
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read() or b"{}")

    def deliver_event(self, name: str, payload: Mapping[str, Any] | str) -> Any:
        """Deliver one event (Event Grid schema or CloudEvents) through the worker's converter."""
        spec = self.functions[name]
        if spec.kind != "eventGridTrigger":
            raise ValueError(f"{name} is not an Event Grid-triggered function")
        text = payload if isinstance(payload, str) else json.dumps(payload)
        event = EventGridEventInConverter.decode(meta.Datum(type="json", value=text), trigger_metadata=None)
        return self.invoke(name, **{spec.trigger["name"]: event})

    def publish(self, events: list[dict[str, Any]]) -> int:
        """Accept events as a topic does and queue them for every subscribed function; returns the count queued."""
        queued = 0
        with self._delivery_lock:
            self.received.extend(events)
            for event in events:
                event_type = event.get("type") or event.get("eventType")
                for function, types in self.subscriptions:
                    if event_type in types:
                        self._deliveries.append((function, json.dumps(event)))
                        queued += 1
            self._delivery_lock.notify_all()
        return queued

    def _delivery_loop(self) -> None:
        while True:
            with self._delivery_lock:
                self._delivery_lock.wait_for(lambda: self._deliveries or self._stop.is_set())
                if self._stop.is_set():
                    return
                function, text = self._deliveries.popleft()
                self._delivering += 1
            try:
                for attempt in range(3):  # Event Grid retries a failed delivery
                    try:
                        self.deliver_event(function, text)
                        break
                    except Exception as exc:
                        log.warning("delivery to %s failed (attempt %d): %s", function, attempt + 1, exc)
                else:
                    self.dead_letters.append((function, text))
            finally:
                with self._delivery_lock:
                    self._delivering -= 1
                    self._delivery_lock.notify_all()
