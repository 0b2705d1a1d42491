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
        zone = rest[len(digits) :]
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
    creation_time: Time = None
    modification_time: Time = None


class Share(_Answer):
    """`api_smb_share` (`GET /v3/smb/shares/`): a share's name and the directory it exposes."""

    id: str
    share_name: str
    fs_path: str


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

    @property
    def job_failed(self) -> bool:
        """Did the last job end in an error (and none is running to replace it)?"""
        return bool(self.error_from_last_job) and not self.running

    def caught_up(self, after: datetime) -> bool:
        """Has a job that started at or after `after` finished? (its start is the recovery point)"""
        return not self.running and self.recovery_point is not None and self.recovery_point >= after

    @property
    def writable(self) -> bool:
        """make-writable has finished: the target is disconnected and its root writable."""
        return self.state == "DISCONNECTED" and not self.target_root_read_only

    @property
    def established(self) -> bool:
        """The relationship replicates (again, after a reconnect)."""
        return self.state == "ESTABLISHED"


class BlackoutWindow(_Answer):
    """One blackout window of a source relationship (no job starts inside it)."""

    start_hour: int = 0
    start_minute: int = 0
    end_hour: int = 0
    end_minute: int = 0
    on_days: list[str] = Field(default_factory=lambda: ["EVERY_DAY"])


class SourceRelationship(_Answer):
    """`api_source_relationship`: the source side's configuration a failover must check before waiting on a job."""

    id: str
    replication_mode: str = "REPLICATION_CONTINUOUS"
    replication_enabled: bool = True
    blackout_windows: list[BlackoutWindow] = Field(default_factory=list)
    blackout_window_timezone: str = "UTC"
    source_root_read_only: bool = False

    def blackout_at(self, when: datetime) -> BlackoutWindow | None:
        """The blackout window in force at `when`, if any."""
        from zoneinfo import ZoneInfo

        try:
            local = when.astimezone(ZoneInfo(self.blackout_window_timezone))
        except (KeyError, ValueError):  # an unknown zone: read as UTC rather than miss a window
            local = when
        day = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[local.weekday()]
        minute = local.hour * 60 + local.minute
        for w in self.blackout_windows:
            if "EVERY_DAY" not in w.on_days and day not in w.on_days:
                continue
            start, end = w.start_hour * 60 + w.start_minute, w.end_hour * 60 + w.end_minute
            if (start <= minute < end) if start <= end else (minute >= start or minute < end):
                return w
        return None


class FileHandle(_Answer):
    """One open SMB file handle (`GET /v1/smb/files/?resolve_paths=true`)."""

    file_number: str
    location: str
    owner: str = ""
    path: str = ""
