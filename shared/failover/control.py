"""The failover control plane: start, read, decide on and propose failover instances through the Durable client.

The HTTP routes, the Event Grid trigger, the ANQ watch and the alert webhook all come here; each raises a Tandem
error that names its HTTP answer (functions/http.py renders it). `client` is the Durable Functions client the
trigger binds (azure-functions-durable's `DurableOrchestrationClient`; that package is untyped).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    from shared.auth import Caller
    from shared.payloads import FailoverRequest

log = get_logger("failover")
OPERATOR, APPROVER = "Tandem.Failover.Operator", "Tandem.Failover.Approver"
ACTIONS = {"cancel": ("Cancel", OPERATOR), "resume": ("Resume", OPERATOR), "approve": ("Approve", APPROVER),
           "reject": ("Reject", APPROVER)}  # fmt: skip
ORCHESTRATOR = "failover_orchestrator"


@dataclass(frozen=True)
class Started:
    """A start request's answer: the pair's instance, and whether it was already running (a duplicate)."""

    instance: str
    running: bool


def running(status: Any) -> bool:
    """Is the instance Pending or Running?"""
    import azure.durable_functions as df

    return status is not None and status.runtime_status in (
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.Pending,
    )


def request_of(status: Any) -> dict[str, Any]:
    """The orchestration input of an instance's status (the client gives it as JSON text or a value)."""
    request = status.input_ if status is not None else None
    request = json.loads(request) if isinstance(request, str) else request
    return request if isinstance(request, dict) else {}


def same_person(request: Mapping[str, Any], who: Caller) -> bool:
    """Is `who` the operator who asked for this failover? (by object id when both have one, else by name)"""
    if who.id and request.get("requested_by_id"):
        return bool(who.id == request["requested_by_id"])
    return bool(who.name) and who.name == request.get("requested_by")


def known(instance: str) -> str:
    """`instance` when it is one Tandem starts (a pairing of the topology); NotFoundError otherwise."""
    from shared.config.loader import get_topology
    from shared.errors import NotFoundError
    from shared.failover import proposals

    if instance not in proposals.instance_ids(get_topology()):
        raise NotFoundError("failover instances are named failover-<region>-<region> after a pairing", title="Unknown instance")
    return instance


async def start(client: Any, body: FailoverRequest, who: Caller) -> Started:
    """Start the pair's failover unless it already runs; one start at a time per pair (a blob lease)."""
    from shared.config.loader import get_topology
    from shared.errors import DependencyError, InputError
    from shared.failover import proposals
    from shared.failover.estate import pairing_of
    from shared.state.lease import Lease

    try:
        pairing_of(get_topology(), body.source, body.target)
    except InputError as exc:
        raise InputError(str(exc), title="Unknown region pair") from exc
    request = {**body.model_dump(), "requested_by": who.name, "requested_by_id": who.id}
    instance = proposals.pair_id(body.source, body.target)
    try:
        lease = await asyncio.to_thread(Lease, instance)  # waiting for it must not stall the worker's loop
    except DependencyError as exc:
        raise DependencyError(str(exc), title="Could not take the pair's lock") from exc
    try:
        already = running(await client.get_status(instance))
        if not already:
            await client.start_new(ORCHESTRATOR, instance, request)
            log_event(log, "failover.started", instance=instance, mode=body.mode, by=who.name)
    finally:
        lease.release()  # one quick call; not in the thread pool, which waiting callers may fill
    return Started(instance, already)


async def status(client: Any, instance: str) -> Any:
    """The instance's Durable status; NotFoundError when it has never run."""
    from shared.errors import NotFoundError

    found = await client.get_status(known(instance))
    if found is None or found.instance_id is None:
        raise NotFoundError(f"{instance} has not run", title="Unknown instance")
    return found


async def report(client: Any, instance: str) -> str:
    """The evidence report (HTML) of one drill or failover, from its Durable status and input."""
    from shared.errors import NotFoundError
    from shared.failover import report as page

    found = await client.get_status(known(instance), show_input=True)
    if found is None or found.instance_id is None:
        raise NotFoundError(f"{instance} has not run", title="Unknown instance")
    return page.render({"instance": found.instance_id, "runtime_status": getattr(found.runtime_status, "value", None),
                        "input": request_of(found), "custom_status": found.custom_status, "output": found.output})  # fmt: skip


async def decide(client: Any, instance: str, action: str, headers: Mapping[str, str]) -> str:
    """Send `action` (cancel, resume: operator; approve, reject: an approver who did not ask for the failover) to a
    running instance; returns the event sent."""
    from shared import auth
    from shared.errors import AuthorizationError, ConflictError, NotFoundError

    if action not in ACTIONS:
        raise NotFoundError("use cancel, resume, approve or reject", title="Unknown action")
    known(instance)
    event, role = ACTIONS[action]
    who = auth.authorize(headers, role)
    found = await client.get_status(instance, show_input=True)
    if not running(found):
        raise ConflictError(f"{instance} is not running", title="Not running")
    if action == "approve" and same_person(request_of(found), who):
        log_event(log, "failover.self_approval_refused", level=30, instance=instance, by=who.name)
        raise AuthorizationError("the operator who asked for a failover cannot approve it", title="Self-approval")
    await client.raise_event(instance, event, {"by": who.name, "by_id": who.id})
    log_event(log, f"failover.{action}", instance=instance, by=who.name)
    return event


