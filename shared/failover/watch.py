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

from shared.alerts import paired_regions
from shared.config.model import Region, Topology
from shared.failover import signals
from shared.telemetry import get_logger, log_event

log = get_logger("failover")
TABLE = "anqwatch"


def probe_all(topology: Topology, client_for: Callable[[Region], Any], now: datetime,
              vm_down: Callable[[Region], str]) -> list[signals.Proposal]:
    """Probe every paired region's cluster once; the proposals for clusters down longer than the window."""
    from azure.data.tables import UpdateMode

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
            ok, error = True, ""
        except Exception as exc:  # unreachable, timed out, refused: all mean "not answering Tandem"
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        known = next(iter(rows.query_entities("PartitionKey eq 'watch' and RowKey eq @r",
                                              parameters={"r": region.name})), None)
        since = datetime.fromisoformat(known["failing_since"]) if known and known.get("failing_since") else None
        if ok:
            if since is not None:
                log_event(log, "failover.anq_answering", region=region.name, cluster=region.anq.name,
                          down_s=(now - since).total_seconds())
            rows.upsert_entity({"PartitionKey": "watch", "RowKey": region.name, "failing_since": "",
                                "last_ok": now.isoformat(), "last_error": "", "proposed_for": ""})
            continue
        since = since or now
        rows.upsert_entity({"PartitionKey": "watch", "RowKey": region.name, "failing_since": since.isoformat(),
                            "last_ok": (known or {}).get("last_ok", ""), "last_error": error,
                            "proposed_for": (known or {}).get("proposed_for", "")})
        down_for = now - since
        log_event(log, "failover.anq_not_answering", level=30, region=region.name, cluster=region.anq.name,
                  down_s=down_for.total_seconds(), error=error)
        if down_for >= window and (known or {}).get("proposed_for") != since.isoformat():  # once per outage
            rows.upsert_entity({"PartitionKey": "watch", "RowKey": region.name, "proposed_for": since.isoformat()},
                               mode=UpdateMode.MERGE)
            minutes = int(down_for.total_seconds() // 60)
            proposals.append(signals.Proposal(region.name, f"{region.anq.name} has not answered Tandem for {minutes} "
                                              f"min ({error.split(':')[0]}); {vm_down(region)}"[:200]))
    return proposals
