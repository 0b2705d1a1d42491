"""The autoscale sweep of a large estate: its pools in partitions, each evaluated as an activity of one singleton
orchestration, so Flex Consumption spreads the work over instances.

A partition keeps together the pools whose session hosts share a VM resource group (in one subscription): that
group's VM listing is read once per partition, as in a single-process evaluation. A small estate (one partition)
is evaluated in the timer's own process; an orchestration would only add its overhead.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

INSTANCE = "autoscale-sweep"  # one sweep at a time: a timer that finds it running starts none
PARTITION_POOLS = 25  # default TANDEM_AUTOSCALE_PARTITION_POOLS
RUNNING = ("Pending", "Running", "ContinuedAsNew")


def partition_size() -> int:
    """Pools per partition (TANDEM_AUTOSCALE_PARTITION_POOLS, default 25)."""
    from shared import settings

    raw = settings.get(settings.AUTOSCALE_PARTITION_POOLS) or ""
    return max(1, int(raw)) if raw.strip().isdigit() else PARTITION_POOLS


def partitions(pools: Sequence[tuple[str, str, Sequence[str]]], size: int) -> list[list[str]]:
    """Pool keys in partitions of about `size` pools: `pools` are (key, subscription, VM resource groups). Pools
    that share a VM resource group are never split (such a group may make a partition larger than `size`);
    groups are packed largest first into the first partition with room."""
    parent = {key: key for key, _, _ in pools}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    owner: dict[tuple[str, str], str] = {}
    for key, subscription, groups in pools:
        for group in groups:
            first = owner.setdefault((subscription.lower(), group.lower()), key)
            parent[root(key)] = root(first)
    together: dict[str, list[str]] = {}
    for key, _, _ in pools:
        together.setdefault(root(key), []).append(key)
    bins: list[list[str]] = []
    for members in sorted(together.values(), key=lambda g: (-len(g), g[0])):
        room = next((b for b in bins if len(b) + len(members) <= size), None)
        if room is None:
            bins.append(sorted(members))
        else:
            room.extend(sorted(members))
    return bins


def summary(results: Sequence[Any]) -> dict[str, int]:
    """What an evaluation of many pools did (a list of Evaluation): the timer's and each partition's log line."""
    return {
        "pools": len(results),
        "failed": sum(1 for r in results if r.error),
        "left_alone": sum(1 for r in results if r.decision.policy == "left"),
        "actions": sum(len(r.applied) for r in results),
    }


def running(status: Any) -> bool:
    """Is the sweep instance of this status (a DurableOrchestrationStatus, or None) still at work?"""
    runtime = getattr(status, "runtime_status", None)
    name = getattr(runtime, "value", runtime)
    return name in RUNNING


def orchestrate(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    """The sweep: every partition an activity, all at once; the totals. A partition that fails is counted, and
    the next sweep evaluates its pools again (no retries: a minute later is a fresh read anyway)."""
    request = context.get_input() or {}
    parts = [p for p in request.get("partitions") or [] if isinstance(p, list) and all(isinstance(k, str) for k in p)]
    tasks = [context.call_activity("autoscale_partition", {"pools": part}) for part in parts]
    results = (yield context.task_all(tasks)) if tasks else []
    total = {"partitions": len(parts), "pools": 0, "failed": 0, "left_alone": 0, "actions": 0}
    for result in results:
        for name in ("pools", "failed", "left_alone", "actions"):
            total[name] += int((result or {}).get(name) or 0)
    return total


async def tick(client: Any, scaler: Any, *, past_due: bool = False) -> str:
    """The timer's turn: an estate of one partition is evaluated in this process; a larger one as the singleton sweep
    orchestration through the Durable `client` (none started while one runs). Returns what it did."""
    import asyncio

    from shared.telemetry import get_logger, log_event

    log = get_logger("autoscale")
    parts = partitions([(t.ref.key, t.ref.subscription, t.ref.vm_resource_groups) for t in scaler.targets.values()],
                       partition_size())  # fmt: skip
    if len(parts) <= 1:
        log_event(log, "autoscale.run", past_due=past_due, **summary(await asyncio.to_thread(scaler.run)))
        return "evaluated"
    if running(await client.get_status(INSTANCE)):
        log_event(log, "autoscale.sweep_running", level=30, instance=INSTANCE, past_due=past_due)
        return "sweep running"
    await client.start_new("autoscale_sweep", INSTANCE, {"partitions": parts})
    log_event(log, "autoscale.sweep_started", partitions=len(parts), pools=sum(map(len, parts)), past_due=past_due)
    return "sweep started"


def partition(scaler: Any, request: dict[str, Any] | None) -> dict[str, int]:
    """One partition of a sweep (an activity): its pools evaluated as the timer would; keys the topology does not
    know are skipped."""
    from shared.telemetry import get_logger, log_event

    keys = {str(k) for k in (request or {}).get("pools") or []}
    result = summary(scaler.run([t for key, t in scaler.targets.items() if key in keys]))
    log_event(get_logger("autoscale"), "autoscale.partition", **result)
    return result
