"""The failover's steps as idempotent operations on ARM and Qumulo; each is one Durable activity.

Every step takes a plain-JSON request and returns a plain-JSON result, so the orchestration can replay it,
and can run again without changing anything twice (drain, fence, make-writable and assignment moves all
read the current state first; repeating them is a no-op).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.azure.models import PoolRef
from shared.clock import iso, now_iso
from shared.config.model import Pairing, Region, Topology
from shared.errors import InputError
from shared.telemetry import get_logger, log_event

log = get_logger("failover")


@dataclass(frozen=True)
class Link:
    """One replicated profile directory between the two regions, in the direction of the failover."""

    source_path: str
    target_path: str
    relationship_id: str | None


def pairing_of(topology: Topology, source: str, target: str) -> Pairing:
    """The pairing joining `source` and `target`; InputError otherwise."""
    for pairing in topology.pairings:
        if {pairing.primary, pairing.secondary} == {source, target}:
            return pairing
    raise InputError(f"regions {source!r} and {target!r} are not paired in the topology")


def region(topology: Topology, name: str) -> Region:
    """A region by name; InputError when the topology has none."""
    found = next((r for r in topology.regions if r.name == name), None)
    if found is None:
        raise InputError(f"no region {name!r} in the topology")
    return found


def links(topology: Topology, source: str, target: str) -> list[Link]:
    """The replicated directories, oriented from `source` to `target` (failback runs them backwards)."""
    pairing = pairing_of(topology, source, target)
    forward = pairing.primary == source
    return [
        Link(
            r.source_directory if forward else r.target_directory,
            r.target_directory if forward else r.source_directory,
            r.relationship_id,
        )
        for r in pairing.replication
    ]


def pool_refs(reg: Region) -> list[PoolRef]:
    """The region's pools as gateway references."""
    return [PoolRef.of(reg, p) for p in reg.host_pools]


def app_groups(reg: Region) -> list[str]:
    """The ARM ids of the region's application groups whose assignments move."""
    return [
        f"/subscriptions/{p.subscription_id or reg.subscription_id}/resourceGroups/{p.resource_group}/providers/"
        f"Microsoft.DesktopVirtualization/applicationGroups/{g}"
        for p in reg.host_pools
        for g in p.application_groups
    ]


