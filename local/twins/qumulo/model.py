"""The Qumulo twin's model: clusters with profile directories, snapshots, sessions and continuous replication.

Plain Python on a (virtual) clock. Replication jobs take modelled time; a job copies the source as it was
when the job started, and the target's recovery point is the start of the last successful job.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.runtime.clock import Clock

SNAPSHOT_LIMIT = 40_000  # per cluster, from the ANQ known-limits page


class QumuloModelError(Exception):
    """A refused call: HTTP status, Qumulo error_class and description."""

    def __init__(self, status: int, error_class: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error_class, self.description = status, error_class, description


@dataclass
class Profile:
    """One user's FSLogix profile container: a version that each write bumps, and when it was written."""

    version: int
    written: datetime
    created: datetime | None = None  # when FSLogix created the container (None: the same as `written`)

    @property
    def born(self) -> datetime:
        """The container's creation time."""
        return self.created or self.written


@dataclass
class Directory:
    """A directory with a file number and the profile containers in it."""

    id: str
    path: str
    profiles: dict[str, Profile] = field(default_factory=dict)
    read_only: bool = False


@dataclass
class Handle:
    """An open SMB handle on a user's FSLogix profile container: held while the user is signed in, and until
    FSLogix has written and detached the container after sign-out (`close_at`); a stuck one never closes."""

    location: str
    file_number: str
    directory: Directory
    user: str
    opened: datetime
    close_at: datetime | None = None
    stuck: bool = False

    @property
    def path(self) -> str:
        """Where FSLogix keeps the container (one folder per user)."""
        return f"{self.directory.path}/{self.user}/Profile_{self.user.split('@')[0]}.VHDX"


@dataclass
class DetachWrite:
    """The last write of a container at its close: refused (lost) when the directory was read-only by then."""

    directory: str
    user: str
    at: datetime
    landed: bool
    version: int = 0


@dataclass
class SnapshotRecord:
    """A snapshot and the profile versions it holds."""

    id: int
    suffix: str
    directory: Directory
    taken: datetime
    expiration: datetime | None
    profiles: dict[str, Profile]
    owners: list[dict[str, Any]] = field(default_factory=list)
    deleted_at: datetime | None = None
    size: int = 0

    @property
    def name(self) -> str:
        """Qumulo names snapshots '{id}_{suffix}'."""
        return f"{self.id}_{self.suffix}"


@dataclass
class ReplicationTimings:
    """How long replication work takes in the model."""

    job: timedelta = timedelta(minutes=2)
    revert: timedelta = timedelta(seconds=30)
    reconnect: timedelta = timedelta(minutes=1)


@dataclass
class Share:
    """An SMB share: a name clients put in UNC paths and the directory it exposes."""

    id: str
    share_name: str
    fs_path: str
    description: str = ""


@dataclass
class Relationship:
    """A replication relationship; the same id on both clusters."""

    id: str
    source: Cluster
    source_dir: Directory
    target: Cluster
    target_dir: Directory
    state: str = "ESTABLISHED"
    job_started: datetime | None = None
    job_copy: dict[str, Profile] | None = None
    recovery_point: datetime | None = None
    recovery_copy: dict[str, Profile] = field(default_factory=dict)
    transition_due: datetime | None = None
    last_error: str = ""
    last_duration: timedelta | None = None
    changed_since_job: bool = True
    timings: ReplicationTimings = field(default_factory=lambda: ReplicationTimings())
    mode: str = "REPLICATION_CONTINUOUS"
    blackout_windows: list[dict[str, Any]] = field(default_factory=list)
    blackout_timezone: str = "UTC"

    def in_blackout(self, now: datetime) -> bool:
        """Is a blackout window in force (no job starts inside one)?"""
        return any(_in_window(w, now, self.blackout_timezone) for w in self.blackout_windows)

    @property
    def continuous(self) -> bool:
        """Do changes start jobs by themselves (not only policy snapshots)?"""
        return "CONTINUOUS" in self.mode


DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _in_window(window: dict[str, Any], now: datetime, zone: str) -> bool:
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(zone))
    days = set(window.get("on_days") or ["EVERY_DAY"])
    if "EVERY_DAY" not in days and DAYS[local.weekday()] not in days:
        return False
    minute = local.hour * 60 + local.minute
    start = int(window.get("start_hour", 0)) * 60 + int(window.get("start_minute", 0))
    end = int(window.get("end_hour", 0)) * 60 + int(window.get("end_minute", 0))
    return start <= minute < end if start <= end else minute >= start or minute < end


