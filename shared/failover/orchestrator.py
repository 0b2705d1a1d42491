"""The failover orchestration (a Durable Functions generator): planned, unplanned, drill and failback.

Every step is an activity with retries; the custom status lists the steps with their times; each step is
audited in Table storage and each stage publishes a Tandem CloudEvent. While an instance runs, its two regions
are held (shared/state/holds.py): autoscale leaves the source alone and keeps the incoming seats in the target.

Every failure has a safe end state (the README's table):
- before the point of no return (the target confirmed writable), a failed or timed-out step of a planned
  failover or a failback, or a cancel, rolls back: unfence, undrain, release the holds; the source serves. A
  rollback step that cannot finish parks the instance in `needs operator` and is retried. An unplanned
  failover's source is down already, so its steps park and retry instead;
- after it, a failed step parks the instance in `needs operator` with the target serving: the reason is in the
  custom status, the audit and a `Tandem.Failover.NeedsOperator` CloudEvent; the step is retried every
  PARK_RETRY, or at once when an operator sends `Resume`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=5)
POLL = timedelta(seconds=15)
VERIFY_POLL = timedelta(seconds=30)  # seats and first sign-ins build up over minutes: half as many reads
MODES = ("planned", "unplanned", "drill", "failback")
FENCE_RETRY = timedelta(minutes=5)
PARK_RETRY = timedelta(minutes=5)
DRILL_STEPS = (
    "hold regions",
    "warm target",
    "drain source",
    "drain wait",
    "log off",
    "profiles closed",
    "fence source",
    "replicate",
    "snapshot target",
    "make writable",
    "move assignments",
    "verify",
)


class StepFailed(Exception):
    """A step failed past its retries (or its deadline): the orchestration decides what that leaves."""


class Run:
    """Step bookkeeping for one instance: custom status, audit rows, CloudEvents."""

    def __init__(self, context: df.DurableOrchestrationContext, request: dict[str, Any]) -> None:
        self.ctx, self.req = context, request
        self.steps: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}  # facts every later audit row and CloudEvent carries
        self.reason = ""
        self.cancel = context.wait_for_external_event("Cancel")

    def _status(self, state: str) -> None:
        self.ctx.set_custom_status(
            {
                "mode": self.req["mode"],
                "source": self.req["source"],
                "target": self.req["target"],
                "state": state,
                "reason": self.reason,
                "steps": self.steps,
            }
        )

    def act(self, name: str, payload: dict[str, Any]) -> Any:
        """An activity task with the standard retries."""
        return self.ctx.call_activity_with_retry(f"failover_{name}", RETRY, payload)

    def step(self, name: str, task: Any, *, event: str | None = None) -> Generator[Any, Any, Any]:
        """Run one step (a task or a task_all), recording start, end and result; StepFailed past its retries."""
        entry = {"step": name, "status": "running", "started": self._now()}
        self.steps.append(entry)
        self._status(name)
        try:
            result = yield task
        except Exception as exc:
            yield from self._failed(entry, str(exc))
            raise StepFailed(f"{name}: {str(exc)[:300]}") from exc
        yield from self._end(entry, "done", event)
        return result

    def _end(
        self, entry: dict[str, Any], status: str, event: str | None = None, *, state: str = "", **detail: str
    ) -> Generator[Any, Any]:
        """End a step: its status and end time in the custom status (`state`, else the step), then its audit row."""
        entry.update(status=status, ended=self._now(), **detail)
        self._status(state or entry["step"])
        yield self.audit(entry, event)

    def _failed(self, entry: dict[str, Any], detail: str) -> Generator[Any, Any]:
        """Record a step's failure in the status and the audit (the caller raises StepFailed)."""
        yield from self._end(entry, "failed", "Tandem.Failover.StepFailed", state="failed", detail=detail[:300])

    def note(self, name: str, status: str, detail: str = "", event: str | None = None) -> Generator[Any, Any]:
        """Record a step that needs no activity (skipped, rehearsed, waiting)."""
        entry = {"step": name, "status": status, "started": self._now(), "ended": self._now(), "detail": detail}
        self.steps.append(entry)
        self._status(name)
        yield self.audit(entry, event)

    def audit(self, entry: dict[str, Any], event: str | None) -> Any:
        row = {
            "mode": self.req["mode"],
            "source": self.req["source"],
            "target": self.req["target"],
            "reason": self.req.get("reason", ""),
            "requested_by": self.req.get("requested_by", ""),
            **self.extra,
            **{k: str(v) for k, v in entry.items()},
        }
        return self.ctx.call_activity_with_retry(
            "failover_audit",
            RETRY,
            {
                "instance": self.ctx.instance_id,
                "seq": len(self.steps),
                "step": entry["step"],
                "row": row,
                "event": event,
                "run": self.steps[0]["started"] if self.steps else entry["started"],
            },
        )

    def wait(self, name: str, duration: timedelta) -> Generator[Any, Any, bool]:
        """A durable timer that a cancel interrupts; True when cancelled."""
        entry = {"step": name, "status": "waiting", "started": self._now()}
        self.steps.append(entry)
        self._status(name)
        timer = self.ctx.create_timer(self.ctx.current_utc_datetime + duration)
        winner = yield self.ctx.task_any([timer, self.cancel])
        cancelled = bool(winner == self.cancel)
        if cancelled:
            timer.cancel()
        yield from self._end(entry, "cancelled" if cancelled else "done")
        return cancelled

    def until(
        self, name: str, activity: str, payload: dict[str, Any], deadline: timedelta, *, cancellable: bool, poll: timedelta = POLL
    ) -> Generator[Any, Any, dict[str, Any] | None]:
        """Poll an activity until it answers done; None when cancelled. StepFailed after `deadline` or when the
        activity fails past its retries."""
        entry = {"step": name, "status": "running", "started": self._now()}
        self.steps.append(entry)
        self._status(name)
        give_up = self.ctx.current_utc_datetime + deadline
        while True:
            try:
                answer: dict[str, Any] = yield self.act(activity, payload)
            except Exception as exc:
                yield from self._failed(entry, str(exc))
                raise StepFailed(f"{name}: {str(exc)[:300]}") from exc
            if answer.get("done") or answer.get("ok"):
                yield from self._end(entry, "done")
                return answer
            if self.ctx.current_utc_datetime >= give_up:
                detail = f"not done within {deadline}" + (f": {answer['detail']}" if answer.get("detail") else "")
                yield from self._failed(entry, detail)
                raise StepFailed(f"{name}: {detail}"[:300])
            timer = self.ctx.create_timer(self.ctx.current_utc_datetime + poll)
            if cancellable:
                winner = yield self.ctx.task_any([timer, self.cancel])
                if winner == self.cancel:
                    timer.cancel()
                    yield from self._end(entry, "cancelled")
                    return None
            else:
                yield timer

    def persist(self, name: str, attempt: Callable[[], Generator[Any, Any, Any]]) -> Generator[Any, Any, Any]:
        """After the point of no return: run a step until it succeeds, parking in `needs operator` between tries."""
        while True:
            try:
                result = yield from attempt()
            except StepFailed as exc:
                yield from self.park(name, str(exc))
                continue
            if self.reason:
                self.reason = ""
                self._status(name)
            return result

    def park(self, name: str, why: str) -> Generator[Any, Any]:
        """`needs operator`: say why (status, audit, CloudEvent), then wait for `Resume` or the next retry."""
        self.reason = why[:300]
        yield from self.note(name, "needs operator", self.reason, "Tandem.Failover.NeedsOperator")
        self._status("needs operator")
        timer = self.ctx.create_timer(self.ctx.current_utc_datetime + PARK_RETRY)
        resume = self.ctx.wait_for_external_event("Resume")
        winner = yield self.ctx.task_any([timer, resume])
        if winner != timer:
            timer.cancel()

    def _now(self) -> str:
        return str(self.ctx.current_utc_datetime.isoformat())


