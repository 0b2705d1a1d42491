"""The documented manual procedure, executed: what an administrator without Tandem runs, one step after another.

Qumulo's failover and failback steps (Qumulo Core 2.12.0+ care articles and the endpoint descriptions) with the
official `qumulo-api` SDK, and the AVD steps (drain, message, log off, start hosts, move the Desktop Virtualization
User assignments) with the azure-mgmt SDKs, against the same twins Tandem runs on. Nothing of Tandem is used.
Each step is waited out before the next starts, checking every `POLL` of virtual time, as a careful operator
with a script would: no think time, no parallel work (hosts are started only once the storage is done).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from local.demo.estate import Twins
from local.runtime.clock import VirtualClock

POLL = timedelta(seconds=15)


@dataclass(frozen=True)
class Side:
    """One region of the demo estate, as the runbook names it."""

    region: str
    subscription: str
    resource_group: str
    pool: str
    app_group: str
    directory: str  # the profile directory users write in this region


EAST = Side("east", "00000000-0000-4000-8000-0000000000e1", "rg-avd-east", "hp-east-pooled", "dag-east-desktop", "/profiles/fslogix")
CENTRAL = Side(
    "central",
    "00000000-0000-4000-8000-0000000000c1",
    "rg-avd-central",
    "hp-central-pooled",
    "dag-central-desktop",
    "/profiles-dr/fslogix",
)


@contextmanager
def _arm_environment(twins: Twins) -> Iterator[None]:
    """The SDKs find the twin's managed identity and CA the way they would find Azure's."""
    settings = {**twins.arm.identity_settings, "REQUESTS_CA_BUNDLE": twins.arm.ca.bundle_path}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Runbook:
    """An administrator's procedure; `steps` records each step's start and end in seconds from `began`."""

    def __init__(self, twins: Twins, clock: VirtualClock, *, users: int, drain_wait: timedelta) -> None:
        from azure.identity import ManagedIdentityCredential
        from azure.mgmt.authorization.v2022_04_01 import AuthorizationManagementClient
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.desktopvirtualization import DesktopVirtualizationMgmtClient
        from qumulo.rest_client import RestClient

        self.twins, self.clock, self.users, self.drain_wait = twins, clock, users, drain_wait
        self._credential = credential = ManagedIdentityCredential()
        base = {"base_url": twins.arm.base_url}
        self.dv = {s.region: DesktopVirtualizationMgmtClient(credential, s.subscription, **base) for s in (EAST, CENTRAL)}
        self.compute = {s.region: ComputeManagementClient(credential, s.subscription, **base) for s in (EAST, CENTRAL)}
        self.auth = {s.region: AuthorizationManagementClient(credential, s.subscription, **base) for s in (EAST, CENTRAL)}
        self._rest_client = RestClient
        self._qq: dict[str, Any] = {}
        self.began = clock.now()
        self.steps: list[dict[str, Any]] = []

    def close(self) -> None:
        """Close every client the runbook opened."""
        for client in [*self._qq.values(), *self.dv.values(), *self.compute.values(), *self.auth.values()]:
            client.close()
        self._credential.close()

    def __enter__(self) -> Runbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- pacing

    def _at(self) -> float:
        return round((self.clock.now() - self.began).total_seconds(), 1)

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        """Do one step and record it."""
        start = self._at()
        result = action()
        self.steps.append({"step": name, "start_s": start, "end_s": self._at()})
        return result

    def wait(self, name: str, done: Callable[[], bool], limit: timedelta = timedelta(hours=1)) -> None:
        """Check `done` every POLL until it holds."""
        start, deadline = self._at(), self.clock.now() + limit
        while not done():
            if self.clock.now() > deadline:
                raise RuntimeError(f"runbook step {name!r} did not finish within {limit}")
            self.clock.advance(POLL)
            self.twins.settle()
        self.steps.append({"step": name, "start_s": start, "end_s": self._at()})

    # ----------------------------------------------------------------- AVD steps

    def _hosts(self, side: Side) -> list[Any]:
        return list(self.dv[side.region].session_hosts.list(side.resource_group, side.pool))

    @staticmethod
    def _short(host: Any) -> str:
        return str(host.name).split("/")[-1]

    def drain(self, side: Side, allow: bool = False) -> None:
        from azure.mgmt.desktopvirtualization.models import SessionHostPatch

        for host in self._hosts(side):
            self.dv[side.region].session_hosts.update(
                side.resource_group, side.pool, self._short(host), session_host=SessionHostPatch(allow_new_session=allow)
            )

    def _sessions(self, side: Side) -> list[tuple[str, str]]:
        found = self.dv[side.region].user_sessions.list_by_host_pool(side.resource_group, side.pool)
        return [(str(s.name).split("/")[1], str(s.name).split("/")[2]) for s in found]

    def message(self, side: Side) -> None:
        from azure.mgmt.desktopvirtualization.models import SendMessage

        for host, session in self._sessions(side):
            self.dv[side.region].user_sessions.send_message(
                side.resource_group,
                side.pool,
                host,
                session,
                send_message=SendMessage(message_title="Maintenance", message_body="Save your work and sign out."),
            )

    def log_off(self, side: Side) -> None:
        for host, session in self._sessions(side):
            self.dv[side.region].user_sessions.delete(side.resource_group, side.pool, host, session, force=True)

    def _available_seats(self, side: Side) -> int:
        pool = self.dv[side.region].host_pools.get(side.resource_group, side.pool)
        return sum(int(pool.max_session_limit or 0) for h in self._hosts(side) if h.allow_new_session and h.status == "Available")

    def start_hosts(self, side: Side) -> None:
        """Start enough deallocated hosts (allowing new sessions) for the users, beyond those already available."""
        pool = self.dv[side.region].host_pools.get(side.resource_group, side.pool)
        limit = int(pool.max_session_limit or 1)
        short = math.ceil(self.users / limit) - self._available_seats(side) // limit
        for host in self._hosts(side):
            if short <= 0:
                break
            vm = str(host.resource_id)
            parts = vm.split("/")
            status = self.compute[side.region].virtual_machines.instance_view(parts[4], parts[-1])
            if any((s.code or "") == "PowerState/deallocated" for s in status.statuses or []):
                self.compute[side.region].virtual_machines.begin_start(parts[4], parts[-1], polling=False)
                short -= 1

    def hosts_ready(self, side: Side) -> bool:
        return self._available_seats(side) >= self.users

    def move_assignments(self, source: Side, target: Side) -> None:
        """Grant every principal of the source's desktop group on the target's, then revoke at the source."""
        import uuid

        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        src_scope, dst_scope = (self._group_id(s) for s in (source, target))
        held = [
            a
            for a in self.auth[source.region].role_assignments.list_for_scope(src_scope, filter="atScope()")
            if (a.scope or "").lower() == src_scope.lower()
        ]
        for a in held:
            role = str(a.role_definition_id).split("/")[-1]
            self.auth[target.region].role_assignments.create(
                dst_scope,
                str(uuid.uuid4()),
                RoleAssignmentCreateParameters(
                    role_definition_id=f"/subscriptions/{target.subscription}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{role}",
                    principal_id=a.principal_id,
                    principal_type=a.principal_type,
                ),
            )
        for a in held:
            self.auth[source.region].role_assignments.delete(src_scope, a.name)

    @staticmethod
    def _group_id(side: Side) -> str:
        return (
            f"/subscriptions/{side.subscription}/resourceGroups/{side.resource_group}/providers/"
            f"Microsoft.DesktopVirtualization/applicationGroups/{side.app_group}"
        )

    # ----------------------------------------------------------------- Qumulo steps

    def qq(self, region: str) -> Any:
        """The SDK signed in to one region's cluster, on first use (a lost region is never asked)."""
        if region not in self._qq:
            url = urlsplit(self.twins.anq[region].base_url)
            client = self._rest_client(url.hostname, url.port, timeout=10)
            client.conninfo.backdoor = False  # the SDK would bind a privileged source port as root
            client.login("admin", "tandem-demo")
            self._qq[region] = client
        return self._qq[region]

    def relationship(self, region: str, role: str) -> str:
        """The one replication relationship where `region` is the `role` ("source" or "target")."""
        listing = (
            self.qq(region).replication.list_source_relationship_statuses()
            if role == "source"
            else self.qq(region).replication.list_target_relationship_statuses()
        )
        return str(listing[0]["id"])

    def handles_closed(self, side: Side) -> bool:
        handles = [
            h
            for page in self.qq(side.region).smb.list_file_handles(resolve_paths=True)
            for h in (getattr(page, "data", page) or {}).get("file_handles", [])
        ]
        root = side.directory.rstrip("/") + "/"
        return not any(str((h.get("handle_info") or {}).get("path", "")).startswith(root) for h in handles)

    def replicated(self, region: str, rid: str, after: datetime) -> bool:
        status = self.qq(region).replication.get_source_relationship_status(rid)
        point = status.get("recovery_point")
        return (
            status["job_state"] == "REPLICATION_NOT_RUNNING"
            and bool(point)
            and datetime.fromisoformat(point.replace("Z", "+00:00")) >= after
        )

    def writable(self, region: str, rid: str) -> bool:
        status = self.qq(region).replication.get_target_relationship_status(rid)
        return status["state"] == "DISCONNECTED" and not status["target_root_read_only"]

    def established(self, region: str, rid: str) -> bool:
        return self.qq(region).replication.get_target_relationship_status(rid)["state"] == "ESTABLISHED"

    # ----------------------------------------------------------------- the procedures

    def planned(self, source: Side, target: Side) -> None:
        """Planned failover: drain, warn, wait, log off, wait for the containers to close, fence the source, one
        last job, make the target writable, then start hosts and move the users."""
        rid = self.relationship(source.region, "source")
        self.switch(source, rid)
        self.storage_to(target, rid)
        self.users_to(source, target)

    def switch(self, source: Side, rid: str) -> None:
        """The users leave `source` and its last writes reach the target: drain, warn, the policy's drain wait, log
        off, wait for the containers to close, fence the source (read-only), one last job, its recovery point."""
        self.step("drain source hosts", lambda: self.drain(source))
        self.step("message users", lambda: self.message(source))
        drained = self.clock.now()
        self.wait("drain wait", lambda: self.clock.now() - drained >= self.drain_wait)
        self.step("log off users", lambda: self.log_off(source))
        self.wait("profiles closed", lambda: self.handles_closed(source))
        fenced = self.step(
            "source read-only",
            lambda: (self.qq(source.region).replication.modify_source_relationship(rid, source_root_read_only=True), self.clock.now())[
                1
            ],
        )
        self.step("replicate", lambda: self.qq(source.region).replication.replicate(rid))
        self.wait("replication caught up", lambda: self.replicated(source.region, rid, fenced))

    def storage_to(self, target: Side, rid: str) -> None:
        self.step("make writable", lambda: self.qq(target.region).replication.make_target_writable(rid))
        self.wait("target writable", lambda: self.writable(target.region, rid))

    def users_to(self, source: Side, target: Side) -> None:
        self.step("start target hosts", lambda: self.start_hosts(target))
        self.wait("target hosts available", lambda: self.hosts_ready(target))
        self.step("move assignments", lambda: self.move_assignments(source, target))

    def unplanned(self, source: Side, target: Side) -> None:
        """Unplanned failover: the source is gone; make the target writable at its recovery point, then hosts and
        users."""
        rid = self.relationship(target.region, "target")
        self.storage_to(target, rid)
        self.users_to(source, target)

    def failback(self, serving: Side, home: Side) -> None:
        """Re-protect (reverse on the serving side, reconnect the home side and wait for it to catch up), a planned
        move home, then the original direction restored (reverse at home, reconnect the standby, clear the
        read-only flag the reversal may re-apply), and the users moved."""
        rid = self.relationship(serving.region, "target")
        self.step(
            "reverse",
            lambda: self.qq(serving.region).replication.reverse_target_relationship(
                rid, source_address=self.twins.anq[home.region].cluster.address
            ),
        )
        asked = self.step(
            "reconnect home", lambda: (self.clock.now(), self.qq(home.region).replication.reconnect_target_relationship(rid))[0]
        )
        self.wait("home re-protected", lambda: self.established(home.region, rid))
        self.wait("home caught up", lambda: self.replicated(serving.region, rid, asked))
        self.switch(serving, rid)
        self.storage_to(home, rid)
        self.step(
            "restore direction",
            lambda: self.qq(home.region).replication.reverse_target_relationship(
                rid, source_address=self.twins.anq[serving.region].cluster.address
            ),
        )
        self.step("reconnect standby", lambda: self.qq(serving.region).replication.reconnect_target_relationship(rid))
        self.wait("standby re-protected", lambda: self.established(serving.region, rid))
        self.step(
            "home writable", lambda: self.qq(home.region).replication.modify_source_relationship(rid, source_root_read_only=False)
        )
        self.step("undrain home hosts", lambda: self.drain(home, allow=True))
        self.users_to(serving, home)