class Cluster:
    """One ANQ cluster: users, tokens, directories, snapshots."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        username: str = "admin",
        password: str = "tandem-demo",
        address: str = "10.0.0.5",
        token_lifetime: timedelta = timedelta(hours=10),
    ) -> None:
        self.name, self.clock, self.address = name, clock, address
        self.users = {username: password}
        self.token_lifetime = token_lifetime
        self.tokens: dict[str, datetime] = {}
        self.directories: dict[str, Directory] = {}
        self.snapshots: dict[int, SnapshotRecord] = {}
        self.created: list[SnapshotRecord] = []  # every snapshot ever taken here, for tests and benchmarks
        self.relationships: dict[str, Relationship] = {}  # relationships this cluster takes part in
        self.down = False
        self.detach_delay = timedelta(seconds=30)  # how long FSLogix takes to write and detach after sign-out
        self.handles: dict[str, Handle] = {}  # open SMB file handles by location
        self.shares: dict[str, Share] = {}  # SMB shares by id
        self.smb_names: set[str] = set()  # the DNS names and addresses clients reach this cluster's SMB service by
        self.detach_writes: list[DetachWrite] = []  # every container close, landed or refused
        self._handle_ids = itertools.count(1)
        self._ids = itertools.count(3)
        self.directories["/"] = Directory("2", "/")  # the root's file id is 2 on every Qumulo cluster
        self._snapshot_ids = itertools.count(1)

    # ----------------------------------------------------------------- auth

    def login(self, username: str, password: str) -> str:
        """A session bearer token, or 401."""
        if self.users.get(username) != password:
            raise QumuloModelError(401, "auth_invalid_credentials_error", "Invalid username or password")
        token = f"session-v1:{secrets.token_urlsafe(24)}"
        self.tokens[token] = self.clock.now() + self.token_lifetime
        return token

    def issue_access_token(self) -> str:
        """A long-lived access token (no expiry), as an administrator would create one."""
        token = f"access-v1:{secrets.token_urlsafe(24)}"
        self.tokens[token] = datetime.max.replace(tzinfo=self.clock.now().tzinfo)
        return token

    def expire_tokens(self) -> None:
        """Make every issued token expire now (a test control)."""
        now = self.clock.now()
        self.tokens = {t: now for t in self.tokens}

    def authorized(self, token: str) -> bool:
        """Is this a token we issued that has not expired?"""
        expires = self.tokens.get(token)
        return expires is not None and self.clock.now() < expires

    # ----------------------------------------------------------------- files

    def mkdir(self, path: str) -> Directory:
        """Create a directory (idempotent)."""
        path = "/" + path.strip("/")
        if path not in self.directories:
            self.directories[path] = Directory(str(next(self._ids)), path)
        return self.directories[path]

    def directory(self, ref: str) -> Directory:
        """A directory by path or file id, or 404 fs_no_such_entry_error."""
        for d in self.directories.values():
            if ref in (d.id, d.path, d.path.rstrip("/") + "/"):
                return d
        raise QumuloModelError(404, "fs_no_such_entry_error", f"{ref} {{ no such entry }}")

    def write_profile(self, path: str, user: str) -> Profile:
        """A user signs out and FSLogix writes their container; refused on a read-only directory."""
        directory = self.directory(path)
        if directory.read_only:
            raise QumuloModelError(403, "fs_read_only_error", f"{directory.path} is read-only")
        previous = directory.profiles.get(user)
        now = self.clock.now()
        profile = Profile((previous.version if previous else 0) + 1, now, previous.born if previous else now)
        directory.profiles[user] = profile
        for rel in self.relationships.values():
            if rel.source is self and rel.source_dir is directory:
                rel.changed_since_job = True
        return profile

    def new_container(self, path: str, user: str) -> Profile:
        """FSLogix found no container for the user anywhere: it creates a new, empty one here (version 0)."""
        directory = self.directory(path)
        if directory.read_only:
            raise QumuloModelError(403, "fs_read_only_error", f"{directory.path} is read-only")
        now = self.clock.now()
        directory.profiles[user] = Profile(0, now, now)
        return directory.profiles[user]

    # ----------------------------------------------------------------- SMB shares

    def add_share(self, share_name: str, fs_path: str, description: str = "") -> Share:
        """Share a directory over SMB (the directory must exist)."""
        directory = self.directory(fs_path)
        share = Share(str(len(self.shares) + 1), share_name, directory.path, description)
        self.shares[share.id] = share
        return share

    def share_named(self, name: str) -> Share | None:
        """A share by name (SMB share names are case-insensitive)."""
        return next((s for s in self.shares.values() if s.share_name.lower() == name.lower()), None)

    # ----------------------------------------------------------------- FSLogix containers over SMB

    def _handle_of(self, directory: Directory, user: str) -> Handle | None:
        return next((h for h in self.handles.values() if h.directory is directory and h.user == user.lower()), None)

    def attach(self, path: str, user: str) -> Handle:
        """A user signs in: FSLogix opens their container (a sign-in during a pending detach keeps it open)."""
        directory = self.directory(path)
        handle = self._handle_of(directory, user)
        if handle is None:
            n = next(self._handle_ids)
            handle = Handle(f"{n}:1", str(1000 + n), directory, user.lower(), self.clock.now())
            self.handles[handle.location] = handle
        handle.close_at = None
        return handle

    def detach(self, path: str, user: str, delay: timedelta | None = None) -> Handle | None:
        """A user signed out: the container closes `delay` (default `detach_delay`) later, with its last write."""
        handle = self._handle_of(self.directory(path), user)
        if handle is not None and not handle.stuck:
            handle.close_at = self.clock.now() + (self.detach_delay if delay is None else delay)
        return handle

    def stick(self, path: str, user: str) -> Handle:
        """A handle that never closes (a hung host, a crashed FSLogix service): a test control."""
        handle = self.attach(path, user)
        handle.stuck, handle.close_at = True, None
        return handle

    def close_handle(self, location: str) -> None:
        """Close a handle as an administrator would (POST /v1/smb/files/close): no last write lands."""
        self.handles.pop(location, None)

    def _close_due(self, now: datetime) -> None:
        for handle in sorted(
            (h for h in self.handles.values() if h.close_at is not None and h.close_at <= now), key=lambda h: h.close_at or now
        ):
            del self.handles[handle.location]
            try:
                version = self.write_profile(handle.directory.path, handle.user).version
                self.detach_writes.append(DetachWrite(handle.directory.path, handle.user, now, True, version))
            except QumuloModelError:  # read-only by the time FSLogix wrote: the write is lost
                self.detach_writes.append(DetachWrite(handle.directory.path, handle.user, now, False))

    @property
    def lost_writes(self) -> list[DetachWrite]:
        """Container closes whose last write was refused."""
        return [w for w in self.detach_writes if not w.landed]

    # ----------------------------------------------------------------- snapshots

    def create_snapshot(self, directory: Directory, suffix: str, expiration: datetime | None) -> SnapshotRecord:
        """Take a snapshot; 409 past the documented per-cluster limit."""
        if len(self.snapshots) >= SNAPSHOT_LIMIT:
            raise QumuloModelError(409, "snapshot_limit_exceeded_error", "The snapshot limit has been reached")
        record = SnapshotRecord(
            next(self._snapshot_ids),
            suffix or "OnDemand",
            directory,
            self.clock.now(),
            expiration,
            dict(directory.profiles),
            size=4096 * (1 + len(directory.profiles)),
        )
        self.snapshots[record.id] = record
        self.created.append(record)
        return record

    def snapshot(self, snapshot_id: int) -> SnapshotRecord:
        """A snapshot, or 404."""
        record = self.snapshots.get(snapshot_id)
        if record is None:
            raise QumuloModelError(404, "snapshot_not_found_error", f"snapshot {snapshot_id} not found")
        return record

    def delete_snapshot(self, snapshot_id: int) -> None:
        """Start deleting a snapshot; owned snapshots can't be deleted."""
        record = self.snapshot(snapshot_id)
        if record.owners:
            raise QumuloModelError(400, "snapshot_owned_error", f"snapshot {snapshot_id} is owned by replication")
        record.deleted_at = record.deleted_at or self.clock.now()

    def settle(self) -> None:
        """Close containers whose detach is due; expire snapshots; finish deletions; move replication along."""
        now = self.clock.now()
        self._close_due(now)
        for record in list(self.snapshots.values()):
            if record.expiration is not None and record.expiration <= now and record.deleted_at is None:
                record.deleted_at = record.expiration
            if record.deleted_at is not None and now - record.deleted_at >= timedelta(seconds=30):
                del self.snapshots[record.id]
        for rel in self.relationships.values():
            _advance(rel, now)