# ----------------------------------------------------------------------------------------------- proposals


async def propose(client: Any, region: str, reason: str, ref: str) -> str:
    """Propose an unplanned failover of `region` to its pair (an alert, a Resource Health share, the ANQ watch);
    what came of it: proposed, proposed_only, duplicate, debounced or ignored (unpaired, fenced)."""
    from shared import clock, events
    from shared.config.loader import get_topology
    from shared.failover import proposals
    from shared.state import holds

    topology = get_topology()
    target = proposals.target_of(topology, region)
    if target is None:
        log_event(log, "failover.proposal_ignored", ref=ref, region=region, reason=f"{region} has no pair")
        return "ignored"
    held = (await asyncio.to_thread(holds.read)).get(region)
    if held is not None and held.kind == "fenced":  # failed over already: it waits for a failback
        log_event(log, "failover.proposal_ignored", ref=ref, region=region, reason=f"{region} is fenced by {held.instance}")
        return "ignored"
    instance = proposals.pair_id(region, target)
    existing = await client.get_status(instance)
    if running(existing):
        log_event(log, "failover.proposal_duplicate", ref=ref, instance=instance, reason=reason)
        return "duplicate"
    if proposals.debounced(topology, existing.last_updated_time if existing else None, clock.now()):
        log_event(log, "failover.proposal_debounced", ref=ref, instance=instance)
        return "debounced"
    request = proposals.proposal_request(region, reason, target)
    if topology.policies.failover.propose_only:
        log_event(log, "failover.proposed_only", ref=ref, instance=instance, reason=reason)
        await asyncio.to_thread(events.publish, "Tandem.Failover.Proposed", instance, {**request, "started": False})
        return "proposed_only"
    await client.start_new(ORCHESTRATOR, instance, request)
    log_event(log, "failover.proposed", ref=ref, instance=instance, reason=reason)
    return "proposed"


async def withdraw(client: Any, region: str, reason: str, ref: str) -> str:
    """The alert behind a proposal resolved: cancel the proposed failover while it still waits for approval."""
    from shared.config.loader import get_topology
    from shared.failover import proposals

    target = proposals.target_of(get_topology(), region)
    if target is None:
        return "ignored"
    instance = proposals.pair_id(region, target)
    found = await client.get_status(instance, show_input=True)
    request = request_of(found)
    waiting = running(found) and (found.custom_status or {}).get("state") == "awaiting approval"
    if not waiting or request.get("requested_by") != "alert" or request.get("source") != region:
        log_event(log, "failover.withdraw_ignored", ref=ref, instance=instance, reason="nothing proposed awaits approval")
        return "ignored"
    await client.raise_event(instance, "Cancel", {"by": "alert resolved", "reason": reason})
    log_event(log, "failover.proposal_withdrawn", ref=ref, instance=instance, reason=reason)
    return "withdrawn"


async def on_health_event(client: Any, gateway: Any, event_id: str, event_type: str, topic: str | None,
                          data: Callable[[], Any]) -> str:  # fmt: skip
    """Resource Health for a session host VM (HealthResources): more than the policy's share of a region
    unplanned-unavailable proposes an unplanned failover. Malformed events are logged and rejected, never retried."""
    from shared import clock
    from shared.config.loader import get_topology
    from shared.errors import InputError
    from shared.failover import proposals, signals

    topology = get_topology()
    try:
        signal = signals.parse(topology, event_type, topic, data())
    except (InputError, ValueError, RecursionError) as exc:
        log_event(log, "failover.event_rejected", level=30, id=event_id, type=event_type[:200], reason=str(exc)[:300])
        return "rejected"
    outcome = (
        signal
        if isinstance(signal, signals.Ignored)
        else await asyncio.to_thread(proposals.vm_share, topology, gateway, signal, clock.now())
    )
    if isinstance(outcome, signals.Ignored):
        log_event(log, "failover.event_ignored", id=event_id, type=event_type, reason=outcome.why)
        return "ignored"
    return await propose(client, outcome.region, outcome.reason, event_id)


async def watch(client: Any, qumulo_for: Any, now: datetime | None = None) -> list[str]:
    """Probe each ANQ cluster from Tandem's region; propose for one that has not answered for `watch_window`."""
    from shared import clock
    from shared.config.loader import get_topology
    from shared.failover import watch as anq

    found = await asyncio.to_thread(anq.probe_all, get_topology(), qumulo_for, now or clock.now())
    return [await propose(client, proposal.region, proposal.reason, "anq-watch") for proposal in found]
