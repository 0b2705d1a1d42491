"""The failover's gates, each a Durable activity that reads and never changes anything: the admission of an
orchestration's input, the preflight of both regions, where FSLogix looks, and the verification that the moved users
have seats and their own profiles."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.clock import iso, now_iso
from shared.config.model import Region
from shared.errors import InputError
from shared.failover.estate import (
    Link,
    StepsBase,
    links,
    pairing_of,
    pool_refs,
    region,
)
from shared.telemetry import get_logger, log_event

log = get_logger("failover")


class Checks(StepsBase):
    """Read-only gates: what must hold before (and after) users move."""

    def admit(self, req: Any) -> dict[str, Any]:
        """The policy an orchestration runs under, from the topology, for an input Tandem built (a paired source
        and target, a known mode, a bounded reason); InputError for anything else."""
        from shared import payloads
        from shared.failover.proposals import policy

        if not isinstance(req, dict):
            raise InputError("the orchestration input is not an object")
        fields = {k: req.get(k) for k in ("source", "target", "mode", "reason")}
        request = payloads.validate(payloads.FailoverRequest, fields, "orchestration input")
        if not isinstance(req.get("requested_by"), str) or len(req["requested_by"]) > 256:
            raise InputError("orchestration input: requested_by must be a string")
        pairing_of(self.topology, request.source, request.target)
        return policy(self.topology)

    def preflight(self, req: dict[str, Any]) -> dict[str, Any]:
        """Read one side: pools (sessions, hosts) and the replication state; never changes anything."""
        reg = region(self.topology, req["region"])
        side = req["side"]
        other = region(self.topology, req["other"])
        problems: list[str] = []
        reads = self.gateway.read_pools(pool_refs(reg))
        problems += [f"{key}: {err}" for key, err in reads.errors.items()]
        read_ok = not reads.errors
        sessions = sum(len(h.sessions) for s in reads.states.values() for h in s.hosts)
        # what Tandem recorded of the source stands in for what it cannot read now (an outage)
        recorded = self.autoscaler.recorded_sessions(reg.name) if side == "source" and not read_ok else 0
        available = sum(1 for s in reads.states.values() for h in s.hosts if h.status == "Available")
        hosts = sum(len(s.hosts) for s in reads.states.values())
        relationships = []
        try:
            client = self.qumulo(reg)
            source_reg, target_reg = (reg, other) if side == "source" else (other, reg)
            for link in links(self.topology, source_reg.name, target_reg.name):
                if side == "target" and req.get("mode") == "failback":
                    client.file_attributes(link.target_path)  # returning: reachable is all we ask before re-protecting
                elif side == "target":
                    rid = self._relationship(reg, link)
                    status = client.target_status(rid)
                    relationships.append(
                        {
                            "id": rid,
                            "state": status.state,
                            "recovery_point": iso(status.recovery_point),
                            "read_only": status.target_root_read_only,
                        }
                    )
                    if status.state != "ESTABLISHED":
                        problems.append(f"relationship {rid} into {link.target_path} is {status.state}")
                else:
                    client.file_attributes(link.source_path)
                    if req.get("mode") in ("planned", "drill"):  # a job must run now: check it can
                        problems += self._job_can_run(client, self._relationship(other, link), link)
        except Exception as exc:  # a side that cannot be read is a finding, not a crash
            problems.append(f"{reg.anq.name}: {exc}")
        into = [link.target_path for link in links(self.topology, other.name, reg.name)] if side == "target" else []
        paths, profile_problems = (
            ([], []) if side == "source" and req.get("mode") == "unplanned" else self.profile_paths(reg, reads, into)
        )
        return {
            "region": reg.name,
            "side": side,
            "ok": not problems,
            "problems": problems,
            "sessions": sessions,
            "read_ok": read_ok,
            "recorded_sessions": recorded,
            "hosts": hosts,
            "available": available,
            "relationships": relationships,
            "profile_paths": paths,
            "profile_problems": profile_problems,
            "profile_unread": [p["pool"] for p in paths if p["source"] == "none"],
        }

    def profile_check(self, req: dict[str, Any]) -> dict[str, Any]:
        """The profile-path check of the region `region` receiving users from `other`, once its hosts run: done
        when every pool could be read (a host booting is not done yet), with the problems found."""
        reg, other = region(self.topology, req["region"]), region(self.topology, req["other"])
        reads = self.gateway.read_pools(pool_refs(reg))
        paths, problems = self.profile_paths(reg, reads, [link.target_path for link in links(self.topology, other.name, reg.name)])
        unread = [p["pool"] for p in paths if p["source"] == "none"]
        return {
            "done": not unread,
            "problems": problems,
            "profile_paths": paths,
            "detail": f"waiting for a running host in {', '.join(unread)}" if unread else "",
        }

    def profile_paths(self, reg: Region, reads: Any, into: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """Where each pool's FSLogix looks, read from one running host through Run Command (the cached reading
        when none runs), checked against the directories `into` that the failover makes writable in this region.
        Returns (per pool: host, read_at, locations, source, problems) and the problems that block a move."""
        from shared.failover import fslogix
        from shared.state import tables

        shares: list[fslogix.Share] | None = None
        share_error = ""
        if into:
            try:
                shares = [fslogix.Share(s.share_name, s.fs_path) for s in self.qumulo(reg).smb_shares()]
            except Exception as exc:
                share_error = f"cannot list the SMB shares of {reg.anq.name}: {exc}"[:300]
        cache = tables.table("fslogixsettings")
        found, problems = [], []
        for ref in pool_refs(reg):
            settings, source, why = None, "read", ""
            state = reads.states.get(ref.key)
            running = [h for h in (state.hosts if state else ()) if h.power == "running" and h.vm_id]
            running.sort(key=lambda h: (h.status != "Available", h.name))
            for host in running[:2]:  # a second host when the first cannot answer (agent not ready)
                try:
                    stdout = self.gateway.run_command(host.vm_id, fslogix.SCRIPT)
                    settings = fslogix.Settings.from_output(host.name, now_iso(), stdout)
                    break
                except Exception as exc:
                    why = f"{host.name}: {exc}"[:300]
            if settings is None:
                try:
                    row = cache.get_entity(tables.safe_key(reg.name), tables.safe_key(ref.name))
                    settings, source = fslogix.Settings.from_json(json.loads(row["settings"])), "cache"
                except Exception:
                    why = why or "no running host to read"
            entry: dict[str, Any] = {"pool": ref.name, "source": source if settings else "none", "problems": []}
            if settings is not None:
                entry.update(
                    host=settings.host,
                    read_at=settings.read_at,
                    kind=settings.kind,
                    locations=list(settings.locations),
                    enabled=settings.enabled,
                    flip_flop=settings.flip_flop,
                )
            for target_dir in into:
                if share_error:
                    problem: str | None = share_error
                elif settings is None:
                    problem = (
                        f"pool {ref.name}: cannot read where its FSLogix looks for profiles ({why}) and no "
                        "earlier reading is cached: start one host of the pool and try again"
                    )
                else:
                    problem = fslogix.check(ref.name, settings, target_dir, reg.anq.name, reg.anq.smb_endpoints, shares or [])
                if problem:
                    entry["problems"].append(problem)
            problems += entry["problems"]
            found.append(entry)
            if settings is not None:  # what was read, and what the last check of it found: /api/health shows it
                cache.upsert_entity(
                    {
                        "PartitionKey": tables.safe_key(reg.name),
                        "RowKey": tables.safe_key(ref.name),
                        "region": reg.name,
                        "pool": ref.name,
                        "settings": json.dumps(settings.to_json()),
                        "problems": json.dumps(entry["problems"]),
                        "checked_at": now_iso(),
                    }
                )
        log_event(log, "failover.profile_paths", region=reg.name, pools=len(found), problems=len(problems))
        return found, list(dict.fromkeys(problems))

    def _job_can_run(self, client: Any, rid: str, link: Link) -> list[str]:
        """Why a replication job cannot start and finish now on this source relationship (the Qumulo failover
        procedure: continuous replication, no blackout window in force)."""
        from shared import clock

        config = client.source_relationship(rid)
        problems = []
        if not config.replication_enabled:
            problems.append(f"replication is disabled on {rid} ({link.source_path})")
        if config.replication_mode == "REPLICATION_SNAPSHOT_POLICY":
            problems.append(
                f"{rid} ({link.source_path}) replicates policy snapshots only: a job would not carry the "
                "latest writes; set it to REPLICATION_SNAPSHOT_POLICY_WITH_CONTINUOUS first"
            )
        window = config.blackout_at(clock.now())
        if window is not None:
            problems.append(
                f"a blackout window is in force on {rid} ({window.start_hour:02d}:{window.start_minute:02d}-"
                f"{window.end_hour:02d}:{window.end_minute:02d} {config.blackout_window_timezone}): "
                "no job can run now"
            )
        return problems

    def verify(self, req: dict[str, Any]) -> dict[str, Any]:
        """Enough Available target hosts for the moved sessions at the pool's limit, and the moved users' first
        sign-ins: done when the seats are there and `sample` users signed in since `since` (or `window_s` passed),
        with how many of them attached their own container, got a new one, or have none open (failed)."""
        from shared import clock

        reg = region(self.topology, req["target"])
        reads = self.gateway.read_pools(pool_refs(reg))
        seats = sum(
            s.max_session_limit * sum(1 for h in s.hosts if h.status == "Available" and h.allow_new_session)
            for s in reads.states.values()
        )
        answer: dict[str, Any] = {"seats": seats, "needed": int(req["sessions"])}
        if seats < int(req["sessions"]):
            return {**answer, "ok": False, "detail": f"{seats} seats for {req['sessions']} sessions"}
        if not req.get("since") or not req.get("source"):
            return {**answer, "ok": True}
        since = datetime.fromisoformat(req["since"])
        into = [link.target_path for link in links(self.topology, req["source"], reg.name)]
        sample = int(req.get("sample", 0))  # moved sessions unknown (none read or recorded): wait for `sample` anyway
        want = min(sample, int(req["sessions"])) if int(req["sessions"]) else sample
        counts = self.first_sign_ins(reg, reads, since, into, want)
        waited = (clock.now() - since).total_seconds() >= float(req.get("window_s", 0))
        done = sum(counts.values()) >= want or waited
        return {**answer, "ok": done, "profiles": counts, "detail": f"{sum(counts.values())} of {want} first sign-ins seen"}

    def first_sign_ins(self, reg: Region, reads: Any, since: datetime, into: list[str], want: int) -> dict[str, int]:
        """Classify up to `want` users who signed in to the region's pools since `since` (the broker's sessions)
        by the container they hold open on the region's cluster (its SMB open files): `own_profile` when it is
        under a replicated directory and older than the move, `new_profile` when it was created since or lies
        elsewhere, `failed_signin` when they hold none (FSLogix gave them a temporary profile)."""
        from shared.failover import fslogix

        counts = {"own_profile": 0, "new_profile": 0, "failed_signin": 0}
        if want <= 0:
            return counts
        sessions = sorted(
            (
                (s.created or since, s.upn)
                for state in reads.states.values()
                for h in state.hosts
                for s in h.sessions
                if s.created is None or s.created >= since
            ),
            key=lambda t: t[0],
        )
        users = list(dict.fromkeys(upn.lower() for _, upn in sessions if upn))[:want]
        if not users:
            return counts
        client = self.qumulo(reg)
        containers = {h.path.rsplit("/", 1)[-1].lower(): h.path for h in client.open_files() if h.path}
        for upn in users:
            path = containers.get(fslogix.container_name(upn))
            if path is None:
                counts["failed_signin"] += 1
            elif not any(path.startswith(d.rstrip("/") + "/") for d in into):
                counts["new_profile"] += 1
            else:
                born = client.file_attributes(path).creation_time
                counts["own_profile" if born is not None and born < since else "new_profile"] += 1
        return counts