LOCK = threading.RLock()  # one lock for all clusters: replication touches both sides


def _advance(rel: Relationship, now: datetime) -> None:
    """Move a relationship through time: finish jobs and transitions, start continuous jobs."""
    if rel.transition_due is not None and now >= rel.transition_due:
        if rel.state == "DISCONNECTING":
            rel.target_dir.profiles = dict(rel.recovery_copy)  # revert to the recovery point
            rel.target_dir.read_only = False
            rel.state = "DISCONNECTED"
        elif rel.state == "RECONNECTING":
            rel.target_dir.profiles = dict(rel.recovery_copy)  # discard writes made since the recovery point
            rel.target_dir.read_only = True
            rel.state = "ESTABLISHED"
            rel.changed_since_job = True
        rel.transition_due = None
    if rel.state != "ESTABLISHED":
        return
    if rel.job_started is not None and rel.source.down:
        rel.job_started, rel.job_copy, rel.last_error = None, None, "source unreachable"  # the job dies with the region
    if rel.job_started is not None and now >= rel.job_started + rel.timings.job:
        if rel.target.down:
            rel.last_error = "target unreachable"
        else:
            rel.recovery_point, rel.recovery_copy = rel.job_started, dict(rel.job_copy or {})
            rel.target_dir.profiles = dict(rel.recovery_copy)
            rel.last_error = ""
            rel.last_duration = rel.timings.job
        finished = rel.job_started + rel.timings.job
        rel.job_started, rel.job_copy = None, None
        if rel.changed_since_job and rel.continuous and not rel.source.down and not rel.in_blackout(finished):
            start_job(rel, finished)
    if rel.job_started is None and rel.changed_since_job and rel.continuous and not rel.source.down and not rel.in_blackout(now):
        start_job(rel, now)


