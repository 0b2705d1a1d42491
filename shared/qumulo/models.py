"""Typed views of the Qumulo REST answers Tandem reads (pydantic; unknown fields are kept out of the way)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _time(value: Any) -> Any:
    """RFC 3339 with up to 9 fractional digits ('' or null = none), truncated to microseconds."""
    if value in ("", None):
        return None
    if isinstance(value, str) and "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        return f"{head}.{digits[:6]}{zone}"
    return value


Time = Annotated[datetime | None, BeforeValidator(_time)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FileAttributes(_Answer):
    """`GET /v1/files/{ref}/info/attributes`: what Tandem needs of a directory."""

    id: str
    file_number: str
    path: str
    type: str


class Snapshot(_Answer):
    """`api_snapshot_info` (v3)."""

    id: int
    name: str
    timestamp: Time
    source_file_id: str
    expiration: Time = None
    in_delete: bool = False
    policy_id: int | None = None

    @property
    def suffix(self) -> str:
        """The name without its '{id}_' prefix: what the creator chose."""
        return self.name.split("_", 1)[1] if "_" in self.name else self.name


class SnapshotStatus(Snapshot):
    """`api_snapshot_status`: adds the directory path and owners (replication-owned snapshots can't be deleted)."""

    source_file_path: str = ""
    owners: list[dict[str, Any]] = Field(default_factory=list)
    lock_key: str | None = None


class JobStatus(_Answer):
    """`replication_job_status` while a job runs."""

    percent_complete: float = 0.0
    estimated_seconds_remaining: str | None = None
    bytes_remaining: str | None = None


class RelationshipStatus(_Answer):
    """Source or target relationship status: the fields a failover decides on."""

    id: str
    state: str
    end_reason: str = ""
    source_root_path: str = ""
    target_root_path: str = ""
    source_address: str = ""
    target_address: str = ""
    source_root_read_only: bool = False
    target_root_read_only: bool = True
    job_state: str = "REPLICATION_NOT_RUNNING"
    job_start_time: Time = None
    recovery_point: Time = None
    error_from_last_job: str = ""
    replication_enabled: bool = True
    replication_job_status: JobStatus | None = None

    @property
    def running(self) -> bool:
        """Is a replication job running now?"""
        return self.job_state == "REPLICATION_RUNNING"
