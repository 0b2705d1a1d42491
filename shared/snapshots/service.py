"""Scheduled snapshots, freshness alerts, the recovery-point report and on-demand snapshots, per ANQ cluster.

One listing per cluster per run (snapshot lists are not paged and can be long), one path lookup per
directory per process (file ids are stable), a create only when the slot is not done. Clusters are worked
in parallel and independently: one unreachable cluster or one wrong directory never stops the others.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import iso
from shared.config.model import ProfileDirectory, Region, Topology
from shared.errors import ConfigError, DependencyError, InputError, QumuloApiError
from shared.qumulo.client import QumuloClient
from shared.qumulo.models import Snapshot
from shared.snapshots.schedule import Ours, due, parse_ours, slot_of, stamp, suffix_for
from shared.telemetry import get_logger, log_event

log = get_logger("snapshots")


@dataclass(frozen=True)
class DirectoryRun:
    """What one run did for one directory: taken, skipped or failed; and whether it is fresh."""

    region: str
    path: str
    result: str
    detail: str = ""
    snapshot_id: int | None = None
    name: str = ""
    expiration: datetime | None = None
    tiers: tuple[str, ...] = ()
    stale: bool = False
    newest: datetime | None = None


@dataclass
class _Directory:
    config: ProfileDirectory
    file_id: str | None = None


@dataclass
class Snapshotter:
    """Works the topology's clusters; `client_for` and `now` are injectable (tests, the local runtime)."""

    topology: Topology
    client_for: Callable[[Region], QumuloClient] | None = None
    now: Callable[[], datetime] | None = None
    _clients: dict[str, QumuloClient] = field(default_factory=dict)
    _file_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Close the cluster clients."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> Snapshotter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def policy(self) -> Any:
        """The snapshot policy."""
        return self.topology.policies.snapshots

    def _now(self) -> datetime:
        from shared import clock

        return (self.now or clock.now)()

    def client(self, region: Region) -> QumuloClient:
        """The region's cluster client (one per process: keep-alive, one sign-in)."""
        with self._lock:
            if region.name not in self._clients:
                if self.client_for is not None:
                    self._clients[region.name] = self.client_for(region)
                else:
                    from shared.secrets import SecretResolver

                    self._clients[region.name] = QumuloClient.for_cluster(region.anq, SecretResolver())
            return self._clients[region.name]

    def _file_id(self, region: Region, client: QumuloClient, path: str) -> str:
        key = (region.name, path)
        if key not in self._file_ids:
            self._file_ids[key] = client.file_attributes(path).file_number
        return self._file_ids[key]

    # ----------------------------------------------------------------- the scheduled run

    def run(self) -> list[DirectoryRun]:
        """Take the snapshots due now on every cluster (in parallel) and check freshness."""
        now = self._now()
        regions = self.topology.regions
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(regions)))) as pool:
            results = [o for batch in pool.map(lambda r: self._cluster(r, now), regions) for o in batch]
        _ledger(results, now)
        for r in results:  # each directory's freshness, what the workbook charts
            age = None if r.newest is None else round((now - r.newest).total_seconds())
            log_event(log, "snapshots.directory", region=r.region, path=r.path, result=r.result, stale=r.stale,
                      newest=iso(r.newest), age_s=age, snapshot_id=r.snapshot_id)  # fmt: skip
        return results

    def _cluster(self, region: Region, now: datetime) -> list[DirectoryRun]:
        try:
            client = self.client(region)
            listing = client.list_snapshots()
        except (DependencyError, ConfigError) as exc:
            _alert(
                "snapshots.cluster_unreachable", "Tandem.Snapshots.ClusterUnreachable", region.name, "", f"{region.anq.name}: {exc}"
            )
            return [
                DirectoryRun(region.name, d.path, "failed", f"cluster unreachable: {exc}", stale=True)
                for d in region.profile_directories
            ]
        return [self._directory(region, client, listing, d, now) for d in region.profile_directories]

    def _directory(
        self, region: Region, client: QumuloClient, listing: list[Snapshot], directory: ProfileDirectory, now: datetime
    ) -> DirectoryRun:
        path = directory.path
        try:
            file_id = self._file_id(region, client, path)
        except QumuloApiError as exc:
            if exc.status == 404:
                detail = (
                    f"profile directory {path} does not exist on {region.anq.name} (regions[{region.name}]."
                    f"profile_directories in the topology)"
                )
                _alert("snapshots.directory_missing", "Tandem.Snapshots.DirectoryMissing", region.name, path, detail)
                return DirectoryRun(region.name, path, "failed", detail, stale=True)
            return self._failed(region, path, exc)
        except DependencyError as exc:
            return self._failed(region, path, exc)
        ours = self._ours(listing, file_id)
        wanted = due(self.policy, now, ours)
        outcome = DirectoryRun(region.name, path, "skipped", "slot already taken" if wanted is None else "")
        if wanted is not None:
            try:
                made = client.create_snapshot(file_id, wanted.suffix, wanted.expiration)
            except DependencyError as exc:
                outcome = self._failed(region, path, exc)  # and still check how old the last good one is
            else:
                self._settle_duplicates(client, file_id, wanted.slot)
                outcome = DirectoryRun(
                    region.name, path, "taken", snapshot_id=made.id, name=made.name, expiration=wanted.expiration, tiers=wanted.tiers
                )
                listing = [*listing, made]
        newest = self._newest(listing, file_id)
        bound = directory.freshness or self.policy.freshness
        stale = newest is None or now - newest > bound
        if stale:
            age = "none" if newest is None else f"{int((now - newest).total_seconds() // 60)} min old"
            _alert(
                "snapshots.stale",
                "Tandem.Snapshots.Stale",
                region.name,
                path,
                f"newest recovery point of {path} on {region.anq.name} is {age}; the bound is {bound}",
            )
        return DirectoryRun(**{**outcome.__dict__, "stale": stale, "newest": newest})

    def _failed(self, region: Region, path: str, exc: Exception) -> DirectoryRun:
        _alert("snapshots.failed", "Tandem.Snapshots.Failed", region.name, path, f"{region.anq.name}: {exc}")
        return DirectoryRun(region.name, path, "failed", str(exc), stale=True)

    def _ours(self, listing: list[Snapshot], file_id: str) -> list[Ours]:
        found = []
        for s in listing:
            if s.source_file_id == file_id and not s.in_delete:
                mine = parse_ours(self.policy, s.id, s.suffix)
                if mine is not None:
                    found.append(mine)
        return found

    def _newest(self, listing: list[Snapshot], file_id: str) -> datetime | None:
        """The newest of Tandem's recovery points of a directory (its taking time)."""
        times = [
            s.timestamp
            for s in listing
            if s.source_file_id == file_id and not s.in_delete and s.timestamp and parse_ours(self.policy, s.id, s.suffix) is not None
        ]
        return max(times) if times else None

    def _settle_duplicates(self, client: QumuloClient, file_id: str, slot: datetime) -> None:
        """Two runs racing past the check: keep the first of Tandem's snapshots of the slot, delete the others."""
        same = sorted(o.id for o in self._ours(client.list_snapshots(), file_id) if o.slot == slot and o.tier != "ondemand")
        for extra in same[1:]:
            log_event(log, "snapshots.duplicate_removed", snapshot_id=extra, slot=stamp(slot))
            client.delete_snapshot(extra)

    # ----------------------------------------------------------------- report and on demand

    def report(self) -> list[dict[str, Any]]:
        """Per cluster: snapshot capacity and, per directory, Tandem's recovery points with their expiry."""
        now = self._now()

        def one(region: Region) -> dict[str, Any]:
            entry: dict[str, Any] = {"region": region.name, "cluster": region.anq.name}
            try:
                client = self.client(region)
                listing = client.list_snapshots()
                entry["snapshot_capacity_bytes"] = client.total_snapshot_capacity()
            except (DependencyError, ConfigError) as exc:
                return {**entry, "error": str(exc)}
            dirs: list[dict[str, Any]] = []
            for d in region.profile_directories:
                try:
                    file_id = self._file_id(region, client, d.path)
                except DependencyError as exc:
                    dirs.append({"path": d.path, "error": str(exc)})
                    continue
                points = sorted(
                    ((s, parse_ours(self.policy, s.id, s.suffix)) for s in listing if s.source_file_id == file_id),
                    key=lambda p: p[0].id,
                    reverse=True,
                )
                newest = self._newest(listing, file_id)
                bound = d.freshness or self.policy.freshness
                dirs.append(
                    {
                        "path": d.path,
                        "fresh": newest is not None and now - newest <= bound,
                        "newest": newest.isoformat() if newest else None,
                        "recovery_points": [
                            {
                                "id": s.id,
                                "name": s.name,
                                "taken": iso(s.timestamp),
                                "expires": iso(s.expiration),
                                "tier": o.tier if o else None,
                                "tandem": o is not None,
                            }
                            for s, o in points
                        ],
                    }
                )
            return {**entry, "directories": dirs}

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(self.topology.regions)))) as pool:
            return list(pool.map(one, self.topology.regions))

    def take_now(self, region_name: str, path: str, label: str, keep: timedelta | None = None) -> int:
        """A labelled snapshot of one directory now (idempotent per label); returns its id."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", label):
            raise InputError("label must be 1-40 lower-case letters, digits or '-'")
        region = next((r for r in self.topology.regions if r.name == region_name), None)
        if region is None or all(d.path != path for d in region.profile_directories):
            raise InputError(f"no profile directory {path} in region {region_name} in the topology")
        client = self.client(region)
        file_id = self._file_id(region, client, path)
        for mine in self._ours(client.list_snapshots(), file_id):
            if mine.tier == "ondemand" and mine.label == label:
                return mine.id
        now = self._now()
        keep = keep or max(t.keep for t in self.policy.tiers)
        minute = now.astimezone(UTC).replace(second=0, microsecond=0)
        made = client.create_snapshot(file_id, suffix_for(self.policy, minute, "ondemand", label), now + keep)
        log_event(log, "snapshots.on_demand", region=region_name, path=path, snapshot_id=made.id, label=label)
        return made.id


def summary(results: list[DirectoryRun]) -> dict[str, int]:
    """What one run did over every directory: the timer's log line."""
    return {"taken": sum(r.result == "taken" for r in results), "skipped": sum(r.result == "skipped" for r in results),
            "failed": sum(r.result == "failed" for r in results), "stale": sum(r.stale for r in results)}  # fmt: skip


def _alert(event: str, cloud_type: str, region: str, path: str, detail: str) -> None:
    """An error log line with a stable name and a Tandem CloudEvent: what an alert rule fires on."""
    from shared import events

    log_event(log, event, level=40, region=region, path=path, detail=detail)
    events.publish(cloud_type, f"{region}{path}", {"region": region, "path": path, "detail": detail})


def _ledger(results: list[DirectoryRun], now: datetime) -> None:
    """One row per directory per run in `<hub>snapshotledger` (taken, skipped or failed)."""
    from shared.state.tables import safe_key, table

    try:
        ledger = table("snapshotledger")
    except ConfigError:
        return
    run = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    for o in results:
        ledger.upsert_entity(
            {
                "PartitionKey": safe_key(f"{o.region}|{o.path}"),
                "RowKey": f"{run}",
                "time": now.isoformat(),
                "slot": stamp(slot_of(now)),
                "result": o.result,
                "detail": o.detail[:1000],
                "snapshot_id": o.snapshot_id or 0,
                "name": o.name,
                "expiration": iso(o.expiration) or "",
                "tiers": ",".join(o.tiers),
                "stale": o.stale,
            }
        )
