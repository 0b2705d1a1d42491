"""Applies a decision through the gateway, safely and idempotently, and says what happened to each step.

Order: undrain, start (one parallel batch), drain, message, logoff, deallocate. Every deallocation is
guarded: the host is drained first, its sessions are re-read, and it is stopped only if the re-read still
allows it; afterwards it is undrained, so no host is ever left drained by Tandem.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.autoscale.planner import Decision, Rules, Step
from shared.azure.gateway import AzureGateway
from shared.azure.models import HostState, Outcome, PoolState, UserSession

MESSAGE_TITLE = "Session host shutting down"


@dataclass(frozen=True)
class Applied:
    """One step and what came of it: done, already, skipped, conflict, not_found, failed, or dry_run."""

    step: Step
    result: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """The host is now as the step asked."""
        return self.result in ("done", "already", "dry_run")


def _by(outcomes: list[Outcome]) -> dict[str, Outcome]:
    return {o.target: o for o in outcomes}


def _allowed(sessions: list[UserSession], rules: Rules, forced: bool) -> bool:
    if forced:
        return not sessions
    if rules.stop_hosts_when == "ZeroActiveSessions":
        return not any(s.active for s in sessions)
    return not sessions


def execute(
    gateway: AzureGateway, pool: PoolState, decision: Decision, rules: Rules, *, message: str, dry_run: bool = False
) -> list[Applied]:
    """Apply `decision` to `pool`; with `dry_run` nothing is changed and every step is reported as dry_run."""
    if dry_run:
        return [Applied(s, "dry_run") for s in decision.actions]
    hosts = {h.name: h for h in pool.hosts}
    applied: list[Applied] = []

    def steps(action: str) -> list[Step]:
        return [s for s in decision.actions if s.action == action and s.host in hosts]

    applied += [Applied(s, "not_found", "no such host") for s in decision.actions if s.host not in hosts]
    undrain = steps("undrain")
    if undrain:
        outcomes = _by(gateway.set_drain(pool.ref, [s.host for s in undrain], False))
        applied += [Applied(s, outcomes[s.host].result, outcomes[s.host].detail) for s in undrain]
    start = [s for s in steps("start") if hosts[s.host].vm_id]
    if start:
        outcomes = _by(gateway.start_vms([hosts[s.host].vm_id for s in start]))
        applied += [Applied(s, outcomes[hosts[s.host].vm_id].result, outcomes[hosts[s.host].vm_id].detail) for s in start]
    drain = steps("drain")
    if drain:
        outcomes = _by(gateway.set_drain(pool.ref, [s.host for s in drain], True))
        applied += [Applied(s, outcomes[s.host].result, outcomes[s.host].detail) for s in drain]
    for s in steps("message"):
        results = [
            gateway.send_message(pool.ref, s.host, x.id, MESSAGE_TITLE, message) for x in hosts[s.host].sessions if x.state == "Active"
        ]
        applied.append(Applied(s, "done" if all(o.ok for o in results) else "failed", f"{len(results)} sessions"))
    forced = {s.host for s in steps("logoff")}
    for s in steps("logoff"):
        results = [gateway.logoff(pool.ref, s.host, x.id) for x in gateway.host_sessions(pool.ref, s.host)]
        applied.append(Applied(s, "done" if all(o.ok for o in results) else "failed", f"{len(results)} sessions"))
    applied += _deallocate(gateway, pool, hosts, steps("deallocate"), rules, forced)
    return applied


def _deallocate(
    gateway: AzureGateway, pool: PoolState, hosts: dict[str, HostState], wanted: list[Step], rules: Rules, forced: set[str]
) -> list[Applied]:
    """Drain, re-read, stop what is still allowed, then undrain: whatever fails on the way, no host Tandem drained
    to look is left drained (the undrain runs in `finally`, and its result is checked and reported)."""
    if not wanted:
        return []
    applied: list[Applied] = []
    drained: list[str] = []
    stopped: set[str] = set()
    try:
        to_drain = [s.host for s in wanted if hosts[s.host].allow_new_session]
        if to_drain:  # no new user may land while we look
            results = _by(gateway.set_drain(pool.ref, to_drain, True))
            drained = [h for h in to_drain if h in results and results[h].result != "failed"]
            refused = {h for h in to_drain if h not in drained}
        else:
            refused = set()
        go: list[Step] = []
        for s in wanted:
            if s.host in refused:  # not drained: a user could land while we stop it
                applied.append(Applied(s, "skipped", "drain before stopping failed"))
                continue
            try:
                sessions = gateway.host_sessions(pool.ref, s.host)  # the re-read just before deallocation
            except Exception as exc:  # cannot see the sessions: do not stop it
                applied.append(Applied(s, "failed", f"session re-read failed: {type(exc).__name__}"))
                continue
            if _allowed(sessions, rules, s.host in forced) and hosts[s.host].vm_id:
                go.append(s)
            else:
                applied.append(Applied(s, "skipped", f"{len(sessions)} sessions on re-read"))
        outcomes = _by(gateway.deallocate_vms([hosts[s.host].vm_id for s in go])) if go else {}
        for s in go:
            o = outcomes[hosts[s.host].vm_id]
            applied.append(Applied(s, o.result, o.detail))
            if o.ok:
                stopped.add(s.host)
    finally:
        # never leave a host drained: stopped hosts, and the ones drained only to look, accept sessions again
        release = sorted(stopped | set(drained))
        if release:
            undone = _by(gateway.set_drain(pool.ref, release, False))
            left = [h for h in release if h not in undone or not undone[h].ok]
            if left:
                applied.append(Applied(Step("undrain", left[0], "release after stop"), "failed", f"left drained: {', '.join(left)}"))
    return applied
