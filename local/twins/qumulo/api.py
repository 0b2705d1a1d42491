"""The Qumulo twin: one cluster of the model served over the Qumulo REST paths, HTTPS on loopback."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local.runtime.clock import Clock
from local.tls import LocalCA
from local.twins.qumulo.model import (
    LOCK,
    Cluster,
    QumuloModelError,
    Relationship,
    Share,
    SnapshotRecord,
    make_writable,
    reconnect,
    reverse,
    start_job,
)
from local.twins.server import Request, Response, Twin, TwinServer

# a user's FSLogix folder under a profile directory, and optionally the container in it
CONTAINER = re.compile(r"(?P<dir>/.+?)/(?P<user>[^/]+@[^/]+)(?:/(?P<file>[^/]+))?/?")


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """Qumulo's error envelope."""
    return {"module": "qfsd", "error_class": code, "description": message, "stack": [], "user_visible": True}


def _iso(when: datetime | None) -> str:
    return "" if when is None else when.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


class QumuloTwin(Twin):
    """Serves one cluster; start two and `connect` them for replication."""

    def __init__(
        self, cluster: Cluster, *, port: int = 0, ca: LocalCA | None = None, latency_s: float = 0.0, hang_s: float = 30.0
    ) -> None:
        self.cluster = cluster
        self.server = TwinServer(
            self._dispatch, error_body=error_body, port=port, ca=ca, latency_s=latency_s, hang_s=hang_s, name=f"qumulo-{cluster.name}"
        )
        self.base_url = self.server.base_url
        self.ca = self.server.ca
        rr = "/v2/replication"
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/v1/session/who-am-i"), self._who_am_i),
            ("GET", re.compile(r"/v1/files/(?P<ref>.+)/info/attributes"), self._attributes),
            ("POST", re.compile(r"/v3/snapshots/?"), self._create_snapshot),
            ("GET", re.compile(r"/v3/snapshots/?"), self._list_snapshots),
            ("GET", re.compile(r"/v4/snapshots/status/?"), self._snapshot_statuses),
            ("GET", re.compile(r"/v3/snapshots/(?P<sid>\d+)"), self._get_snapshot),
            ("DELETE", re.compile(r"/v3/snapshots/(?P<sid>\d+)"), self._delete_snapshot),
            ("GET", re.compile(r"/v1/snapshots/total-used-capacity"), self._capacity),
            ("GET", re.compile(r"/v1/smb/files/?"), self._file_handles),
            ("GET", re.compile(r"/v3/smb/shares/?"), self._list_shares),
            ("GET", re.compile(r"/v3/smb/shares/(?P<share_id>[^/]+)"), self._get_share),
            ("POST", re.compile(r"/v1/smb/files/close/?"), self._close_files),
            ("GET", re.compile(rf"{rr}/(?P<side>source|target)-relationships/status/?"), self._statuses),
            ("GET", re.compile(rf"{rr}/(?P<side>source|target)-relationships/(?P<rid>[^/]+)/status"), self._status),
            ("POST", re.compile(rf"{rr}/source-relationships/reverse-target-relationship"), self._reverse),
            ("GET", re.compile(rf"{rr}/source-relationships/(?P<rid>[^/]+)"), self._get_source),
            ("PATCH", re.compile(rf"{rr}/source-relationships/(?P<rid>[^/]+)"), self._modify_source),
            ("POST", re.compile(rf"{rr}/source-relationships/(?P<rid>[^/]+)/replicate"), self._replicate),
            ("POST", re.compile(rf"{rr}/target-relationships/(?P<rid>[^/]+)/make-writable"), self._make_writable),
            ("POST", re.compile(rf"{rr}/target-relationships/(?P<rid>[^/]+)/reconnect"), self._reconnect),
        ]

    @property
    def clock(self) -> Clock:
        """The cluster's clock."""
        return self.cluster.clock

    def outage(self, on: bool = True) -> None:
        """The region goes dark: the cluster stops answering and stops replicating."""
        self.cluster.down = on
        self.server.outage = "hang" if on else None

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/v1/version":
            return Response(200, {"revision_id": "Qumulo Core 7.4.0 (twin)", "build_id": "twin", "flavor": "release"})
        with LOCK:
            self.cluster.settle()
            if request.method == "POST" and request.path == "/v1/session/login":
                body = request.json() or {}
                try:
                    return Response(200, {"bearer_token": self.cluster.login(str(body.get("username")), str(body.get("password")))})
                except QumuloModelError as exc:
                    return Response(exc.status, error_body(exc.status, exc.error_class, exc.description))
            token = request.headers.get("authorization", "")
            if not token.lower().startswith("bearer ") or not self.cluster.authorized(token[7:]):
                return Response(401, error_body(401, "http_unauthorized_error", "Need to log in first"))
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    try:
                        return handler(request, **match.groupdict())
                    except QumuloModelError as exc:
                        return Response(exc.status, error_body(exc.status, exc.error_class, exc.description))
            return Response(404, error_body(404, "http_not_found_error", f"{request.method} {request.path}"))

    # ----------------------------------------------------------------- files and snapshots

    def _who_am_i(self, request: Request) -> Response:
        """The signed-in identity (auth.who_am_i in qumulo-api): the cheapest authenticated call."""
        return Response(
            200,
            {"id": "500", "name": "tandem", "sid": "S-1-5-21-0-0-0-500", "uid": "", "primary_group": "513", "home_directory": None},
        )

    def _attributes(self, request: Request, ref: str) -> Response:
        """`api_get_files_attributes` of a directory, or of a user's container folder or VHDX under one."""
        container = CONTAINER.fullmatch(ref)
        if container is not None and container["dir"] in self.cluster.directories:
            d = self.cluster.directories[container["dir"]]
            profile = d.profiles.get(container["user"])
            if profile is not None and (
                container["file"] is None or container["file"].lower() == f"profile_{container['user'].split('@')[0]}.vhdx"
            ):
                number = str(10_000 + int(d.id) * 1000 + sorted(d.profiles).index(container["user"]))
                kind, name = (
                    ("FS_FILE_TYPE_FILE", container["file"]) if container["file"] else ("FS_FILE_TYPE_DIRECTORY", container["user"])
                )
                return Response(
                    200,
                    {
                        "id": number,
                        "file_number": number,
                        "path": ref,
                        "name": name,
                        "type": kind,
                        "size": str(30 * 2**30 if container["file"] else 0),
                        "creation_time": _iso(profile.born),
                        "modification_time": _iso(profile.written),
                        "change_time": _iso(profile.written),
                    },
                )
        d = self.cluster.directory(ref)
        return Response(
            200,
            {
                "id": d.id,
                "file_number": d.id,
                "path": d.path.rstrip("/") + "/",
                "name": d.path.rsplit("/", 1)[-1],
                "type": "FS_FILE_TYPE_DIRECTORY",
                "child_count": len(d.profiles),
            },
        )

    # ----------------------------------------------------------------- SMB shares

    @staticmethod
    def render_share(share: Share) -> dict[str, Any]:
        """`api_smb_share` (v3), the fields the qumulo-api SDK and qq read."""
        return {
            "id": share.id,
            "tenant_id": 1,
            "share_name": share.share_name,
            "fs_path": share.fs_path,
            "description": share.description,
            "permissions": [{"type": "ALLOWED", "trustee": {"domain": "WORLD", "auth_id": "8589934592"}, "rights": ["ALL"]}],
            "network_permissions": [{"type": "ALLOWED", "address_ranges": [], "rights": ["ALL"]}],
            "access_based_enumeration_enabled": False,
            "default_file_create_mode": "0644",
            "default_directory_create_mode": "0755",
            "require_encryption": False,
            "allow_fs_path_create": False,
            "expand_fs_path_variables": False,
            "offline_files_caching_mode": "MANUAL",
        }

    def _list_shares(self, request: Request) -> Response:
        return Response(200, {"entries": [self.render_share(s) for s in self.cluster.shares.values()]})

    def _get_share(self, request: Request, share_id: str) -> Response:
        share = self.cluster.shares.get(share_id)
        if share is None:
            raise QumuloModelError(404, "smb_share_doesnt_exist_error", f"share {share_id} does not exist")
        return Response(200, self.render_share(share))

    def render_snapshot(self, s: SnapshotRecord, *, status: bool = False) -> dict[str, Any]:
        """`api_snapshot_info`, or `api_snapshot_status` with `status`."""
        doc: dict[str, Any] = {
            "id": s.id,
            "name": s.name,
            "timestamp": _iso(s.taken),
            "source_file_id": s.directory.id,
            "policy_id": None,
            "expiration": _iso(s.expiration),
            "in_delete": s.deleted_at is not None,
        }
        if status:
            doc.update(source_file_path=s.directory.path + "/", policy_name=None, owners=s.owners, lock_key=None)
        return doc

    def _create_snapshot(self, request: Request) -> Response:
        body = request.json() or {}
        directory = self.cluster.directory(str(body.get("source_file_id") or "/"))
        expiration = datetime.fromisoformat(body["expiration"]) if body.get("expiration") else None
        return Response(
            200, self.render_snapshot(self.cluster.create_snapshot(directory, str(body.get("name_suffix") or ""), expiration))
        )

    def _listed(self, request: Request) -> list[SnapshotRecord]:
        # v3 takes one of all|exclude_in_delete|only_in_delete; v4 a comma list of api_snapshots_exclude_* filters
        wanted = set(request.query.get("filter", "all").split(","))
        items = sorted(self.cluster.snapshots.values(), key=lambda s: s.id)
        if wanted & {"exclude_in_delete", "api_snapshots_exclude_in_delete"}:
            items = [s for s in items if s.deleted_at is None]
        if wanted & {"only_in_delete", "api_snapshots_exclude_not_in_delete"}:
            items = [s for s in items if s.deleted_at is not None]
        return items

    def _list_snapshots(self, request: Request) -> Response:
        return Response(200, {"entries": [self.render_snapshot(s) for s in self._listed(request)]})

    def _snapshot_statuses(self, request: Request) -> Response:
        return Response(200, {"entries": [self.render_snapshot(s, status=True) for s in self._listed(request)]})

    def _get_snapshot(self, request: Request, sid: str) -> Response:
        return Response(200, self.render_snapshot(self.cluster.snapshot(int(sid))))

    def _delete_snapshot(self, request: Request, sid: str) -> Response:
        self.cluster.delete_snapshot(int(sid))
        return Response(202)

    def _capacity(self, request: Request) -> Response:
        return Response(200, {"bytes": str(sum(s.size for s in self.cluster.snapshots.values()))})

    # ----------------------------------------------------------------- SMB open files

    def _file_handles(self, request: Request) -> Response:
        """`api_smb_files_get_response`, paged by location (`after`, `limit`); paths only with resolve_paths."""
        resolve = request.query.get("resolve_paths", "").lower() == "true"
        number = request.query.get("file_number")
        handles = sorted(self.cluster.handles.values(), key=lambda h: int(h.location.split(":")[0]))
        if number:
            handles = [h for h in handles if h.file_number == number]
        after = request.query.get("after")
        if after:
            handles = [h for h in handles if int(h.location.split(":")[0]) > int(after.split(":")[0])]
        limit = int(request.query.get("limit") or 1000)
        page, more = handles[:limit], len(handles) > limit
        entries = [
            {
                "file_number": h.file_number,
                "handle_info": {
                    "location": h.location,
                    "version": 1,
                    "num_byte_range_locks": 0,
                    "access_mask": ["MS_ACCESS_FILE_READ_DATA", "MS_ACCESS_FILE_WRITE_DATA"],
                    "owner": h.user,
                    **({"path": h.path} if resolve else {}),
                },
            }
            for h in page
        ]
        following = ""
        if more:
            following = f"/v1/smb/files/?limit={limit}&after={page[-1].location}" + ("&resolve_paths=true" if resolve else "")
        return Response(200, {"file_handles": entries, "paging": {"next": following}})

    def _close_files(self, request: Request) -> Response:
        for item in request.json() or []:
            self.cluster.close_handle(str((item.get("handle_info") or {}).get("location", "")))
        return Response(200)

    # ----------------------------------------------------------------- replication

    def _relationship(self, rid: str, role: str) -> Relationship:
        rel = self.cluster.relationships.get(rid)
        if rel is None or (rel.source if role == "source" else rel.target) is not self.cluster:
            raise QumuloModelError(404, "http_not_found_error", f"no {role} relationship {rid}")
        return rel

    def render_status(self, rel: Relationship) -> dict[str, Any]:
        """The relationship status both sides report."""
        running = rel.job_started is not None
        return {
            "id": rel.id,
            "state": rel.state,
            "end_reason": "",
            "source_cluster_name": rel.source.name,
            "source_root_path": rel.source_dir.path + "/",
            "source_root_read_only": rel.source_dir.read_only,
            "source_address": rel.source.address,
            "source_port": 3712,
            "target_cluster_name": rel.target.name,
            "target_address": rel.target.address,
            "target_root_path": rel.target_dir.path + "/",
            "target_root_read_only": rel.target_dir.read_only,
            "target_root_id": rel.target_dir.id,
            "source_root_id": rel.source_dir.id,
            "job_state": "REPLICATION_RUNNING" if running else "REPLICATION_NOT_RUNNING",
            "job_start_time": _iso(rel.job_started),
            "recovery_point": _iso(rel.recovery_point),
            "error_from_last_job": rel.last_error,
            "duration_of_last_job": (
                {"nanoseconds": str(int(rel.last_duration.total_seconds() * 1e9))} if rel.last_duration else None
            ),
            "replication_enabled": True,
            "replication_mode": rel.mode,
            "replication_job_status": {"percent_complete": 50.0} if running else None,
        }

    def _statuses(self, request: Request, side: str) -> Response:
        return Response(
            200,
            [
                self.render_status(r)
                for r in self.cluster.relationships.values()
                if (r.source if side == "source" else r.target) is self.cluster
            ],
        )

    def _status(self, request: Request, side: str, rid: str) -> Response:
        return Response(200, self.render_status(self._relationship(rid, side)))

    def render_source(self, rel: Relationship) -> dict[str, Any]:
        """`api_source_relationship`: the source side's configuration."""
        return {
            "id": rel.id,
            "source_root_id": rel.source_dir.id,
            "source_root_read_only": rel.source_dir.read_only,
            "target_address": rel.target.address,
            "target_port": 3712,
            "replication_enabled": True,
            "replication_mode": rel.mode,
            "blackout_windows": rel.blackout_windows,
            "blackout_window_timezone": rel.blackout_timezone,
            "map_local_ids_to_nfs_ids": True,
            "replicate_object_acls": True,
            "snapshot_policies": [],
        }

    def _etag(self, rel: Relationship) -> str:
        digest = hashlib.sha256(json.dumps(self.render_source(rel), sort_keys=True).encode()).hexdigest()
        return f'"{digest[:16]}"'

    def _get_source(self, request: Request, rid: str) -> Response:
        rel = self._relationship(rid, "source")
        return Response(200, self.render_source(rel), {"ETag": self._etag(rel)})

    def _modify_source(self, request: Request, rid: str) -> Response:
        rel = self._relationship(rid, "source")
        expected = request.headers.get("if-match")
        if expected is not None and expected != self._etag(rel):
            raise QumuloModelError(412, "http_precondition_failed_error", f"{rid} changed since it was read")
        body = request.json() or {}
        if "source_root_read_only" in body:
            rel.source_dir.read_only = bool(body["source_root_read_only"])
        if "replication_mode" in body:
            rel.mode = str(body["replication_mode"])
        if "blackout_windows" in body:
            rel.blackout_windows = list(body["blackout_windows"] or [])
        if "blackout_window_timezone" in body:
            rel.blackout_timezone = str(body["blackout_window_timezone"])
        return Response(200, self.render_source(rel), {"ETag": self._etag(rel)})

    def _replicate(self, request: Request, rid: str) -> Response:
        rel = self._relationship(rid, "source")
        if rel.state != "ESTABLISHED":
            raise QumuloModelError(409, "replication_relationship_not_established_error", f"{rid} is {rel.state}")
        rel.changed_since_job = True
        if rel.job_started is None and not rel.source.down and not rel.in_blackout(self.clock.now()):
            start_job(rel, self.clock.now())  # "replicate now" starts a job in any mode, outside a blackout
        self.cluster.settle()
        return Response(202, {"monitor_uri": f"/v2/replication/source-relationships/{rid}/status"})

    def _make_writable(self, request: Request, rid: str) -> Response:
        rel = self._relationship(rid, "target")
        make_writable(rel, self.clock.now())
        return Response(200, self.render_status(rel))

    def _reverse(self, request: Request) -> Response:
        body = request.json() or {}
        rel = self.cluster.relationships.get(str(body.get("target_relationship_id")))
        if rel is None:
            raise QumuloModelError(404, "http_not_found_error", f"no target relationship {body.get('target_relationship_id')}")
        reverse(rel, self.cluster, str(body.get("source_address")))
        return Response(200, self.render_source(rel))

    def _reconnect(self, request: Request, rid: str) -> Response:
        rel = self._relationship(rid, "target")
        reconnect(rel, self.cluster, self.clock.now())
        return Response(200, self.render_status(rel))
