"""The failover's AVD steps, each a Durable activity acting through the Azure gateway: warm the target, drain and
undrain, log users off, move the Desktop Virtualization User assignments. Each reads the current state first, so a
repeat changes nothing twice."""

from __future__ import annotations

from typing import Any

from shared.clock import now_iso
from shared.failover.estate import (
    StepsBase,
    app_groups,
    check_outcomes,
    read_region,
    region,
)
from shared.telemetry import get_logger

log = get_logger("failover")


class AvdSteps(StepsBase):
    """Session hosts, users and assignments, through ARM."""

    def warm(self, req: dict[str, Any]) -> dict[str, Any]:
        """Size the target region for the incoming users now: its hold reserves their seats for every policy, and
        the tandem policy also hears the announcement. `undrain` first lets a fenced region's hosts serve again."""
        if req.get("undrain"):
            self.undrain({"region": req["region"]})
        pools = self.autoscaler.region_targets(req["region"])
        results = self.autoscaler.run(pools, wait_s=30, announce=int(req["sessions"]))
        failed = [r.error for r in results if r.error]
        if failed and not any(r.applied for r in results):
            raise RuntimeError(f"warm {req['region']}: {failed[0]}"[:300])
        return {"started": sum(1 for r in results for a in r.applied if a.step.action == "start" and a.ok)}

    def drain(self, req: dict[str, Any]) -> dict[str, Any]:
        """Drain every host of the region's pools and warn the active users (again on a retry: harmless)."""
        reg = region(self.topology, req["region"])
        reads = read_region(self.gateway, reg)
        drained, warned = 0, 0
        for state in reads.states.values():
            outcomes = self.gateway.set_drain(state.ref, [h.name for h in state.hosts if h.allow_new_session], True)
            check_outcomes(outcomes, "drain")
            drained += sum(o.ok for o in outcomes)
            if req.get("message"):
                active = [(h.name, s.id) for h in state.hosts for s in h.sessions if s.state == "Active"]
                warned += sum(o.ok for o in self.gateway.send_messages(state.ref, active, "Regional failover", req["message"]))
        return {"drained": drained, "warned": warned}

    def undrain(self, req: dict[str, Any]) -> dict[str, Any]:
        """Undo a drain (a cancelled failover)."""
        reg = region(self.topology, req["region"])
        reads = read_region(self.gateway, reg)
        done = 0
        for state in reads.states.values():
            outcomes = self.gateway.set_drain(state.ref, [h.name for h in state.hosts if not h.allow_new_session], False)
            check_outcomes(outcomes, "undrain")
            done += len(outcomes)
        return {"undrained": done}

    def logoff(self, req: dict[str, Any]) -> dict[str, Any]:
        """Sign out every remaining session of the region's pools (their profiles are written on sign-out)."""
        reg = region(self.topology, req["region"])
        reads = read_region(self.gateway, reg)
        done = 0
        for state in reads.states.values():
            outcomes = self.gateway.logoffs(state.ref, [(h.name, s.id) for h in state.hosts for s in h.sessions])
            check_outcomes(outcomes, "log off")
            done += len(outcomes)
        return {"logged_off": done}

    def move_assignments(self, req: dict[str, Any]) -> dict[str, Any]:
        """Grant the source's users on the target's application groups, then revoke them at the source."""
        source, target = region(self.topology, req["source"]), region(self.topology, req["target"])
        outcomes = self.gateway.move_assignments(app_groups(source), app_groups(target))
        failed = [o.detail or o.target for o in outcomes if not o.ok]
        if failed:
            raise RuntimeError(f"assignments not moved: {failed[:3]}")
        return {"changes": sum(o.result == "done" for o in outcomes), "at": now_iso()}
