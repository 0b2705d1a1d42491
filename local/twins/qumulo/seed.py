"""The Qumulo twin's seed file: clusters, their directories and profiles, and the relationships between them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from local.runtime.clock import Clock
from local.twins.qumulo.model import Cluster, ReplicationTimings, connect
from local.twins.seedfile import read_seed
from shared.config.model import Duration

DEMO_SEED = Path(__file__).with_name("demo.yaml")


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfilesSeed(_Seed):
    """Users whose profile containers exist in a directory at the start: prefix001@domain ..."""

    directory: str
    prefix: str = "user"
    count: int = Field(ge=0)
    domain: str = "contoso.com"


class ShareSeed(_Seed):
    """An SMB share of a directory."""

    name: str = Field(min_length=1, max_length=80)
    path: str
    description: str = ""


class ClusterSeed(_Seed):
    """One ANQ cluster."""

    name: str
    address: str = Field(description="the address its peer replicates to (replication traffic, port 3712)")
    username: str = "admin"
    password: str = "tandem-demo"
    directories: list[str] = Field(default_factory=list)
    profiles: ProfilesSeed | None = None
    detach_delay: Duration = Field(timedelta(seconds=30), description="FSLogix's write and detach after sign-out")
    smb_names: list[str] = Field(default_factory=list, description="DNS names and addresses that reach its SMB service")
    shares: list[ShareSeed] = Field(default_factory=list)


class BlackoutSeed(_Seed):
    """A blackout window, as `api_source_relationship` carries it."""

    start_hour: int = Field(ge=0, le=23)
    start_minute: int = Field(0, ge=0, le=59)
    end_hour: int = Field(ge=0, le=23)
    end_minute: int = Field(0, ge=0, le=59)
    on_days: list[Literal["EVERY_DAY", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]] = ["EVERY_DAY"]


class RelationshipSeed(_Seed):
    """An established replication relationship (continuous unless a mode says otherwise)."""

    id: str
    source: str
    source_path: str
    target: str
    target_path: str
    mode: Literal["REPLICATION_CONTINUOUS", "REPLICATION_SNAPSHOT_POLICY", "REPLICATION_SNAPSHOT_POLICY_WITH_CONTINUOUS"] = (
        "REPLICATION_CONTINUOUS"
    )
    blackout_windows: list[BlackoutSeed] = Field(default_factory=list, max_length=10)
    blackout_window_timezone: str = "UTC"


class TimingsSeed(_Seed):
    """How long replication work takes."""

    job: Duration = timedelta(minutes=2)
    revert: Duration = timedelta(seconds=30)
    reconnect: Duration = timedelta(minutes=1)


class QumuloSeed(_Seed):
    """The whole seed file."""

    timings: TimingsSeed = TimingsSeed()
    clusters: list[ClusterSeed] = Field(min_length=1)
    relationships: list[RelationshipSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_clusters(self) -> QumuloSeed:
        names = {c.name for c in self.clusters}
        for rel in self.relationships:
            for end in (rel.source, rel.target):
                if end not in names:
                    raise ValueError(f"relationship {rel.id}: unknown cluster {end!r}")
        return self


def load_seed(path: str | Path | None = None) -> QumuloSeed:
    """Read and validate a seed file; the demo clusters when `path` is None."""
    return read_seed(QumuloSeed, path if path is not None else DEMO_SEED)


def build_clusters(seed: QumuloSeed, clock: Clock, *, password: str | None = None) -> dict[str, Cluster]:
    """The clusters a seed describes, connected; `password` overrides every cluster's login password."""
    clusters: dict[str, Cluster] = {}
    for c in seed.clusters:
        cluster = Cluster(c.name, clock, username=c.username, password=password or c.password, address=c.address)
        cluster.detach_delay = c.detach_delay
        for path in c.directories:
            cluster.mkdir(path)
        if c.profiles is not None:
            cluster.mkdir(c.profiles.directory)
            for i in range(1, c.profiles.count + 1):
                cluster.write_profile(c.profiles.directory, f"{c.profiles.prefix}{i:03d}@{c.profiles.domain}")
        cluster.smb_names = {n.lower() for n in c.smb_names}
        for share in c.shares:
            cluster.add_share(share.name, cluster.mkdir(share.path).path, share.description)
        clusters[c.name] = cluster
    t = seed.timings
    for r in seed.relationships:
        rel = connect(
            r.id,
            clusters[r.source],
            r.source_path,
            clusters[r.target],
            r.target_path,
            timings=ReplicationTimings(job=t.job, revert=t.revert, reconnect=t.reconnect),
        )
        rel.mode, rel.blackout_timezone = r.mode, r.blackout_window_timezone
        rel.blackout_windows = [w.model_dump() for w in r.blackout_windows]
    return clusters
