"""Snapshots: a week of the snapshot timer on two Qumulo twins, through the real function app on the local runtime.

The timer fires every 15 minutes; some firings are duplicated and some arrive past due. A foreign snapshot sits
on east all week. Central cannot take snapshots for four hours on Tuesday (its directories go stale); east is
dark for three hours on Thursday. The expected counts come from the schedule and those windows alone, not
from Tandem's output.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from local.runtime import LocalHost, VirtualClock
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.model import Cluster
from shared.settings import schedule_defaults

START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
DAYS = 7
FAULT = (START + timedelta(days=1, hours=9), START + timedelta(days=1, hours=13))  # central cannot snapshot
OUTAGE = (START + timedelta(days=3, hours=14), START + timedelta(days=3, hours=17))  # east is dark
FRESHNESS = timedelta(hours=2)


def _topology(east: QumuloTwin, central: QumuloTwin, path: Path) -> None:
    def region(name: str, twin: QumuloTwin, sub: str, dirs: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "location": name,
            "subscription_id": sub,
            "profile_directories": [{"path": d} for d in dirs],
            "anq": {
                "name": twin.cluster.name,
                "address": twin.base_url,
                "ca_bundle": twin.ca.ca_path,
                "read_timeout": "1s",
                "retry_budget": "2s",
                "credentials": {"username": "admin", "password": {"app_setting": "QUMULO_PASSWORD"}},
            },
        }

    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "regions": [
                    region("east", east, "00000000-0000-4000-8000-0000000000e1", ["/profiles/fslogix"]),
                    region("central", central, "00000000-0000-4000-8000-0000000000c1", ["/profiles/fslogix", "/profiles-dr/fslogix"]),
                ],
                "policies": {
                    "autoscale": {"default": {"phases": [{"phase": "peak", "start": "07:00"}]}},
                    "snapshots": {
                        "tiers": [
                            {"name": "hourly", "keep": "2d"},
                            {"name": "daily", "keep": "14d"},
                            {"name": "weekly", "keep": "8w"},
                        ],
                        "freshness": "2h",
                    },
                },
            }
        )
    )


def _expected(firings: list[datetime]) -> tuple[int, int]:
    """Snapshots and stale alerts the schedule implies, from the fault windows alone."""
    snapshots, stale = 0, 0
    dirs = {("east", "/profiles/fslogix"): OUTAGE, ("central", "/profiles/fslogix"): FAULT, ("central", "/profiles-dr/fslogix"): FAULT}
    for (region, _), (down_from, down_to) in dirs.items():
        slots: set[datetime] = set()
        newest: datetime | None = None
        for at in firings:
            healthy = not (down_from <= at < down_to)
            slot = at.replace(minute=0, second=0, microsecond=0)
            if healthy and slot not in slots:
                slots.add(slot)
                newest = at
            reachable = healthy or region == "central"  # central answers during its fault; east does not
            if reachable and (newest is None or at - newest > FRESHNESS):
                stale += 1
        snapshots += len(slots)
    return snapshots, stale


def run() -> dict[str, Any]:
    """Play the week; count what happened on the twins and what Tandem alerted."""
    began = time.perf_counter()
    clock = VirtualClock(START)
    east, central = Cluster("anq-east", clock), Cluster("anq-central", clock)
    east.mkdir("/profiles/fslogix")
    central.mkdir("/profiles/fslogix")
    central.mkdir("/profiles-dr/fslogix")
    foreign = east.create_snapshot(east.directory("/profiles/fslogix"), "admin-before-image-update", None)
    firings: list[datetime] = []
    with QumuloTwin(east, hang_s=1) as a, QumuloTwin(central) as b, tempfile.TemporaryDirectory() as tmp:
        topology = Path(tmp) / "topology.yaml"
        _topology(a, b, topology)
        settings = schedule_defaults(
            {
                "TANDEM_TOPOLOGY_PATH": str(topology),
                "QUMULO_PASSWORD": "tandem-demo",
                "REQUESTS_CA_BUNDLE": a.ca.bundle_path,
                "AUTOSCALE_SCHEDULE": "0 0 0 1 1 *",
                "SNAPSHOT_SCHEDULE": "0 */15 * * * *",
            }
        )
        with LocalHost(
            "function_app", storage=os.environ["AzureWebJobsStorage"], hub="benchsnap", clock=clock, settings=settings
        ) as host:
            for quarter in range(DAYS * 24 * 4):
                at = START + timedelta(minutes=15 * quarter)
                b.server.clear_faults()
                if FAULT[0] <= at < FAULT[1]:
                    b.server.inject("error", pattern="POST /v3/snapshots")
                a.outage(OUTAGE[0] <= at < OUTAGE[1])
                host.run_until(at)  # the scheduled firing (the runtime fires it when the clock reaches it)
                firings.append(at)
                if quarter % 11 == 5:  # a duplicated delivery of the same firing
                    host.fire_timer("snapshots_timer")
                    firings.append(at)
                if quarter % 17 == 3:  # a firing that arrives 7 minutes late, flagged past due
                    clock.advance(timedelta(minutes=7))
                    host.fire_timer("snapshots_timer", past_due=True)
                    firings.append(clock.now())
            a.outage(False)
            stale_alerts = sum(1 for e in host.received if e["type"] == "Tandem.Snapshots.Stale")
    ours = [s for c in (east, central) for s in c.created if s.suffix.startswith("tandem-")]
    distinct = {(s.directory.path, id(s.directory), s.suffix.split("-")[1]) for s in ours}
    touched = [r for r in a.server.log() if r.method in ("DELETE", "PATCH") and r.path.endswith(f"/{foreign.id}")]
    expected_snapshots, expected_stale = _expected(sorted(firings))
    return {
        "expected_snapshots": expected_snapshots,
        "taken": len(ours),
        "duplicates": len(ours) - len(distinct),
        "foreign_touched": len(touched) + (0 if foreign.id in east.snapshots else 1),
        "stale_alerts": stale_alerts,
        "expected_stale_alerts": expected_stale,
        "wall_s": round(time.perf_counter() - began, 1),
    }