def failover(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """The orchestration: input {source, target, mode, reason, requested_by}. Its policy comes from the topology
    (the `admit` activity, which also refuses an input Tandem would not have built), never from the input."""
    req = context.get_input()
    try:
        policy = yield context.call_activity("failover_admit", req)
    except Exception as exc:  # not a request Tandem built: nothing is touched, nothing is audited under its name
        return {"outcome": "refused", "problems": [str(exc)[:300]], "steps": []}
    run = Run(context, req)
    source, target, mode = req["source"], req["target"], req["mode"]
    sides = [
        run.act("preflight", {"region": source, "side": "source", "other": target, "mode": mode}),
        run.act("preflight", {"region": target, "side": "target", "other": source, "mode": mode}),
    ]
    try:
        src, tgt = yield from run.step("preflight", context.task_all(sides), event="Tandem.Failover.Preflight")
    except StepFailed as exc:
        yield from run.note("abort", "failed", str(exc), "Tandem.Failover.Failed")
        return {"outcome": "aborted", "problems": [str(exc)], "steps": run.steps}
    relationships = [r["id"] for r in tgt["relationships"]]
    recovery_points = [datetime.fromisoformat(r["recovery_point"]) for r in tgt["relationships"] if r["recovery_point"]]
    rpo_s = (context.current_utc_datetime - min(recovery_points)).total_seconds() if recovery_points else None
    profile_problems = tgt.get("profile_problems") or []
    recheck = mode == "failback" and bool(tgt.get("profile_unread"))
    if recheck:  # the returning region's hosts are off: read them once the failback has warmed them
        profile_problems = [p for p in profile_problems if not any(f"pool {u}:" in p for u in tgt["profile_unread"])]
    yield from run.note(
        "profile paths",
        "failed" if profile_problems else "deferred" if recheck else "done",
        "; ".join(profile_problems)
        or ("checked once the returning region's hosts run; " if recheck else "") + _paths_summary(tgt.get("profile_paths") or []),
    )
    blocking = tgt["problems"] + (src["problems"] + profile_problems if mode != "unplanned" else [])
    if blocking:
        yield from run.note("abort", "failed", "; ".join(blocking)[:500], "Tandem.Failover.Failed")
        return {"outcome": "aborted", "problems": blocking, "profile_paths": tgt.get("profile_paths") or [], "steps": run.steps}
    if mode == "failback":
        return (yield from _failback(run, context, source, target, policy, src["sessions"], recheck))
    # the seats the target must have: what the source holds now, or (unreadable) what Tandem recorded of it
    sessions = src["sessions"] if src["read_ok"] else max(src["sessions"], src["recorded_sessions"])
    if mode == "drill":
        for name in DRILL_STEPS:
            yield from run.note(name, "rehearsed")
        expected = policy["drain_wait_s"] + policy["job_s"] + policy["revert_s"]
        yield from run.note("drill", "done", f"expected RTO {expected:.0f} s; RPO now {rpo_s}", "Tandem.Failover.DrillCompleted")
        return {
            "outcome": "drill",
            "expected_rto_s": expected,
            "rpo_s": rpo_s,
            "sessions": sessions,
            "profile_paths": tgt.get("profile_paths") or [],
            "steps": run.steps,
        }
    run.extra.update(sessions=sessions, rpo_s=rpo_s, sized_from="sessions" if src["read_ok"] else "history")

    if mode == "unplanned":
        refused = yield from _approval(run, context, policy, rpo_s, profile_problems)
        if refused is not None:
            return refused

    instance = context.instance_id
    done: set[str] = set()  # what a roll-back must undo

    def hold() -> Generator[Any, Any, Any]:
        return run.step(
            "hold regions",
            run.act(
                "hold",
                {
                    "instance": instance,
                    "holds": [
                        {"region": source, "kind": "source", "reason": f"{mode} failover to {target}"},
                        {"region": target, "kind": "target", "seats": sessions, "reason": f"{mode} failover from {source}"},
                    ],
                },
            ),
        )

    try:
        if mode == "unplanned":  # the source is down already: going back helps nobody, so failures park and retry
            yield from run.persist("hold regions", hold)
            yield from run.persist(
                "warm target",
                lambda: run.step(
                    "warm target", run.act("warm", {"region": target, "sessions": sessions}), event="Tandem.Failover.Started"
                ),
            )
            yield from run.persist("make writable", lambda: _make_writable(run, source, target, relationships, "failover", done))
        else:
            yield from hold()
            if (yield from _switch(run, context, source, target, relationships, policy, sessions, done, label="failover")):
                return (
                    yield from _roll_back(
                        run, source, target, done, "cancelled", "cancelled by an operator", relationships=relationships
                    )
                )
    except StepFailed as exc:
        return (yield from _roll_back(run, source, target, done, "rolled back", str(exc), relationships=relationships))
    # the point of no return: the target is writable; from here a cancel is not honoured and failures park
    yield from run.note("point of no return", "done", "target writable", "Tandem.Failover.PointOfNoReturn")
    moved = yield from run.persist(
        "move assignments", lambda: run.step("move assignments", run.act("move_assignments", {"source": source, "target": target}))
    )
    verified = yield from _verify(run, context, source, target, sessions, policy, moved)
    yield from run.note(
        "completed",
        "done",
        (f"RPO {rpo_s} s" if mode == "unplanned" else "no data lost") + _profiles_summary(verified),
        "Tandem.Failover.Completed",
    )
    if mode == "unplanned":  # the failed region stays fenced: drained and read-only until failback
        yield from run.persist(
            "fence record",
            lambda: run.step(
                "fence record",
                run.act(
                    "hold",
                    {"instance": instance, "holds": [{"region": source, "kind": "fenced", "reason": "left by an unplanned failover"}]},
                ),
            ),
        )
        yield from run.persist(
            "release target", lambda: run.step("release target", run.act("release", {"instance": instance, "regions": [target]}))
        )
        yield from run.until(
            "fence returning region",
            "try_fence",
            {"source": source, "target": target},
            timedelta(days=14),
            cancellable=False,
            poll=FENCE_RETRY,
        )
    else:
        yield from run.persist(
            "release holds", lambda: run.step("release holds", run.act("release", {"instance": instance, "regions": [source, target]}))
        )
    return {
        "outcome": "completed",
        "mode": mode,
        "rpo_s": rpo_s if mode == "unplanned" else 0.0,
        "seats": verified["seats"] if verified else 0,
        "sessions": sessions,
        "steps": run.steps,
    }


def _approval(
    run: Run, context: df.DurableOrchestrationContext, policy: dict[str, Any], rpo_s: float | None, profile_problems: list[str]
) -> Generator[Any, Any, dict[str, Any] | None]:
    """An unplanned failover's gate: the policy's auto-approval within max RPO (never with a profile-path problem),
    or an approver, who sees the problems; None to go on."""
    if policy["auto_approve"] and rpo_s is not None and rpo_s <= policy["max_rpo_s"] and not profile_problems:
        return None
    warning = f"; PROFILE PATHS: {'; '.join(profile_problems)}" if profile_problems else ""
    yield from run.note("approval", "waiting", f"RPO {rpo_s} s; approve or reject{warning}"[:500], "Tandem.Failover.ApprovalRequested")
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
    return None


def _verify(
    run: Run,
    ctx: df.DurableOrchestrationContext,
    source: str,
    target: str,
    sessions: int,
    policy: dict[str, Any],
    moved: dict[str, Any],
) -> Generator[Any, Any, dict[str, Any] | None]:
    """Seats for everyone, then the moved users' first sign-ins sampled: their profile counts go in the custom
    status, the audit (and so the completion CloudEvent)."""
    payload = {
        "target": target,
        "source": source,
        "sessions": sessions,
        "since": moved.get("at") or run._now(),
        "sample": policy.get("signin_sample", 0),
        "window_s": policy.get("signin_window_s", 0),
    }
    window = timedelta(minutes=30) + timedelta(seconds=payload["window_s"])
    verified: dict[str, Any] | None = yield from run.persist(
        "verify", lambda: run.until("verify", "verify", payload, window, cancellable=False, poll=VERIFY_POLL)
    )
    if verified and verified.get("profiles"):
        run.extra.update(verified["profiles"])
        run.steps[-1]["profiles"] = verified["profiles"]
    return verified


def _profiles_summary(verified: dict[str, Any] | None) -> str:
    """'; first sign-ins: N own profile, N new, N failed' when the verify step sampled any."""
    p = (verified or {}).get("profiles")
    if not p:
        return ""
    return f"; first sign-ins: {p['own_profile']} own profile, {p['new_profile']} new profile, {p['failed_signin']} failed"


def _paths_summary(paths: list[dict[str, Any]]) -> str:
    """One 'pool: host looks in <locations> (read|cache)' clause per pool of the target."""
    return "; ".join(
        f"{p['pool']}: {p.get('host', '?')} looks in {', '.join(p.get('locations') or []) or 'nothing'} ({p['source']})" for p in paths
    )[:500]


def _switch(
    run: Run,
    ctx: df.DurableOrchestrationContext,
    source: str,
    target: str,
    relationships: list[str],
    policy: dict[str, Any],
    sessions: int,
    done: set[str],
    *,
    label: str,
    undrain: bool = False,
    recheck: bool = False,
) -> Generator[Any, Any, bool]:
    """The planned switch up to the point of no return (failover and failback alike): warm the target and drain
    the source, wait, sign everyone out, wait for FSLogix to close every container, fence, replicate, make the
    target writable. True when an operator cancelled; StepFailed when a step failed."""
    done.add("drain")
    yield from run.step(
        "warm target and drain source",
        ctx.task_all(
            [
                run.act("warm", {"region": target, "sessions": sessions, "undrain": undrain}),
                run.act("drain", {"region": source, "message": policy["warning_message"]}),
            ]
        ),
        event="Tandem.Failover.Started",
    )
    if (yield from run.wait("drain wait", timedelta(seconds=policy["drain_wait_s"]))):
        return True
    if recheck:  # the target's hosts were off at preflight: check where their FSLogix looks now that they run
        paths = yield from run.until(
            "profile paths", "profile_check", {"region": target, "other": source}, timedelta(minutes=20), cancellable=True
        )
        if paths is None:
            return True
        if paths["problems"]:
            detail = "; ".join(paths["problems"])[:500]
            yield from run.note("profile paths", "failed", detail, "Tandem.Failover.StepFailed")
            raise StepFailed(f"profile paths: {detail}"[:300])
    yield from run.step("log off", run.act("logoff", {"region": source}))
    closed = yield from run.until(
        "profiles closed",
        "handles",
        {"source": source, "target": target},
        timedelta(seconds=policy["detach_wait_s"]),
        cancellable=True,
    )
    if closed is None:
        return True
    done.add("fence")
    fence = yield from run.step(
        "fence source", run.act("fence", {"source": source, "target": target, "read_only": True, "relationships": relationships})
    )
    yield from run.step("replicate", run.act("replicate", {"source": source, "relationships": relationships}))
    caught = yield from run.until(
        "replication caught up",
        "replicated",
        {"source": source, "relationships": relationships, "after": fence["at"]},
        timedelta(seconds=policy["job_deadline_s"]),
        cancellable=True,
    )
    if caught is None:
        return True
    yield from _make_writable(run, source, target, relationships, label, done)
    return False


def _make_writable(run: Run, source: str, target: str, relationships: list[str], label: str, done: set[str]) -> Generator[Any, Any]:
    """A labelled snapshot of the target, then make-writable and its wait (StepFailed before the target is writable)."""
    name = f"{label}-" + "".join(c for c in run.ctx.instance_id.lower() if c.isalnum())[-24:]
    yield from run.step("snapshot target", run.act("snapshot_target", {"source": source, "target": target, "label": name}))
    done.add("writable")
    yield from run.step("make writable", run.act("make_writable", {"target": target, "relationships": relationships}))
    yield from run.until(
        "target writable", "writable", {"target": target, "relationships": relationships}, timedelta(hours=1), cancellable=False
    )


def _undo(run: Run, name: str, activity: str, payload: dict[str, Any]) -> Generator[Any, Any, Any]:
    """One roll-back step (bound per step, so each keeps its own name, activity and payload)."""
    return run.step(name, run.act(activity, payload))


def _roll_back(
    run: Run,
    source: str,
    target: str,
    done: set[str],
    outcome: str,
    why: str,
    *,
    refence: str | None = None,
    relationships: list[str] | None = None,
) -> Generator[Any, Any, dict[str, Any]]:
    """Undo what the failover did before the point of no return, so the source serves; keep trying until done.

    `refence` names a region to leave fenced (a failback's returning region goes back to its fence)."""
    instance = run.ctx.instance_id
    run.reason = why[:300]
    target_note = "; make-writable may have been accepted: reconnect the target before the next failover" if "writable" in done else ""
    plan: list[tuple[str, str, dict[str, Any]]] = []
    if "fence" in done:
        plan.append(("unfence source", "unfence", {"source": source, "target": target, "relationships": relationships}))
    if "drain" in done:
        plan.append(("undrain source", "undrain", {"region": source}))
    if refence:
        plan.append(
            (
                "re-fence returning region",
                "hold",
                {"instance": instance, "holds": [{"region": refence, "kind": "fenced", "reason": "failback rolled back"}]},
            )
        )
    plan.append(("release holds", "release", {"instance": instance, "regions": [r for r in (source, target) if r != refence]}))
    for name, activity, payload in plan:
        yield from run.persist(name, functools.partial(_undo, run, name, activity, payload))
    event = "Tandem.Failover.Cancelled" if outcome == "cancelled" else "Tandem.Failover.RolledBack"
    yield from run.note(outcome, outcome, f"source serving{target_note}; {why}"[:500], event)
    run._status(outcome)
    return {"outcome": outcome, "reason": why[:300], "steps": run.steps}


def _failback(
    run: Run,
    ctx: df.DurableOrchestrationContext,
    source: str,
    target: str,
    policy: dict[str, Any],
    sessions: int,
    recheck: bool = False,
) -> Generator[Any, Any, dict[str, Any]]:
    """Back to the original region: re-protect it, move everyone over as a planned failover, restore direction.

    `source` serves now (it was the failover's target); `target` is the region coming back (fenced until now).
    """
    instance = ctx.instance_id
    try:
        rels = yield from run.step("find relationships", run.act("relationships", {"source": target, "target": source}))
        ids = rels["relationships"]
        yield from run.step("reverse", run.act("reverse", {"source": source, "peer": target, "relationships": ids}))
        asked = yield from run.step("reconnect", run.act("reconnect", {"target": target, "relationships": ids}))
        joined = yield from run.until(
            "reconnected", "reconnected", {"target": target, "relationships": ids}, timedelta(hours=2), cancellable=True
        )
        # the job the re-established relationship starts counts: it cannot start before the reconnect was asked for,
        # and in a quiet hour (nobody writing) no later job would ever come
        caught = joined and (
            yield from run.until(
                "caught up",
                "replicated",
                {"source": source, "relationships": ids, "after": asked.get("at") or joined["at"]},
                timedelta(hours=6),
                cancellable=True,
            )
        )
    except StepFailed as exc:  # nobody moved: the serving region serves, the returning one stays fenced
        yield from run.note("rolled back", "rolled back", f"re-protection stopped: {exc}"[:500], "Tandem.Failover.RolledBack")
        return {"outcome": "rolled back", "reason": str(exc)[:300], "steps": run.steps}
    if not caught:
        yield from run.note("cancelled", "cancelled", "re-protection stopped; no users moved", "Tandem.Failover.Cancelled")
        return {"outcome": "cancelled", "steps": run.steps}
    done: set[str] = {"drain"}
    try:
        yield from run.step(
            "hold regions",
            run.act(
                "hold",
                {
                    "instance": instance,
                    "holds": [
                        {"region": source, "kind": "source", "reason": f"failback to {target}"},
                        {"region": target, "kind": "target", "seats": sessions, "reason": f"failback from {source}"},
                    ],
                },
            ),
        )
        if (
            yield from _switch(run, ctx, source, target, ids, policy, sessions, done, label="failback", undrain=True, recheck=recheck)
        ):
            return (
                yield from _roll_back(
                    run, source, target, done, "cancelled", "cancelled by an operator", refence=target, relationships=ids
                )
            )
    except StepFailed as exc:
        return (yield from _roll_back(run, source, target, done, "rolled back", str(exc), refence=target, relationships=ids))
    yield from run.note("point of no return", "done", "returning region writable", "Tandem.Failover.PointOfNoReturn")
    moved = yield from run.persist(
        "move assignments", lambda: run.step("move assignments", run.act("move_assignments", {"source": source, "target": target}))
    )
    # the original direction again: the original region replicates to the standby, which is read-only
    yield from run.persist(
        "restore direction",
        lambda: run.step("restore direction", run.act("reverse", {"source": target, "peer": source, "relationships": ids})),
    )
    yield from run.persist(
        "reconnect standby", lambda: run.step("reconnect standby", run.act("reconnect", {"target": source, "relationships": ids}))
    )
    yield from run.persist(
        "standby reconnected",
        lambda: run.until(
            "standby reconnected", "reconnected", {"target": source, "relationships": ids}, timedelta(hours=2), cancellable=False
        ),
    )
    verified = yield from _verify(run, ctx, source, target, sessions, policy, moved)
    yield from run.persist(
        "release holds", lambda: run.step("release holds", run.act("release", {"instance": instance, "regions": [source, target]}))
    )
    yield from run.note(
        "completed", "done", "failed back; original direction restored" + _profiles_summary(verified), "Tandem.Failover.Completed"
    )
    return {"outcome": "completed", "mode": "failback", "seats": verified["seats"] if verified else 0, "steps": run.steps}
