"""The failover orchestration (a Durable Functions generator): planned, unplanned and drill.

Every step is an activity with retries; the custom status lists the steps with their times; each step is
audited in Table storage and each stage publishes a Tandem CloudEvent. A cancel is honoured until the point
of no return (make-writable) and rolls back what was done before it.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=5)
POLL = timedelta(seconds=15)
MODES = ("planned", "unplanned", "drill", "failback")
FENCE_RETRY = timedelta(minutes=5)


class Run:
    """Step bookkeeping for one instance: custom status, audit rows, CloudEvents."""

    def __init__(self, context: df.DurableOrchestrationContext, request: dict[str, Any]) -> None:
        self.ctx, self.req = context, request
        self.steps: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}  # facts every later audit row and CloudEvent carries
        self.cancel = context.wait_for_external_event("Cancel")

    def _status(self, state: str) -> None:
        self.ctx.set_custom_status({"mode": self.req["mode"], "source": self.req["source"],
                                    "target": self.req["target"], "state": state, "steps": self.steps})

    def act(self, name: str, payload: dict[str, Any]) -> Any:
        """An activity task with the standard retries."""
        return self.ctx.call_activity_with_retry(f"failover_{name}", RETRY, payload)

    def step(self, name: str, task: Any, *, event: str | None = None) -> Generator[Any, Any, Any]:
        """Run one step (a task or a task_all), recording start, end and result."""
        entry = {"step": name, "status": "running", "started": self._now()}
        self.steps.append(entry)
        self._status(name)
        try:
            result = yield task
        except Exception as exc:
            entry.update(status="failed", ended=self._now(), detail=str(exc)[:300])
            self._status("failed")
            yield self.audit(entry, "Tandem.Failover.Failed")
            raise
        entry.update(status="done", ended=self._now())
        self._status(name)
        yield self.audit(entry, event)
        return result

    def note(self, name: str, status: str, detail: str = "", event: str | None = None) -> Generator[Any, Any]:
        """Record a step that needs no activity (skipped, rehearsed, waiting)."""
        entry = {"step": name, "status": status, "started": self._now(), "ended": self._now(), "detail": detail}
        self.steps.append(entry)
        self._status(name)
        yield self.audit(entry, event)

    def audit(self, entry: dict[str, Any], event: str | None) -> Any:
        row = {"mode": self.req["mode"], "source": self.req["source"], "target": self.req["target"],
               "reason": self.req.get("reason", ""), "requested_by": self.req.get("requested_by", ""),
               **self.extra, **{k: str(v) for k, v in entry.items()}}
        return self.ctx.call_activity_with_retry("failover_audit", RETRY, {
            "instance": self.ctx.instance_id, "seq": len(self.steps), "step": entry["step"], "row": row,
            "event": event})

    def wait(self, name: str, duration: timedelta) -> Generator[Any, Any, bool]:
        """A durable timer that a cancel interrupts; True when cancelled."""
        entry = {"step": name, "status": "waiting", "started": self._now()}
        self.steps.append(entry)
        self._status(name)
        timer = self.ctx.create_timer(self.ctx.current_utc_datetime + duration)
        winner = yield self.ctx.task_any([timer, self.cancel])
        if winner == self.cancel:
            timer.cancel()
            entry.update(status="cancelled", ended=self._now())
            return True
        entry.update(status="done", ended=self._now())
        return False

    def until(self, name: str, activity: str, payload: dict[str, Any], deadline: timedelta, *,
              cancellable: bool, poll: timedelta = POLL) -> Generator[Any, Any, dict[str, Any] | None]:
        """Poll an activity until it answers done; None when cancelled. Fails after `deadline`."""
        entry = {"step": name, "status": "running", "started": self._now()}
        self.steps.append(entry)
        self._status(name)
        give_up = self.ctx.current_utc_datetime + deadline
        while True:
            answer = yield self.act(activity, payload)
            if answer.get("done") or answer.get("ok"):
                entry.update(status="done", ended=self._now())
                self._status(name)
                yield self.audit(entry, None)
                return answer
            if self.ctx.current_utc_datetime >= give_up:
                entry.update(status="failed", ended=self._now(), detail=f"not done within {deadline}")
                self._status("failed")
                yield self.audit(entry, "Tandem.Failover.Failed")
                raise RuntimeError(f"{name} did not finish within {deadline}")
            timer = self.ctx.create_timer(self.ctx.current_utc_datetime + poll)
            if cancellable:
                winner = yield self.ctx.task_any([timer, self.cancel])
                if winner == self.cancel:
                    timer.cancel()
                    entry.update(status="cancelled", ended=self._now())
                    return None
            else:
                yield timer

    def _now(self) -> str:
        return self.ctx.current_utc_datetime.isoformat()


def failover(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """The orchestration: input {source, target, mode, reason, requested_by, policy}."""
    req = context.get_input()
    run = Run(context, req)
    source, target, mode, policy = req["source"], req["target"], req["mode"], req["policy"]
    sides = [run.act("preflight", {"region": source, "side": "source", "other": target, "mode": mode}),
             run.act("preflight", {"region": target, "side": "target", "other": source, "mode": mode})]
    src, tgt = yield from run.step("preflight", context.task_all(sides), event="Tandem.Failover.Preflight")
    relationships = [r["id"] for r in tgt["relationships"]]
    recovery_points = [datetime.fromisoformat(r["recovery_point"]) for r in tgt["relationships"] if r["recovery_point"]]
    rpo_s = (context.current_utc_datetime - min(recovery_points)).total_seconds() if recovery_points else None
    blocking = tgt["problems"] + (src["problems"] if mode != "unplanned" else [])
    if blocking:
        yield from run.note("abort", "failed", "; ".join(blocking)[:500], "Tandem.Failover.Failed")
        return {"outcome": "aborted", "problems": blocking, "steps": run.steps}
    if mode == "failback":
        return (yield from _failback(run, context, source, target, policy, src["sessions"]))
    if mode == "drill":
        for name in ("warm target", "drain source", "drain wait", "log off", "fence source", "replicate",
                     "snapshot target", "make writable", "move assignments", "verify"):
            yield from run.note(name, "rehearsed")
        expected = policy["drain_wait_s"] + policy["job_s"] + policy["revert_s"]
        yield from run.note("drill", "done", f"expected RTO {expected:.0f} s; RPO now {rpo_s}",
                            "Tandem.Failover.DrillCompleted")
        return {"outcome": "drill", "expected_rto_s": expected, "rpo_s": rpo_s, "sessions": src["sessions"],
                "steps": run.steps}
    sessions = src["sessions"] if mode == "planned" else max(src["sessions"], policy.get("expected_sessions", 0))
    run.extra.update(sessions=sessions, rpo_s=rpo_s)

    if mode == "unplanned":
        if not (policy["auto_approve"] and rpo_s is not None and rpo_s <= policy["max_rpo_s"]):
            yield from run.note("approval", "waiting", f"RPO {rpo_s} s; approve or reject",
                                "Tandem.Failover.ApprovalRequested")
            run._status("awaiting approval")
            timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=policy["approval_timeout_s"]))
            approve, reject = context.wait_for_external_event("Approve"), context.wait_for_external_event("Reject")
            winner = yield context.task_any([approve, reject, timeout, run.cancel])
            if winner != timeout:
                timeout.cancel()
            if winner != approve:
                why = {id(reject): "rejected", id(timeout): "approval timed out"}.get(id(winner), "cancelled")
                yield from run.note("approval", why, "", "Tandem.Failover.Cancelled")
                return {"outcome": why, "rpo_s": rpo_s, "steps": run.steps}
            yield from run.note("approval", "approved", str(approve.result or ""))
        yield from run.step("warm target", run.act("warm", {"region": target, "sessions": sessions}),
                            event="Tandem.Failover.Started")
    else:
        yield from run.step("warm target and drain source", context.task_all([
            run.act("warm", {"region": target, "sessions": sessions}),
            run.act("drain", {"region": source, "message": policy["warning_message"]})]),
            event="Tandem.Failover.Started")
        if (yield from run.wait("drain wait", timedelta(seconds=policy["drain_wait_s"]))):
            return (yield from _roll_back(run, source, target, fenced=False))
        yield from run.step("log off", run.act("logoff", {"region": source}))
        fence = yield from run.step("fence source", run.act("fence", {"source": source, "target": target,
                                                                      "read_only": True}))
        yield from run.step("replicate", run.act("replicate", {"source": source, "relationships": relationships}))
        done = yield from run.until("replication caught up", "replicated",
                                    {"source": source, "relationships": relationships, "after": fence["at"]},
                                    timedelta(hours=2), cancellable=True)
        if done is None:
            return (yield from _roll_back(run, source, target, fenced=True))

    label = "failover-" + "".join(c for c in context.instance_id.lower() if c.isalnum())[-24:]
    yield from run.step("snapshot target", run.act("snapshot_target", {"source": source, "target": target,
                                                                       "label": label}))
    # the point of no return: from here a cancel is not honoured
    yield from run.step("make writable", run.act("make_writable", {"target": target, "relationships": relationships}),
                        event="Tandem.Failover.PointOfNoReturn")
    yield from run.until("target writable", "writable", {"target": target, "relationships": relationships},
                         timedelta(hours=1), cancellable=False)
    yield from run.step("move assignments", run.act("move_assignments", {"source": source, "target": target}))
    verified = yield from run.until("verify", "verify", {"target": target, "sessions": sessions},
                                    timedelta(minutes=30), cancellable=False)
    yield from run.note("completed", "done", f"RPO {rpo_s} s" if mode == "unplanned" else "no data lost",
                        "Tandem.Failover.Completed")
    if mode == "unplanned":  # keep the failed region fenced: when it returns, drained and read-only until failback
        yield from run.step("fence record", run.act("fence_record", {
            "region": source, "fenced": True, "instance": context.instance_id, "since": run._now()}))
        yield from run.until("fence returning region", "try_fence", {"source": source, "target": target},
                             timedelta(days=14), cancellable=False, poll=FENCE_RETRY)
    return {"outcome": "completed", "mode": mode, "rpo_s": rpo_s if mode == "unplanned" else 0.0,
            "seats": verified["seats"] if verified else 0, "steps": run.steps}


def _roll_back(run: Run, source: str, target: str, *, fenced: bool) -> Generator[Any, Any, dict[str, Any]]:
    """Undo what a cancelled failover did before the point of no return."""
    if fenced:
        yield from run.step("unfence source", run.act("fence", {"source": source, "target": target, "read_only": False}))
    yield from run.step("undrain source", run.act("undrain", {"region": source}))
    yield from run.note("cancelled", "cancelled", "rolled back", "Tandem.Failover.Cancelled")
    return {"outcome": "cancelled", "steps": run.steps}


def _failback(run: Run, ctx: df.DurableOrchestrationContext, source: str, target: str, policy: dict[str, Any],
              sessions: int) -> Generator[Any, Any, dict[str, Any]]:
    """Back to the original region: re-protect it, move everyone over as a planned failover, restore direction.

    `source` serves now (it was the failover's target); `target` is the region coming back.
    """
    rels = yield from run.step("find relationships", run.act("relationships", {"source": target, "target": source}))
    ids = rels["relationships"]
    yield from run.step("reverse", run.act("reverse", {"source": source, "peer": target, "relationships": ids}))
    yield from run.step("reconnect", run.act("reconnect", {"target": target, "relationships": ids}))
    joined = yield from run.until("reconnected", "reconnected", {"target": target, "relationships": ids},
                                  timedelta(hours=2), cancellable=True)
    if joined is None:
        yield from run.note("cancelled", "cancelled", "re-protection stopped; replication stays reversed",
                            "Tandem.Failover.Cancelled")
        return {"outcome": "cancelled", "steps": run.steps}
    caught = yield from run.until("caught up", "replicated", {"source": source, "relationships": ids,
                                                              "after": joined["at"]}, timedelta(hours=6),
                                  cancellable=True)
    if caught is None:
        yield from run.note("cancelled", "cancelled", "re-protected; no users moved", "Tandem.Failover.Cancelled")
        return {"outcome": "cancelled", "steps": run.steps}
    yield from run.step("warm target and drain source", ctx.task_all([
        run.act("warm", {"region": target, "sessions": sessions}),
        run.act("drain", {"region": source, "message": policy["warning_message"]})]), event="Tandem.Failover.Started")
    if (yield from run.wait("drain wait", timedelta(seconds=policy["drain_wait_s"]))):
        return (yield from _roll_back(run, source, target, fenced=False))
    yield from run.step("log off", run.act("logoff", {"region": source}))
    fence = yield from run.step("fence source", run.act("fence", {"source": source, "target": target,
                                                                  "read_only": True}))
    yield from run.step("replicate", run.act("replicate", {"source": source, "relationships": ids}))
    yield from run.until("replication caught up", "replicated", {"source": source, "relationships": ids,
                                                                 "after": fence["at"]}, timedelta(hours=2),
                         cancellable=False)
    label = "failback-" + "".join(c for c in ctx.instance_id.lower() if c.isalnum())[-24:]
    yield from run.step("snapshot target", run.act("snapshot_target", {"source": source, "target": target,
                                                                       "label": label}))
    yield from run.step("make writable", run.act("make_writable", {"target": target, "relationships": ids}),
                        event="Tandem.Failover.PointOfNoReturn")
    yield from run.until("target writable", "writable", {"target": target, "relationships": ids}, timedelta(hours=1),
                         cancellable=False)
    yield from run.step("move assignments", run.act("move_assignments", {"source": source, "target": target}))
    # the original direction again: the original region replicates to the standby, which is read-only
    yield from run.step("restore direction", run.act("reverse", {"source": target, "peer": source,
                                                                 "relationships": ids}))
    yield from run.step("reconnect standby", run.act("reconnect", {"target": source, "relationships": ids}))
    yield from run.until("standby reconnected", "reconnected", {"target": source, "relationships": ids},
                         timedelta(hours=2), cancellable=False)
    yield from run.step("clear fence", run.act("fence_record", {"region": target, "fenced": False,
                                                                "instance": ctx.instance_id, "since": run._now()}))
    verified = yield from run.until("verify", "verify", {"target": target, "sessions": sessions},
                                    timedelta(minutes=30), cancellable=False)
    yield from run.note("completed", "done", "failed back; original direction restored", "Tandem.Failover.Completed")
    return {"outcome": "completed", "mode": "failback", "seats": verified["seats"] if verified else 0,
            "steps": run.steps}
