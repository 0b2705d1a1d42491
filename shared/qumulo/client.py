"""Tandem's Qumulo REST client on httpx: TLS verified, timeouts, one re-login on 401, safe retries, typed answers.

Not built on the qumulo-api SDK: that SDK turns TLS verification off and cannot turn it back on.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_before_delay, wait_random_exponential

from shared.errors import QumuloApiError, QumuloTransportError
from shared.qumulo.models import (
    FileAttributes,
    FileHandle,
    RelationshipStatus,
    Share,
    Snapshot,
    SnapshotStatus,
    SourceRelationship,
)
from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    from shared.config.model import AnqCluster
    from shared.secrets import SecretResolver

log = get_logger("qumulo")
REPLICATION = "/v2/replication"


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, QumuloApiError):
        return exc.status >= 500
    return isinstance(exc, QumuloTransportError)


class QumuloClient:
    """One cluster's REST API. Sign in with `username`/`password` or a long-lived `access_token`.

    `ca_bundle` names the PEM that signs the cluster's certificate (ANQ's own CA); verification is never off.
    `sleep` (between retries) is injectable so retries run on a virtual clock in tests. The client never waits for
    replication itself: the failover orchestration polls (`RelationshipStatus.caught_up`, `.writable`,
    `.established`) with durable timers.
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        access_token: str | None = None,
        ca_bundle: str | None = None,
        name: str = "",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        retry_budget_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith("https://"):
            raise ValueError("the Qumulo address must be https:// (TLS is always verified)")
        if (access_token is None) == (password is None):
            raise ValueError("give exactly one of password (with username) or access_token")
        self.name = name or base_url
        self._username, self._password, self._token = username, password, access_token
        self._sleep = sleep
        self._budget = retry_budget_s
        # ANQ's own CA when given, else the public roots; verification is never off
        verify = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), verify=verify, timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        )

    @classmethod
    def for_cluster(cls, anq: AnqCluster, secrets: SecretResolver, **options: Any) -> QumuloClient:
        """A client for a topology's ANQ cluster, its credentials resolved from Key Vault or an app setting."""
        creds, where = anq.credentials, f"anq {anq.name} credentials"
        if creds.access_token is not None:
            options["access_token"] = secrets.resolve(creds.access_token, field=f"{where}.access_token")
        else:
            assert creds.password is not None  # the model requires one of the two
            options.update(username=creds.username, password=secrets.resolve(creds.password, field=f"{where}.password"))
        return cls(
            anq.address,
            ca_bundle=anq.ca_bundle,
            name=anq.name,
            connect_timeout_s=anq.connect_timeout.total_seconds(),
            read_timeout_s=anq.read_timeout.total_seconds(),
            retry_budget_s=anq.retry_budget.total_seconds(),
            **options,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> QumuloClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- transport

    def login(self) -> None:
        """Get a session bearer token (access tokens need no login)."""
        if self._password is None:
            return
        answer = self._send("POST", "/v1/session/login", json={"username": self._username, "password": self._password}, auth=False)
        self._token = str(answer["bearer_token"])
        log_event(log, "qumulo.login", cluster=self.name)

    def _send(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None, auth: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        try:
            response = self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise QumuloTransportError(f"Qumulo {self.name}: {method} {path} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise QumuloTransportError(f"Qumulo {self.name}: {method} {path} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise QumuloTransportError(
                f"Qumulo {self.name}: {method} {path} answered {response.status_code} with a body that is not JSON"
            ) from exc

    def _error(self, response: httpx.Response) -> Exception:
        kind = response.headers.get("content-type", "")
        if "json" not in kind:
            # a proxy or load balancer's HTML page, not Qumulo speaking
            return QumuloTransportError(
                f"Qumulo {self.name}: {response.status_code} from something in front of "
                f"the cluster ({kind or 'no content type'}), not from Qumulo"
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        return QumuloApiError(
            response.status_code,
            str(body.get("error_class") or "unknown"),
            str(body.get("description") or response.reason_phrase),
            cluster=self.name,
        )

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None, idempotent: bool = True
    ) -> Any:
        """Call the API: log in if needed, re-login once on 401, retry idempotent calls on 5xx and transport errors."""
        if self._token is None:
            self.login()

        def attempt() -> Any:
            try:
                return self._send(method, path, json=json, params=params)
            except QumuloApiError as exc:
                if exc.status != 401 or self._password is None:
                    raise
                log_event(log, "qumulo.relogin", cluster=self.name)
                self.login()
                return self._send(method, path, json=json, params=params)

        if not idempotent:
            return attempt()
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            reraise=True,
            sleep=self._sleep,
            stop=stop_before_delay(self._budget) | stop_after_attempt(6),
            wait=wait_random_exponential(multiplier=0.5, max=8),
            before_sleep=lambda s: log_event(log, "qumulo.retry", cluster=self.name, path=path, attempt=s.attempt_number),
        )
        return retrying(attempt)

    # ----------------------------------------------------------------- files and snapshots

    def who_am_i(self) -> dict[str, Any]:
        """The signed-in identity: the cheapest authenticated call, tried once (a health probe must not retry)."""
        answer = self.request("GET", "/v1/session/who-am-i", idempotent=False)
        return answer if isinstance(answer, dict) else {}

    def file_attributes(self, path: str) -> FileAttributes:
        """A file's or directory's attributes by absolute path (404 fs_no_such_entry_error when it does not exist)."""
        return FileAttributes.model_validate(self.request("GET", f"/v1/files/{quote(path, safe='')}/info/attributes"))

    def smb_shares(self) -> list[Share]:
        """Every SMB share on the cluster (the v3 listing is not paged)."""
        return [Share.model_validate(e) for e in self.request("GET", "/v3/smb/shares/")["entries"]]

    def create_snapshot(self, directory_id: str, name_suffix: str, expiration: datetime | None) -> Snapshot:
        """Snapshot a directory. Not idempotent: callers pick a deterministic suffix and list first."""
        body = {"name_suffix": name_suffix, "expiration": _rfc3339(expiration) if expiration else "", "source_file_id": directory_id}
        return Snapshot.model_validate(self.request("POST", "/v3/snapshots/", json=body, idempotent=False))

    def list_snapshots(self, *, include_in_delete: bool = False) -> list[Snapshot]:
        """Every snapshot on the cluster (the list is not paged)."""
        answer = self.request("GET", "/v3/snapshots/", params={"filter": "all" if include_in_delete else "exclude_in_delete"})
        return [Snapshot.model_validate(e) for e in answer["entries"]]

    def snapshot_statuses(self) -> list[SnapshotStatus]:
        """Snapshots with their directory path and owners, excluding those being deleted."""
        answer = self.request("GET", "/v4/snapshots/status/", params={"filter": "api_snapshots_exclude_in_delete"})
        return [SnapshotStatus.model_validate(e) for e in answer["entries"]]

    def get_snapshot(self, snapshot_id: int) -> Snapshot:
        """One snapshot."""
        return Snapshot.model_validate(self.request("GET", f"/v3/snapshots/{snapshot_id}"))

    def delete_snapshot(self, snapshot_id: int) -> None:
        """Delete a snapshot (202; it shows `in_delete` while space is reclaimed). Gone already is done."""
        try:
            self.request("DELETE", f"/v3/snapshots/{snapshot_id}")
        except QumuloApiError as exc:
            if exc.status != 404:
                raise

    def total_snapshot_capacity(self) -> int:
        """Bytes used by all snapshots."""
        return int(self.request("GET", "/v1/snapshots/total-used-capacity")["bytes"])

    def open_files(self, *, page_size: int = 500) -> list[FileHandle]:
        """Every open SMB file handle with its path (paged by the cluster: `paging.next` until empty)."""
        found: list[FileHandle] = []
        path: str | None = "/v1/smb/files/"
        params: dict[str, str] | None = {"resolve_paths": "true", "limit": str(page_size)}
        for _ in range(10_000):  # a cluster that never ends its paging must not hang a step
            if not path:
                return found
            answer = self.request("GET", path, params=params)
            for entry in answer.get("file_handles") or []:
                info = entry.get("handle_info") or {}
                found.append(
                    FileHandle(
                        file_number=str(entry.get("file_number", "")),
                        location=str(info.get("location", "")),
                        owner=str(info.get("owner", "")),
                        path=str(info.get("path", "")),
                    )
                )
            path, params = (answer.get("paging") or {}).get("next") or None, None
        raise QumuloTransportError(f"Qumulo {self.name}: open file listing did not end")

    # ----------------------------------------------------------------- replication

    def _status(self, side: str, relationship_id: str) -> RelationshipStatus:
        return RelationshipStatus.model_validate(self.request("GET", f"{REPLICATION}/{side}-relationships/{relationship_id}/status"))

    def _statuses(self, side: str) -> list[RelationshipStatus]:
        return [RelationshipStatus.model_validate(e) for e in self.request("GET", f"{REPLICATION}/{side}-relationships/status/")]

    def source_status(self, relationship_id: str) -> RelationshipStatus:
        """A source relationship's status (on the cluster that owns the writable directory)."""
        return self._status("source", relationship_id)

    def source_statuses(self) -> list[RelationshipStatus]:
        """Every source relationship's status."""
        return self._statuses("source")

    def target_status(self, relationship_id: str) -> RelationshipStatus:
        """A target relationship's status (on the cluster that holds the replica)."""
        return self._status("target", relationship_id)

    def target_statuses(self) -> list[RelationshipStatus]:
        """Every target relationship's status."""
        return self._statuses("target")

    def source_relationship(self, relationship_id: str) -> SourceRelationship:
        """A source relationship's configuration: replication mode, blackout windows."""
        return SourceRelationship.model_validate(self.request("GET", f"{REPLICATION}/source-relationships/{relationship_id}"))

    def set_source_read_only(self, relationship_id: str, read_only: bool) -> None:
        """Fence (or unfence) the source directory: no client may write it while it is read-only."""
        self.request("PATCH", f"{REPLICATION}/source-relationships/{relationship_id}", json={"source_root_read_only": read_only})

    def replicate(self, relationship_id: str) -> None:
        """Start a replication job now (202); poll the status for its end."""
        self.request("POST", f"{REPLICATION}/source-relationships/{relationship_id}/replicate", idempotent=False)

    def make_writable(self, relationship_id: str) -> RelationshipStatus:
        """Revert the target to its recovery point and break the relationship (asynchronous; wait for it)."""
        current = self.target_status(relationship_id)
        if current.state in ("DISCONNECTING", "DISCONNECTED"):
            return current
        return RelationshipStatus.model_validate(
            self.request("POST", f"{REPLICATION}/target-relationships/{relationship_id}/make-writable", idempotent=False)
        )

    def reverse(self, relationship_id: str, source_address: str, source_port: int = 3712) -> RelationshipStatus:
        """On the old target: become the source of the relationship (done already is done)."""
        if any(s.id == relationship_id for s in self.source_statuses()):
            return self.source_status(relationship_id)
        body = {"target_relationship_id": relationship_id, "source_address": source_address, "source_port": source_port}
        self.request("POST", f"{REPLICATION}/source-relationships/reverse-target-relationship", json=body, idempotent=False)
        return self.source_status(relationship_id)

    def reconnect(self, relationship_id: str) -> RelationshipStatus:
        """On the target: reconnect, discarding writes made here since the recovery point (asynchronous)."""
        current = self.target_status(relationship_id)
        if current.state in ("RECONNECTING", "ESTABLISHED"):
            return current
        return RelationshipStatus.model_validate(
            self.request("POST", f"{REPLICATION}/target-relationships/{relationship_id}/reconnect", idempotent=False)
        )
