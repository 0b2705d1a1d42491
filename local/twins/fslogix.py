"""FSLogix on the session hosts, between the ARM twin and the Qumulo twins: what a sign-in finds.

At sign-in a host walks its profile locations in order (`CCDLocations`' SMB providers when set, else
`VHDLocations`), maps each UNC path to a cluster by the cluster's SMB names and to a directory by the cluster's
shares, and skips a location it cannot reach (an unknown name, a missing share or directory, a cluster that is
down). The first location holding the user's container is attached; a container on a read-only directory
fails the sign-in (FSLogix's default `PreventLoginWithFailure=0`: the user works in a temporary local profile,
no container is open). No container anywhere creates a new, empty one in the first reachable location. Each
sign-in is recorded with what happened and the container's content version, so a profile reset is a count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from local.twins.arm.model import Estate, Host
from local.twins.qumulo.model import LOCK, Cluster, Directory, QumuloModelError
from shared.failover.fslogix import Settings, Unc

Outcome = Literal["own", "new", "failed"]


@dataclass(frozen=True)
class SignIn:
    """One FSLogix profile attach at sign-in."""

    upn: str
    host: str
    pool: str
    at: datetime
    outcome: Outcome
    cluster: str = ""
    path: str = ""
    version: int | None = None  # the attached container's content version (0: new and empty)
    detail: str = ""


class Fslogix:
    """The profile side of sign-in and sign-out for every host of `estate`, over `clusters`."""

    def __init__(self, estate: Estate, clusters: Iterable[Cluster]) -> None:
        self.estate, self.clusters = estate, list(clusters)
        self.sign_ins: list[SignIn] = []
        self._attached: dict[tuple[str, str], tuple[Cluster, str]] = {}  # (host, upn) -> where the container is
        estate.profile_hook = self._hook

    def _reach(self, location: str) -> tuple[Cluster, Directory] | None:
        unc = Unc.parse(location)
        if unc is None:
            return None
        cluster = next((c for c in self.clusters if unc.server in c.smb_names), None)
        if cluster is None or cluster.down:
            return None
        share = cluster.share_named(unc.share)
        if share is None:
            return None
        path = "/" + "/".join(p for p in (share.fs_path.strip("/") + unc.rest).split("/") if p)
        directory = cluster.directories.get(path)
        return (cluster, directory) if directory is not None else None

    def _hook(self, event: str, host: Host, upn: str) -> None:
        with LOCK:
            if event == "attach":
                self.sign_ins.append(self._attach(host, upn.lower()))
            else:
                self._detach(host, upn.lower())

    def _attach(self, host: Host, upn: str) -> SignIn:
        now = self.estate.clock.now()
        record: dict[str, Any] = {"upn": upn, "host": host.name, "pool": host.pool.name, "at": now}
        settings = Settings.from_values(host.name, now.isoformat(), host.fslogix)
        if not settings.enabled:
            return SignIn(**record, outcome="new", detail="FSLogix is not enabled: a local profile")
        for cluster in self.clusters:
            cluster.settle()
        reachable = []
        for location in settings.locations:
            found = self._reach(location)
            if found is None:
                continue
            cluster, directory = found
            reachable.append(found)
            profile = directory.profiles.get(upn)
            if profile is None:
                continue
            where = {"cluster": cluster.name, "path": directory.path}
            if directory.read_only:
                return SignIn(
                    **record,
                    **where,
                    outcome="failed",
                    version=profile.version,
                    detail=f"{location}: the container is on a read-only directory",
                )
            cluster.attach(directory.path, upn)
            self._attached[(host.name.lower(), upn)] = (cluster, directory.path)
            return SignIn(**record, **where, outcome="own", version=profile.version)
        if not reachable:
            return SignIn(**record, outcome="failed", detail="no profile location is reachable")
        cluster, directory = reachable[0]
        where = {"cluster": cluster.name, "path": directory.path}
        try:
            cluster.new_container(directory.path, upn)
        except QumuloModelError as exc:
            return SignIn(**record, **where, outcome="failed", detail=exc.description)
        cluster.attach(directory.path, upn)
        self._attached[(host.name.lower(), upn)] = (cluster, directory.path)
        return SignIn(**record, **where, outcome="new", version=0, detail="no container found: a new, empty profile")

    def _detach(self, host: Host, upn: str) -> None:
        found = self._attached.pop((host.name.lower(), upn), None)
        if found is not None:
            cluster, path = found
            cluster.detach(path, upn)

    def first_sign_ins(self, since: datetime, pool: str) -> dict[str, SignIn]:
        """Each user's first sign-in to `pool` from `since` on."""
        first: dict[str, SignIn] = {}
        for signin in self.sign_ins:
            if signin.at >= since and signin.pool.lower() == pool.lower():
                first.setdefault(signin.upn, signin)
        return first

    @staticmethod
    def counts(sign_ins: Iterable[SignIn]) -> dict[str, int]:
        """How many were own / new / failed."""
        found = list(sign_ins)
        return {k: sum(1 for s in found if s.outcome == k) for k in ("own", "new", "failed")}
