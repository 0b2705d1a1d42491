"""The failover's storage steps, each a Durable activity on the ANQ clusters through the Qumulo client: open
handles, the fence (source read-only), replication and its recovery point, the labelled snapshot, make-writable,
and re-protection (reverse, reconnect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.clock import iso
from shared.errors import InputError
from shared.failover.estate import (
    StepsBase,
    host_of,
    links,
    region,
)
from shared.telemetry import get_logger

log = get_logger("failover")


class StorageSteps(StepsBase):
    """Replication and the profile directories, through Qumulo."""

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
            address = client.target_status(rid).source_address or host_of(peer.anq.address)  # the replication address
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
