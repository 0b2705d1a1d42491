"""The failover's records, each a Durable activity on Table storage and Tandem's events: the region holds autoscale
obeys, and the audit trail every step leaves."""

from __future__ import annotations

from typing import Any

from shared.failover.estate import (
    StepsBase,
    pool_refs,
    region,
)
from shared.telemetry import get_logger, log_event

log = get_logger("failover")


class RecordSteps(StepsBase):
    """Holds and the audit trail."""

    def hold(self, req: dict[str, Any]) -> dict[str, Any]:
        """Place the instance's holds: {instance, holds: [{region, kind, seats}]}; a target's seats are split over
        its pools by host count (evenly when the pools cannot be read)."""
        from shared import clock
        from shared.state import holds

        placed = []
        for item in req["holds"]:
            reg = region(self.topology, item["region"])
            seats, split = int(item.get("seats") or 0), {}
            if item["kind"] == "target" and seats:
                from shared.autoscale.service import split_by_hosts

                refs = pool_refs(reg)
                reads = self.gateway.read_pools(refs)
                hosts = {k: len(state.hosts) for k, state in reads.states.items()}
                split = split_by_hosts(seats, hosts if not reads.errors else {r.key: 0 for r in refs})  # unread: even
            holds.place(
                holds.Hold(reg.name, req["instance"], item["kind"], seats, clock.now().isoformat(), str(item.get("reason", "")), split)
            )
            placed.append({"region": reg.name, "kind": item["kind"], "seats": seats})
        return {"placed": placed}

    def release(self, req: dict[str, Any]) -> dict[str, Any]:
        """End the instance's holds on {regions}: another instance's hold is left as it is."""
        from shared.state import holds

        return {"released": [r for r in req["regions"] if holds.release(r, req["instance"])]}

    def audit(self, req: dict[str, Any]) -> None:
        """One row per step of a run in `<hub>failoveraudit`, and a CloudEvent for each stage. A pair's instance id is
        reused by its every drill, failover and failback, so the row key starts with the run (its first step's start
        time): a run never overwrites an earlier run's rows, and a partition lists the pair's runs in order."""
        from shared import events
        from shared.state.tables import safe_key, table

        run, key = req["run"], safe_key(f"{req['run']} {req['seq']:03d} {req['step']}")
        table("failoveraudit").upsert_entity({"PartitionKey": safe_key(req["instance"]), "RowKey": key, "run": run, **req["row"]})
        if req.get("event"):
            events.publish(req["event"], req["instance"], req["row"])
        row = req["row"]  # one line per step: what the workbook's failover panels read
        log_event(log, "failover.step", instance=req["instance"], run=req.get("run"), step=req["step"], status=row.get("status"),
                  mode=row.get("mode"), source=row.get("source"), target=row.get("target"), started=row.get("started"),
                  ended=row.get("ended"), detail=(row.get("detail") or "")[:300] or None)  # fmt: skip