class Steps:
    """The operations, given the app's long-lived clients."""

    def __init__(self, topology: Topology, gateway: Any, qumulo: Any, autoscaler: Any, snapshots: Any) -> None:
        self.topology, self.gateway, self.qumulo = topology, gateway, qumulo
        self.autoscaler, self.snapshots = autoscaler, snapshots

    def _relationship(self, target: Region, link: Link) -> str:
        """The relationship id: from the topology, else found on the target cluster by its target path."""
        if link.relationship_id:
            return link.relationship_id
        for status in self.qumulo(target).target_statuses():
            if status.target_root_path.rstrip("/") == link.target_path:
                return str(status.id)
        raise InputError(f"no replication relationship into {link.target_path} on {target.anq.name}")

    # ----------------------------------------------------------------- preflight

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

    # ----------------------------------------------------------------- hosts and users

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
        reads = _read(self.gateway, reg)
        drained, warned = 0, 0
        for state in reads.states.values():
            outcomes = self.gateway.set_drain(state.ref, [h.name for h in state.hosts if h.allow_new_session], True)
            _check(outcomes, "drain")
            drained += sum(o.ok for o in outcomes)
            if req.get("message"):
                active = [(h.name, s.id) for h in state.hosts for s in h.sessions if s.state == "Active"]
                warned += sum(o.ok for o in self.gateway.send_messages(state.ref, active, "Regional failover", req["message"]))
        return {"drained": drained, "warned": warned}

    def undrain(self, req: dict[str, Any]) -> dict[str, Any]:
        """Undo a drain (a cancelled failover)."""
        reg = region(self.topology, req["region"])
        reads = _read(self.gateway, reg)
        done = 0
        for state in reads.states.values():
            outcomes = self.gateway.set_drain(state.ref, [h.name for h in state.hosts if not h.allow_new_session], False)
            _check(outcomes, "undrain")
            done += len(outcomes)
        return {"undrained": done}

    def logoff(self, req: dict[str, Any]) -> dict[str, Any]:
        """Sign out every remaining session of the region's pools (their profiles are written on sign-out)."""
        reg = region(self.topology, req["region"])
        reads = _read(self.gateway, reg)
        done = 0
        for state in reads.states.values():
            outcomes = self.gateway.logoffs(state.ref, [(h.name, s.id) for h in state.hosts for s in h.sessions])
            _check(outcomes, "log off")
            done += len(outcomes)
        return {"logged_off": done}

    def handles(self, req: dict[str, Any]) -> dict[str, Any]:
        """Open SMB handles under the source's replicated directories: FSLogix still holds (or is writing) these
        containers, so fencing now would refuse their last write. Done when none is open."""
        source, target = region(self.topology, req["source"]), region(self.topology, req["target"])
        roots = [link.source_path.rstrip("/") + "/" for link in links(self.topology, source.name, target.name)]
        open_ = [h for h in self.qumulo(source).open_files() if any(h.path.startswith(r) for r in roots)]
        users = sorted({h.owner for h in open_})
        return {
            "done": not open_,
            "open": len(open_),
            "users": users[:20],
            "detail": f"{len(open_)} profile containers still open ({', '.join(users[:3])})" if open_ else "",
        }

    def move_assignments(self, req: dict[str, Any]) -> dict[str, Any]:
        """Grant the source's users on the target's application groups, then revoke them at the source."""
        source, target = region(self.topology, req["source"]), region(self.topology, req["target"])
        outcomes = self.gateway.move_assignments(app_groups(source), app_groups(target))
        failed = [o.detail or o.target for o in outcomes if not o.ok]
        if failed:
            raise RuntimeError(f"assignments not moved: {failed[:3]}")
        return {"changes": sum(o.result == "done" for o in outcomes), "at": now_iso()}

    # ----------------------------------------------------------------- storage

    def fence(self, req: dict[str, Any]) -> dict[str, Any]:
        """Set (or clear) read-only on the source directories; returns the moment it took effect."""
        from shared import clock

        source, target = region(self.topology, req["source"]), region(self.topology, req["target"])
        client = self.qumulo(source)
        ids = req.get("relationships") or [self._relationship(target, link) for link in links(self.topology, source.name, target.name)]
        for rid in ids:
            client.set_source_read_only(rid, bool(req["read_only"]))
        return {"relationships": ids, "at": clock.now().isoformat()}

    def unfence(self, req: dict[str, Any]) -> dict[str, Any]:
        """A roll-back's own step (not `fence` again, so a fault in that step cannot block its undo): writable again."""
        return self.fence({**req, "read_only": False})

    def replicate(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start a replication job now on each relationship."""
        source = region(self.topology, req["source"])
        for rid in req["relationships"]:
            self.qumulo(source).replicate(rid)
        return {"started": len(req["relationships"])}

    def replicated(self, req: dict[str, Any]) -> dict[str, Any]:
        """Has a job that started after `after` finished on every relationship? (a failed job is an error)"""
        source = region(self.topology, req["source"])
        after = datetime.fromisoformat(req["after"])
        done, points = True, {}
        for rid in req["relationships"]:
            status = self.qumulo(source).source_status(rid)
            if status.job_failed:
                raise RuntimeError(f"replication job on {rid} failed: {status.error_from_last_job}")
            points[rid] = iso(status.recovery_point)
            done = done and status.caught_up(after)
        return {"done": done, "recovery_points": points}

    def snapshot_target(self, req: dict[str, Any]) -> dict[str, Any]:
        """A labelled snapshot of every target directory before it is made writable."""
        target, source = region(self.topology, req["target"]), req["source"]
        ids = {
            link.target_path: self.snapshots.take_now(target.name, link.target_path, req["label"])
            for link in links(self.topology, source, target.name)
        }
        return {"snapshots": ids}

    def make_writable(self, req: dict[str, Any]) -> dict[str, Any]:
        """Make the target directories writable (the point of no return); repeated calls are no-ops."""
        target = region(self.topology, req["target"])
        client = self.qumulo(target)
        states = {rid: client.make_writable(rid).state for rid in req["relationships"]}
        return {"states": states}

    def writable(self, req: dict[str, Any]) -> dict[str, Any]:
        """Are the target directories writable yet?"""
        target = region(self.topology, req["target"])
        client = self.qumulo(target)
        statuses = [client.target_status(rid) for rid in req["relationships"]]
        return {"done": all(s.writable for s in statuses)}

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

    # ----------------------------------------------------------------- failback and fencing

    def relationships(self, req: dict[str, Any]) -> dict[str, Any]:
        """The relationship ids between the two regions (from the topology, else found on either cluster)."""
        source, target = region(self.topology, req["source"]), region(self.topology, req["target"])
        ids = []
        for link in links(self.topology, source.name, target.name):
            if link.relationship_id:
                ids.append(link.relationship_id)
                continue
            found = [
                s.id
                for reg in (target, source)
                for s in self.qumulo(reg).target_statuses()
                if s.target_root_path.rstrip("/") in (link.target_path, link.source_path)
            ]
            if not found:
                raise InputError(f"no replication relationship between {link.source_path} and {link.target_path}")
            ids.append(found[0])
        return {"relationships": ids}

    def reverse(self, req: dict[str, Any]) -> dict[str, Any]:
        """On the region that now serves (a disconnected target): become the replication source again."""
        new_source, peer = region(self.topology, req["source"]), region(self.topology, req["peer"])
        client = self.qumulo(new_source)
        done = {}
        for rid in req["relationships"]:
            if any(s.id == rid for s in client.source_statuses()):
                done[rid] = rid  # reversed already (a retried step)
                continue
            address = client.target_status(rid).source_address or _host(peer.anq.address)  # the replication address
            done[rid] = client.reverse(rid, address).id
        for rid in done:  # reversal re-applies retained configuration: the new source must be writable
            client.set_source_read_only(rid, False)
        return {"reversed": list(done)}

    def reconnect(self, req: dict[str, Any]) -> dict[str, Any]:
        """On the returning region: reconnect as target, discarding its writes since the recovery point."""
        from shared import clock

        target, asked = region(self.topology, req["target"]), clock.now().isoformat()
        return {"states": {rid: self.qumulo(target).reconnect(rid).state for rid in req["relationships"]}, "at": asked}

    def reconnected(self, req: dict[str, Any]) -> dict[str, Any]:
        """Are the relationships established again on the target side?"""
        from shared import clock

        target = region(self.topology, req["target"])
        statuses = [self.qumulo(target).target_status(rid) for rid in req["relationships"]]
        return {"done": all(s.established for s in statuses), "at": clock.now().isoformat()}

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

    def try_fence(self, req: dict[str, Any]) -> dict[str, Any]:
        """Fence a region that may still be down: drain its hosts and make its directories read-only."""
        try:
            self.drain({"region": req["source"]})
            self.fence({"source": req["source"], "target": req["target"], "read_only": True})
        except Exception as exc:  # still unreachable: try again later
            return {"done": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
        return {"done": True}

    def audit(self, req: dict[str, Any]) -> None:
        """One row per step of an instance in `<hub>failoveraudit`, and a CloudEvent for each stage."""
        from shared import events
        from shared.state.tables import safe_key, table

        table("failoveraudit").upsert_entity(
            {"PartitionKey": safe_key(req["instance"]), "RowKey": f"{req['seq']:03d}-{req['step']}", **req["row"]}
        )
        if req.get("event"):
            events.publish(req["event"], req["instance"], req["row"])
        log_event(log, "failover.step", instance=req["instance"], step=req["step"], status=req["row"].get("status"))


def _read(gateway: Any, reg: Region) -> Any:
    """The region's pools, or an error naming the first that could not be read (a step must not act half-blind)."""
    reads = gateway.read_pools(pool_refs(reg))
    if reads.errors:
        key, err = next(iter(reads.errors.items()))
        raise RuntimeError(f"{key}: {err}"[:300])
    return reads


def _check(outcomes: list[Any], what: str) -> None:
    """Raise when any action of a step failed (a retry redoes only what is still needed)."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"{what} failed on {failed[0].target}: {failed[0].detail or failed[0].result}"[:300])


def _host(address: str) -> str:
    return address.split("://", 1)[-1].split(":", 1)[0].rstrip("/")
