"""The demo estate, running: the ARM twin, both ANQ twins and the local runtime with the real function app,
all on one clock, with the example topology pointed at the twins. The demo and the end-to-end tests use it."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from functions import services
from local.runtime import LocalHost
from local.runtime.clock import Clock
from local.twins.arm import ArmTwin, load_seed
from local.twins.arm.model import Site
from local.twins.fslogix import Fslogix
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.seed import build_clusters
from local.twins.qumulo.seed import load_seed as load_qumulo_seed
from shared.settings import schedule_defaults

TOPOLOGY = Path(__file__).with_name("topology.yaml")
SERVICE_PASSWORD = "demo-service-account"
# Tandem's own function app as ARM knows it (subscription, resource group, name): what `scripts/tandem --app` finds
SITE = ("00000000-0000-4000-8000-0000000000e1", "rg-tandem", "func-tandem-local")


@dataclass
class Estate:
    """Handles on everything that runs."""

    host: LocalHost
    arm: ArmTwin
    anq: dict[str, QumuloTwin]  # by region
    topology_path: Path
    fslogix: Fslogix  # what each sign-in found

    def restart(self) -> LocalHost:
        """Stop the runtime as a crashed or recycled worker would, and start a new one on the same task hub."""
        old = self.host
        old.close()
        services.reset()
        settings = {
            k: v
            for k, v in old.settings.items()  # the new worker gets its own front door and topic
            if k not in ("TANDEM_EVENTS_ENDPOINT", "TANDEM_EVENTS_KEY")
        }
        self.host = LocalHost(
            "function_app", storage=old.storage, clock=old.clock, settings=settings, hub=old.hub, identity=old.identity
        )
        self.host.start()
        self.publish_site()
        return self.host

    def publish_site(self) -> None:
        """Put the runtime in ARM as the deployed function app: its HTTPS address as defaultHostName, Entra ID sign-in
        for Tandem's app registration, and its function keys."""
        subscription, group, name = SITE
        host = self.host
        self.arm.estate.add_site(
            Site(subscription, group, name, "eastus2", host.front_door.https_host, "tandem", lambda fn: host.function_keys.get(fn))
        )


REPLICA_FIRST = {"VHDLocations": [r"\\anq-central.contoso.local\profiles-dr", r"\\anq-central.contoso.local\profiles"]}


def look_at_replica(arm: ArmTwin) -> None:
    """The fix the drill asks for: central's hosts look first in the replica of east's profiles, then in central's
    own share (an administrator's GPO change; FSLogix reads it at the next sign-in)."""
    pool = arm.estate.pool("00000000-0000-4000-8000-0000000000c1", "rg-avd-central", "hp-central-pooled")
    arm.estate.set_fslogix(pool, {**next(iter(pool.hosts.values())).fslogix, **REPLICA_FIRST})


def point_at_twins(tmp: Path, twins: dict[str, QumuloTwin], failover: dict[str, Any] | None = None) -> Path:
    """The example topology with each region's ANQ address and CA pointing at its twin, and `failover` policy
    settings over the example's (all else unchanged)."""
    doc = yaml.safe_load(TOPOLOGY.read_text(encoding="utf-8"))
    doc["policies"]["failover"] = {**doc["policies"].get("failover", {}), **(failover or {})}
    for region in doc["regions"]:
        twin = twins[region["name"]]
        region["anq"].update(address=twin.base_url, ca_bundle=twin.ca.ca_path, read_timeout="2s", retry_budget="3s")
    path = tmp / "topology.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@dataclass
class Twins:
    """The twins alone, on one clock: what a manual runbook drives (no Tandem runs)."""

    arm: ArmTwin
    anq: dict[str, QumuloTwin]  # by region
    topology_path: Path
    fslogix: Fslogix

    def settle(self) -> None:
        """Bring every twin's model up to its clock (VM power, sessions, replication jobs, closing handles)."""
        self.arm.estate.settle()
        for twin in self.anq.values():
            twin.cluster.settle()


@contextlib.contextmanager
def twins(
    clock: Clock,
    *,
    hang_s: float = 2.0,
    failover: dict[str, Any] | None = None,
    replica_first: bool = True,
    call_cost_s: dict[str, float] | None = None,
) -> Iterator[Twins]:
    """The demo's ARM and ANQ twins with the example topology pointed at them. `call_cost_s` ("arm", "qumulo")
    is the virtual time each request costs its caller (0 by default: calls are free)."""
    clusters = build_clusters(load_qumulo_seed(), clock)
    costs = call_cost_s or {}
    with (
        ArmTwin(load_seed(), clock=clock) as arm,
        QumuloTwin(clusters["anq-east"], hang_s=hang_s) as east,
        QumuloTwin(clusters["anq-central"], hang_s=hang_s) as central,
        tempfile.TemporaryDirectory() as tmp,
    ):
        arm.server.charge(clock, costs.get("arm", 0.0))
        for anq in (east, central):
            anq.server.charge(clock, costs.get("qumulo", 0.0))
        path = point_at_twins(Path(tmp), {"east": east, "central": central}, failover)
        fslogix = Fslogix(arm.estate, clusters.values())
        if replica_first:
            look_at_replica(arm)
        east.cluster.users["svc-tandem"] = SERVICE_PASSWORD  # the service account an admin creates
        arm.set_secret("kv-tandem-demo", "qumulo-central-token", central.cluster.issue_access_token())
        yield Twins(arm, {"east": east, "central": central}, path, fslogix)


@contextlib.contextmanager
def running(
    storage: str,
    clock: Clock,
    *,
    hub: str,
    settings: dict[str, str] | None = None,
    hang_s: float = 2.0,
    failover: dict[str, Any] | None = None,
    replica_first: bool = True,
    call_cost_s: dict[str, float] | None = None,
) -> Iterator[Estate]:
    """Start the estate; close the app's clients, the runtime and the twins on the way out. With `replica_first`
    central's hosts already look in the replica (the fixed estate); without it, as the demo seed has them."""
    with twins(clock, hang_s=hang_s, failover=failover, replica_first=replica_first, call_cost_s=call_cost_s) as t:
        values = schedule_defaults(
            {
                "TANDEM_TOPOLOGY_PATH": str(t.topology_path),
                "QUMULO_EAST_PASSWORD": SERVICE_PASSWORD,
                "TANDEM_ARM_RETRY_BUDGET_S": "3",  # like the ANQ budget: faults cost seconds
                **t.arm.identity_settings,
                **(settings or {}),
            }
        )
        estate = Estate(
            LocalHost("function_app", storage=storage, clock=clock, settings=values, hub=hub, identity=t.arm.identity).start(),
            t.arm,
            t.anq,
            t.topology_path,
            t.fslogix,
        )
        estate.publish_site()
        try:
            yield estate
        finally:
            services.reset()
            estate.host.close()
