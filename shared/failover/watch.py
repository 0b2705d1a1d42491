"""Tandem's own watch of each ANQ cluster: Azure sends no Resource Health event for an ANQ resource over Event
Grid, so Tandem asks the cluster itself, from its own region, with the cheapest authenticated call
(`GET /v1/session/who-am-i`, tried once). A cluster that has not answered for the policy's `watch_window` is
proposed for failover, once per outage (an approver who rejects it is not asked again every few minutes);
one answer ends the outage. The VM share of the same region, as Resource Health last
reported it, goes into the reason. A region a failover holds as its source, or has fenced, is not probed: the
failover watches its return itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.config.model import Region, Topology
from shared.failover import signals
from shared.telemetry import get_logger, log_event

log = get_logger("failover")
TABLE = "anqwatch"


def probe_all(topology: Topology, client_for: Callable[[Region], Any], now: datetime) -> list[signals.Proposal]:
    """Probe every paired region's cluster once; the proposals for clusters down longer than the window."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.failover.proposals import paired_regions, vm_down_summary
    from shared.state import holds
    from shared.state.tables import table

    rows = table(TABLE)
    window = topology.policies.failover.watch_window
    proposals = []
    try:
        held = holds.read()
    except Exception:  # unreadable holds: probe everything; a proposal's own checks still apply
        held = {}
    for region in paired_regions(topology):
        hold = held.get(region.name)
        if hold is not None and hold.kind in ("source", "fenced"):
            continue  # being failed over, or failed over already: its return is watched by the failover itself
        try:
            client_for(region).who_am_i()
            error = ""
        except Exception as exc:  # unreachable, timed out, refused: all mean "not answering Tandem"
            error = f"{type(exc).__name__}: {exc}"[:300]
        try:
            known = dict(rows.get_entity("watch", region.name))
        except ResourceNotFoundError:
            known = {}
        since = datetime.fromisoformat(known["failing_since"]) if known.get("failing_since") else None
        row = {
            "PartitionKey": "watch",
            "RowKey": region.name,
            "last_ok": known.get("last_ok", ""),
            "failing_since": "",
            "last_error": error,
            "proposed_for": "",
        }
        if not error:
            if since is not None:
                log_event(
                    log, "failover.anq_answering", region=region.name, cluster=region.anq.name, down_s=(now - since).total_seconds()
                )
            rows.upsert_entity({**row, "last_ok": now.isoformat()})
            continue
        since = since or now
        down_for = now - since
        log_event(
            log,
            "failover.anq_not_answering",
            level=30,
            region=region.name,
            cluster=region.anq.name,
            down_s=down_for.total_seconds(),
            error=error,
        )
        propose = down_for >= window and known.get("proposed_for") != since.isoformat()  # once per outage
        rows.upsert_entity(
            {
                **row,
                "failing_since": since.isoformat(),
                "proposed_for": since.isoformat() if propose else known.get("proposed_for", ""),
            }
        )
        if propose:
            minutes = int(down_for.total_seconds() // 60)
            proposals.append(
                signals.Proposal(
                    region.name,
                    f"{region.anq.name} has not answered Tandem for {minutes} "
                    f"min ({error.split(':')[0]}); {vm_down_summary(region, now)}"[:200],
                )
            )
    return proposals
