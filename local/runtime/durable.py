"""The Durable Functions host's part, played locally: history, episodes, ids, activities, timers, events.

Orchestrators run through the handle that `app.get_functions()` returns, i.e. the real
azure-functions-durable replay code; this module plays the extension and DTFx: it builds each
episode's history, reads back the actions, assigns task ids in DTFx order, detects non-determinism,
runs activities through the worker's ActivityTriggerConverter on a bounded pool, fires timers on the
runtime's clock and persists everything in Azure Table storage (see durable_store).
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from local.runtime.clock import Clock
from local.runtime.durable_store import Instance, TableHistoryStore, valid_instance_id

log = logging.getLogger("tandem.local.durable")

# History event types (DTFx) and action types (the SDK's out-of-proc schema).
EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_TERMINATED = 0, 1, 3
TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED = 10, 11
ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED, EVENT_RAISED = 12, 13, 15
CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_FOR_EVENT, WHEN_ANY, WHEN_ALL = 4, 5, 6, 11, 12
_ID_EVENTS = {TASK_SCHEDULED: "activity", SUB_CREATED: "suborchestration", TIMER_CREATED: "timer"}
_ACTION_KIND = {
    CALL_ACTIVITY: "activity",
    CALL_ACTIVITY_RETRY: "activity",
    CALL_SUB: "suborchestration",
    CALL_SUB_RETRY: "suborchestration",
    CREATE_TIMER: "timer",
}
RUNNING = {"Pending", "Running"}
TERMINAL = {"Completed", "Failed", "Terminated"}


class NonDeterminismError(Exception):
    """An orchestrator replayed differently from its recorded history."""


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _flatten(actions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for action in actions:
        if action.get("actionType") in (WHEN_ALL, WHEN_ANY):
            yield from _flatten(action.get("compoundActions") or [])
        else:
            yield action


class DurableEngine:
    """Runs orchestrations and activities the way the Durable extension and DTFx do."""

    def __init__(
        self,
        orchestrators: dict[str, Callable[[func.OrchestrationContext], str]],
        activities: dict[str, tuple[Callable[..., Any], str]],
        *,
        clock: Clock,
        store: TableHistoryStore,
        run_async: Callable[[Any], Any],
        max_activity_workers: int = 4,
    ) -> None:
        self.orchestrators = orchestrators
        self.activities = activities
        self.clock = clock
        self.store = store
        self._run_async = run_async
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._instances: dict[str, Instance] = {}
        self._ready: deque[str] = deque()
        self._timers: dict[tuple[str, int], datetime] = {}
        self._busy = 0
        self._pool = ThreadPoolExecutor(max_workers=max_activity_workers, thread_name_prefix="activity")
        self.hold_activities = False  # a test control: park scheduled activities instead of running them
        self.failing: set[str] = set()  # a test control: these activities fail every attempt without running
        self.parked: list[tuple[str, int, str, str | None]] = []
        self._stopping = False
        self.activity_log: list[tuple[str, str, Any]] = []
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="orchestrator", daemon=True)
        self._dispatcher.start()

    # ----------------------------------------------------------------- client operations

    def start_new(
        self, name: str, instance_id: str | None = None, input_json: str | None = None, *, parent: tuple[str, int] | None = None
    ) -> str:
        """Create an instance (replacing a finished one with the same id) and queue its first episode."""
        if name not in self.orchestrators:
            raise KeyError(f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.")
        instance_id = instance_id or uuid.uuid4().hex
        if not valid_instance_id(instance_id):
            raise ValueError(f"instance id {instance_id!r} is empty, too long or contains / \\ # ?")
        with self._lock:
            now = self.clock.now()
            inst = Instance(instance_id=instance_id, name=name, input=input_json, created=now, updated=now)
            if parent is not None:
                inst.parent_id, inst.parent_task_id = parent
            self.store.purge(instance_id)
            self._drop_timers(instance_id)
            self._instances[instance_id] = inst
            self.store.commit(inst, [], [])
            started = self._event(
                EXECUTION_STARTED,
                Name=name,
                Input=input_json,
                Version="",
                OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": uuid.uuid4().hex},
            )
            if parent is not None:
                started["ParentInstance"] = {"OrchestrationInstance": {"InstanceId": parent[0]}, "TaskScheduleId": parent[1]}
            self._deliver(inst, started)
            return instance_id

    def raise_event(self, instance_id: str, name: str, data_json: str | None) -> str:
        """Queue an external event; returns 'ok', 'missing' or 'gone' (instance already finished)."""
        with self._lock:
            inst = self._get(instance_id)
            if inst is None:
                return "missing"
            if inst.status in TERMINAL:
                return "gone"
            self._deliver(inst, self._event(EVENT_RAISED, Name=name, Input=data_json))
            return "ok"

    def terminate(self, instance_id: str, reason: str) -> str:
        """Terminate a running instance; returns 'ok', 'missing' or 'gone'."""
        with self._lock:
            inst = self._get(instance_id)
            if inst is None:
                return "missing"
            if inst.status in TERMINAL:
                return "gone"
            event = self._event(EXECUTION_TERMINATED, Input=json.dumps(reason))
            inst.history.append(event)
            inst.status, inst.output, inst.updated = "Terminated", json.dumps(reason), self.clock.now()
            consumed = [k for k, _ in inst.inbox]
            inst.inbox.clear()
            self._drop_timers(instance_id)
            self.store.commit(inst, [event], consumed)
            self._notify_parent(inst)
            self._changed.notify_all()
            return "ok"

    def purge(self, instance_id: str) -> bool:
        """Forget an instance and its history."""
        with self._lock:
            self._instances.pop(instance_id, None)
            self._drop_timers(instance_id)
            return self.store.purge(instance_id)

    def status(self, instance_id: str, *, show_history: bool = False, show_input: bool = True) -> dict[str, Any] | None:
        """The status document the extension's HTTP API returns, or None if there is no such instance."""
        with self._lock:
            inst = self._get(instance_id)
            if inst is None:
                return None
            doc: dict[str, Any] = {
                "name": inst.name,
                "instanceId": inst.instance_id,
                "runtimeStatus": inst.status,
                "createdTime": _ts(inst.created),
                "lastUpdatedTime": _ts(inst.updated or inst.created),
                "customStatus": json.loads(inst.custom_status) if inst.custom_status else None,
                "output": json.loads(inst.output) if inst.output is not None else None,
            }
            if inst.status == "Failed":
                doc["output"] = inst.error
            if show_input:
                doc["input"] = json.loads(inst.input) if inst.input is not None else None
            if show_history:
                doc["historyEvents"] = [dict(e) for e in inst.history]
            return doc

    def list_statuses(self) -> list[dict[str, Any]]:
        """Status documents of every instance in the task hub."""
        ids = self.store.instance_ids()
        return [s for s in (self.status(i, show_input=False) for i in ids) if s is not None]

    # ----------------------------------------------------------------- time and lifecycle

    def next_timer_due(self) -> datetime | None:
        """When the earliest pending durable timer fires, if any."""
        with self._lock:
            return min(self._timers.values(), default=None)

    def fire_due_timers(self) -> int:
        """Deliver TimerFired for every timer due at the clock's current time."""
        now = self.clock.now()
        fired = 0
        with self._lock:
            for (instance_id, timer_id), fire_at in sorted(self._timers.items(), key=lambda kv: kv[1]):
                if fire_at <= now:
                    del self._timers[(instance_id, timer_id)]
                    inst = self._get(instance_id)
                    if inst is not None and inst.status in RUNNING:
                        self._deliver(inst, self._event(TIMER_FIRED, TimerId=timer_id, FireAt=_ts(fire_at)))
                        fired += 1
        return fired

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no episode is queued or running and no activity is in flight."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._ready and self._busy == 0, timeout=timeout)

    def recover(self) -> int:
        """Load unfinished instances from storage and resume them, as a host does after a restart."""
        resumed = 0
        for instance_id in self.store.instance_ids(RUNNING):
            inst = self.store.load(instance_id)
            if inst is None:
                continue
            with self._lock:
                self._instances[instance_id] = inst
                self._resume(inst)
            resumed += 1
        return resumed

    def close(self) -> None:
        """Stop the dispatcher and the activity pool (in-flight activities finish first)."""
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._dispatcher.join(timeout=5)

    # ----------------------------------------------------------------- internals

    def _get(self, instance_id: str) -> Instance | None:
        inst = self._instances.get(instance_id)
        if inst is None:
            inst = self.store.load(instance_id)
            if inst is not None:
                self._instances[instance_id] = inst
        return inst

    def _event(self, event_type: int, event_id: int = -1, **fields: Any) -> dict[str, Any]:
        return {"EventType": event_type, "EventId": event_id, "IsPlayed": False, "Timestamp": _ts(self.clock.now()), **fields}

    def _deliver(self, inst: Instance, event: dict[str, Any]) -> None:
        inst.inbox_seq += 1
        key = f"i-{inst.inbox_seq:08d}"
        self.store.add_inbox(inst.instance_id, key, event)
        inst.inbox.append((key, event))
        self._enqueue(inst.instance_id)

    def _enqueue(self, instance_id: str) -> None:
        if instance_id not in self._ready:
            self._ready.append(instance_id)
        self._changed.notify_all()

    def _drop_timers(self, instance_id: str) -> None:
        for key in [k for k in self._timers if k[0] == instance_id]:
            del self._timers[key]

    def _dispatch_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._ready or self._stopping)
                if self._stopping:
                    return
                instance_id = self._ready.popleft()
                self._busy += 1
            try:
                with self._lock:
                    inst = self._get(instance_id)
                    while inst is not None and inst.inbox and inst.status in RUNNING:
                        self._episode(inst)
            except Exception:  # the runtime must keep serving other instances
                log.exception("episode of %s failed inside the local runtime", instance_id)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

    def _is_retry_sensitive(self, inst: Instance, event: dict[str, Any]) -> bool:
        kind = event["EventType"]
        if kind in (TASK_FAILED, SUB_FAILED):
            return str(event.get("TaskScheduledId")) in inst.retries
        if kind == TIMER_FIRED:
            return f"t{event.get('TimerId')}" in inst.retries
        return False

    def _take_batch(self, inst: Instance) -> list[tuple[str, dict[str, Any]]]:
        # An event that advances a retry chain makes the SDK assign a task id outside its action list,
        # so it is played alone; everything before it can share one episode.
        batch: list[tuple[str, dict[str, Any]]] = []
        for key, event in inst.inbox:
            if self._is_retry_sensitive(inst, event):
                return batch or [(key, event)]
            batch.append((key, event))
        return batch

    def _episode(self, inst: Instance) -> None:
        batch = self._take_batch(inst)
        consumed = [key for key, _ in batch]
        del inst.inbox[: len(batch)]
        if any(e["EventType"] == EXECUTION_STARTED for _, e in batch):
            inst.status = "Running"
        for event in inst.history:
            event["IsPlayed"] = True
        new_events = [self._event(ORCHESTRATOR_STARTED)] + [dict(e, IsPlayed=False) for _, e in batch]
        history = inst.history + new_events
        body = {
            "history": history,
            "instanceId": inst.instance_id,
            "isReplaying": bool(inst.history),
            "parentInstanceId": inst.parent_id,
            "input": inst.input,
            "upperSchemaVersion": 2,
        }
        failure: str | None = None
        try:
            state = json.loads(self.orchestrators[inst.name](func.OrchestrationContext(json.dumps(body))))
        except Exception as exc:  # the SDK reports an orchestrator exception this way
            message = str(exc)
            marker = "\n\n$OutOfProcData$:"
            state = json.loads(message.split(marker, 1)[1]) if marker in message else {"actions": []}
            failure = message.split(marker, 1)[0]
        work: list[Callable[[], None]] = []
        appended: list[dict[str, Any]] = list(new_events)
        try:
            self._apply_actions(inst, history, state.get("actions") or [], appended, work)
            for _, event in batch:
                self._advance_retry(inst, history + appended[len(new_events) :], event, appended, work)
        except NonDeterminismError as exc:
            failure, work = f"Non-Deterministic workflow detected: {exc}", []
        if state.get("customStatus") is not None:
            inst.custom_status = json.dumps(state["customStatus"])
        done = failure is None and state.get("isDone")
        if failure is not None:
            inst.status, inst.error = "Failed", failure
            appended.append(self._event(EXECUTION_COMPLETED, OrchestrationStatus="Failed", Result=json.dumps(failure)))
        elif done:
            inst.status, inst.output = "Completed", json.dumps(state.get("output"))
            appended.append(self._event(EXECUTION_COMPLETED, OrchestrationStatus="Completed", Result=inst.output))
        appended.append(self._event(ORCHESTRATOR_COMPLETED))
        inst.history = inst.history + appended
        inst.updated = self.clock.now()
        if inst.status in TERMINAL:
            self._drop_timers(inst.instance_id)
            consumed += [k for k, _ in inst.inbox]
            inst.inbox.clear()
            work = []
        self.store.commit(inst, appended, consumed)
        for start in work:
            start()
        if inst.status in TERMINAL:
            log.info("orchestration %s (%s) %s", inst.instance_id, inst.name, inst.status)
            self._notify_parent(inst)

    def _apply_actions(
        self,
        inst: Instance,
        history: list[dict[str, Any]],
        actions_json: list[Any],
        appended: list[dict[str, Any]],
        work: list[Callable[[], None]],
    ) -> None:
        groups = actions_json if actions_json and isinstance(actions_json[0], list) else [actions_json]
        actions = [a for group in groups for a in _flatten(group)]
        recorded = {e["EventId"]: e for e in history if e["EventType"] in _ID_EVENTS}
        index = 0
        for action in actions:
            kind = action.get("actionType")
            if kind == WAIT_FOR_EVENT:
                continue  # external events are matched by name and take no id
            if kind == CONTINUE_AS_NEW:
                raise NonDeterminismError("continue_as_new is not supported by the local runtime")
            if kind not in _ACTION_KIND:
                raise NonDeterminismError(f"action type {kind} is not supported by the local runtime")
            if index < len(inst.action_ids):
                task_id = inst.action_ids[index]
                self._check_replay(recorded.get(task_id), action, task_id)
                if kind == CREATE_TIMER and action.get("isCanceled") and task_id not in inst.canceled:
                    inst.canceled.add(task_id)
                    self._timers.pop((inst.instance_id, task_id), None)
            else:
                task_id = self._next_id(history, appended)
                inst.action_ids.append(task_id)
                self._schedule(inst, action, task_id, appended, work)
            index += 1

    def _check_replay(self, event: dict[str, Any] | None, action: dict[str, Any], task_id: int) -> None:
        expected = _ACTION_KIND[action["actionType"]]
        if event is None or _ID_EVENTS[event["EventType"]] != expected:
            found = "nothing" if event is None else _ID_EVENTS[event["EventType"]]
            raise NonDeterminismError(
                f"task {task_id} was a {found} in history but the orchestrator now "
                f"schedules a {expected} '{action.get('functionName', 'timer')}'"
            )
        if expected != "timer" and event.get("Name") != action.get("functionName"):
            raise NonDeterminismError(
                f"task {task_id} was '{event.get('Name')}' in history but the "
                f"orchestrator now schedules '{action.get('functionName')}'"
            )

    @staticmethod
    def _next_id(history: list[dict[str, Any]], appended: list[dict[str, Any]]) -> int:
        ids = [e["EventId"] for e in (*history, *appended) if e["EventType"] in _ID_EVENTS]
        return max(ids, default=-1) + 1

    def _schedule(
        self, inst: Instance, action: dict[str, Any], task_id: int, appended: list[dict[str, Any]], work: list[Callable[[], None]]
    ) -> None:
        kind = action["actionType"]
        name, input_json = action.get("functionName"), action.get("input")
        if kind == CREATE_TIMER:
            fire_at = _parse_ts(action["fireAt"])
            appended.append(self._event(TIMER_CREATED, task_id, FireAt=_ts(fire_at)))
            if action.get("isCanceled"):
                inst.canceled.add(task_id)
            else:
                self._timers[(inst.instance_id, task_id)] = fire_at
            return
        if kind in (CALL_ACTIVITY_RETRY, CALL_SUB_RETRY):
            options = action.get("retryOptions") or {}
            inst.retries[str(task_id)] = {
                "attempt": 1,
                "max": int(options.get("maxNumberOfAttempts", 1)),
                "interval_ms": int(options.get("firstRetryIntervalInMilliseconds", 1000)),
            }
        if kind in (CALL_ACTIVITY, CALL_ACTIVITY_RETRY):
            self._schedule_activity(inst, task_id, name, input_json, appended, work)
        else:
            child_id = action.get("instanceId") or f"{inst.instance_id}:{task_id:04d}"
            appended.append(self._event(SUB_CREATED, task_id, Name=name, InstanceId=child_id, Input=input_json))
            work.append(lambda: self._start_child(inst.instance_id, task_id, name, child_id, input_json))

    def _schedule_activity(
        self,
        inst: Instance,
        task_id: int,
        name: str,
        input_json: str | None,
        appended: list[dict[str, Any]],
        work: list[Callable[[], None]],
    ) -> None:
        appended.append(self._event(TASK_SCHEDULED, task_id, Name=name, Input=input_json))
        instance_id = inst.instance_id
        work.append(lambda: self._submit_activity(instance_id, task_id, name, input_json))

    def _advance_retry(
        self,
        inst: Instance,
        history: list[dict[str, Any]],
        event: dict[str, Any],
        appended: list[dict[str, Any]],
        work: list[Callable[[], None]],
    ) -> None:
        """Play DTFx's retry interceptor: a failed attempt gets a timer, a fired timer the next attempt."""
        kind = event["EventType"]
        if kind in (TASK_FAILED, SUB_FAILED) and str(event.get("TaskScheduledId")) in inst.retries:
            chain = inst.retries.pop(str(event["TaskScheduledId"]))
            timer_id = self._next_id(history, appended)
            fire_at = self.clock.now() + timedelta(milliseconds=chain["interval_ms"])
            chain["failed_id"] = event["TaskScheduledId"]
            appended.append(self._event(TIMER_CREATED, timer_id, FireAt=_ts(fire_at)))
            self._timers[(inst.instance_id, timer_id)] = fire_at
            inst.retries[f"t{timer_id}"] = chain
        elif kind == TIMER_FIRED and f"t{event.get('TimerId')}" in inst.retries:
            chain = inst.retries.pop(f"t{event['TimerId']}")
            if chain["attempt"] >= chain["max"]:
                return  # the SDK fails the task after this last timer
            scheduled = next(
                e for e in history if e["EventType"] in (TASK_SCHEDULED, SUB_CREATED) and e["EventId"] == chain["failed_id"]
            )
            task_id = self._next_id(history, appended)
            chain["attempt"] += 1
            inst.retries[str(task_id)] = chain
            if scheduled["EventType"] == TASK_SCHEDULED:
                self._schedule_activity(inst, task_id, scheduled["Name"], scheduled.get("Input"), appended, work)
            else:
                child_id = f"{scheduled['InstanceId']}:{chain['attempt']}"
                appended.append(
                    self._event(SUB_CREATED, task_id, Name=scheduled["Name"], InstanceId=child_id, Input=scheduled.get("Input"))
                )
                name, input_json, parent = scheduled["Name"], scheduled.get("Input"), inst.instance_id
                work.append(lambda: self._start_child(parent, task_id, name, child_id, input_json))

    def _start_child(self, parent_id: str, task_id: int, name: str, child_id: str, input_json: str | None) -> None:
        try:
            self.start_new(name, child_id, input_json, parent=(parent_id, task_id))
        except (KeyError, ValueError) as exc:
            parent = self._get(parent_id)
            if parent is not None:
                self._deliver(parent, self._event(SUB_FAILED, TaskScheduledId=task_id, Reason=str(exc), Details=""))

    def _notify_parent(self, inst: Instance) -> None:
        if inst.parent_id is None or inst.parent_task_id is None:
            return
        parent = self._get(inst.parent_id)
        if parent is None or parent.status not in RUNNING:
            return
        if inst.status == "Completed":
            event = self._event(SUB_COMPLETED, TaskScheduledId=inst.parent_task_id, Result=inst.output)
        else:
            reason = inst.error or f"sub-orchestration {inst.instance_id} was {inst.status.lower()}"
            event = self._event(SUB_FAILED, TaskScheduledId=inst.parent_task_id, Reason=reason, Details="")
        self._deliver(parent, event)

    def _submit_activity(self, instance_id: str, task_id: int, name: str, input_json: str | None) -> None:
        with self._lock:
            if self.hold_activities:  # the scheduled step is in the history; nothing has run it yet
                self.parked.append((instance_id, task_id, name, input_json))
                return
            self._busy += 1
        self._pool.submit(self._run_activity, instance_id, task_id, name, input_json)

    def release_parked(self) -> int:
        """Run the parked activities (test control); returns how many."""
        with self._lock:
            parked, self.parked = self.parked, []
            self._busy += len(parked)
        for item in parked:
            self._pool.submit(self._run_activity, *item)
        return len(parked)

    def _run_activity(self, instance_id: str, task_id: int, name: str, input_json: str | None) -> None:
        try:
            event = self._invoke_activity(instance_id, task_id, name, input_json)
            with self._lock:
                inst = self._get(instance_id)
                if inst is not None and inst.status in RUNNING:
                    self._deliver(inst, event)
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def _invoke_activity(self, instance_id: str, task_id: int, name: str, input_json: str | None) -> dict[str, Any]:
        entry = self.activities.get(name)
        if entry is None:
            return self._event(
                TASK_FAILED,
                TaskScheduledId=task_id,
                Details="",
                Reason=f"The function '{name}' doesn't exist, is disabled, or is not an activity function.",
            )
        fn, param = entry
        if name in self.failing:  # an injected fault: the worker dies in this activity, attempt after attempt
            return self._event(
                TASK_FAILED, TaskScheduledId=task_id, Details="", Reason=f"Activity function '{name}' failed: injected fault"
            )
        arg = ActivityTriggerConverter.decode(meta.Datum(type="json", value=input_json or "null"), trigger_metadata=None)
        with self._lock:
            self.activity_log.append((instance_id, name, arg))
        try:
            result = fn(**{param: arg})
            if inspect.isawaitable(result):
                result = self._run_async(result)
            encoded = ActivityTriggerConverter.encode(result, expected_type=None)
            return self._event(TASK_COMPLETED, TaskScheduledId=task_id, Result=encoded.value)
        except Exception as exc:  # an activity failure is data for the orchestrator, as on the real host
            return self._event(
                TASK_FAILED,
                TaskScheduledId=task_id,
                Reason=f"Activity function '{name}' failed: {exc}",
                Details=traceback.format_exc(),
            )

    def _resume(self, inst: Instance) -> None:
        """Re-create what was in flight when the previous runtime process stopped."""
        played = inst.history + [e for _, e in inst.inbox]
        done_ids = {
            e.get("TaskScheduledId") for e in played if e["EventType"] in (TASK_COMPLETED, TASK_FAILED, SUB_COMPLETED, SUB_FAILED)
        }
        fired = {e.get("TimerId") for e in played if e["EventType"] == TIMER_FIRED}
        for event in inst.history:
            event_id = event["EventId"]
            if event["EventType"] == TASK_SCHEDULED and event_id not in done_ids:
                self._submit_activity(inst.instance_id, event_id, event["Name"], event.get("Input"))
            elif event["EventType"] == TIMER_CREATED and event_id not in fired and event_id not in inst.canceled:
                self._timers[(inst.instance_id, event_id)] = _parse_ts(event["FireAt"])
            elif event["EventType"] == SUB_CREATED and event_id not in done_ids:
                child = self._get(event["InstanceId"])
                if child is None:
                    self._start_child(inst.instance_id, event_id, event["Name"], event["InstanceId"], event.get("Input"))
                elif child.status in TERMINAL:
                    self._notify_parent(child)
        if inst.inbox:
            self._enqueue(inst.instance_id)