def make_writable(rel: Relationship, now: datetime) -> None:
    """Break the relationship on the target: abandon a running job, revert to the recovery point (takes time)."""
    if rel.state != "ESTABLISHED":
        raise QumuloModelError(409, "replication_relationship_not_connected_error", f"{rel.id} is {rel.state}")
    rel.job_started, rel.job_copy = None, None
    rel.state, rel.transition_due = "DISCONNECTING", now + rel.timings.revert


def reverse(rel: Relationship, on: Cluster, source_address: str) -> None:
    """On the disconnected target: swap roles, so `on` becomes the source; the peer's side stays DISCONNECTED."""
    if rel.target is not on:
        raise QumuloModelError(404, "http_not_found_error", f"no target relationship {rel.id}")
    if rel.state != "DISCONNECTED":
        raise QumuloModelError(
            409, "replication_relationship_not_disconnected_error", f"{rel.id} is {rel.state}; make the target writable first"
        )
    if source_address != rel.source.address:
        raise QumuloModelError(
            400, "invalid_request_error", f"source_address {source_address} is not the source of {rel.id} ({rel.source.address})"
        )
    rel.source, rel.target = rel.target, rel.source
    rel.source_dir, rel.target_dir = rel.target_dir, rel.source_dir
    rel.job_started, rel.job_copy, rel.last_error = None, None, ""


def reconnect(rel: Relationship, on: Cluster, now: datetime) -> None:
    """On a disconnected target: make it read-only, revert it to the recovery point, then replicate again."""
    if rel.target is not on:
        raise QumuloModelError(404, "http_not_found_error", f"no target relationship {rel.id}")
    if rel.state != "DISCONNECTED":
        raise QumuloModelError(409, "replication_relationship_not_disconnected_error", f"{rel.id} is {rel.state}")
    rel.target_dir.read_only = True
    rel.state, rel.transition_due = "RECONNECTING", now + rel.timings.reconnect


def start_job(rel: Relationship, at: datetime) -> None:
    """Start a job that copies the source as it is now."""
    rel.job_started, rel.job_copy, rel.changed_since_job = at, dict(rel.source_dir.profiles), False


def connect(
    rel_id: str, source: Cluster, source_path: str, target: Cluster, target_path: str, *, timings: ReplicationTimings | None = None
) -> Relationship:
    """An established continuous relationship between two clusters; the target directory is read-only."""
    rel = Relationship(
        rel_id, source, source.mkdir(source_path), target, target.mkdir(target_path), timings=timings or ReplicationTimings()
    )
    rel.target_dir.read_only = True
    source.relationships[rel_id] = rel
    target.relationships[rel_id] = rel
    return rel
