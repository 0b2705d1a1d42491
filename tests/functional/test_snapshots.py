"""Scheduled snapshots against two Qumulo twins on a virtual clock: tiers, idempotency, only ours, freshness."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.runtime.clock import VirtualClock
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.model import Cluster
from shared.config.loader import parse_topology
from shared.qumulo.client import QumuloClient
from shared.snapshots.service import Snapshotter

MONDAY = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)
TIERS = [{"name": "hourly", "keep": "2d"}, {"name": "daily", "keep": "14d"}, {"name": "weekly", "keep": "8w"}]


def topology(east: QumuloTwin, central: QumuloTwin, *, east_dirs: list[dict[str, Any]] | None = None) -> Any:
    def region(name: str, twin: QumuloTwin, sub: str, dirs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": name,
            "location": name,
            "subscription_id": sub,
            "profile_directories": dirs,
            "anq": {
                "name": twin.cluster.name,
                "address": twin.base_url,
                "ca_bundle": twin.ca.ca_path,
                "credentials": {"username": "admin", "password": {"app_setting": "QUMULO_PASSWORD"}},
            },
        }

    return parse_topology(
        {
            "version": 1,
            "regions": [
                region("east", east, "00000000-0000-4000-8000-0000000000e1", east_dirs or [{"path": "/profiles/fslogix"}]),
                region(
                    "central",
                    central,
                    "00000000-0000-4000-8000-0000000000c1",
                    [{"path": "/profiles/fslogix"}, {"path": "/profiles-dr/fslogix"}],
                ),
            ],
            "policies": {
                "autoscale": {"default": {"phases": [{"phase": "peak", "start": "07:00"}]}},
                "snapshots": {"tiers": TIERS, "freshness": "2h", "daily_at": "00:00", "weekly_on": "sun"},
            },
        }
    )


@pytest.fixture
def twins() -> Iterator[tuple[QumuloTwin, QumuloTwin, VirtualClock]]:
    clock = VirtualClock(MONDAY)
    east, central = Cluster("anq-east", clock), Cluster("anq-central", clock)
    east.mkdir("/profiles/fslogix")
    central.mkdir("/profiles/fslogix")
    central.mkdir("/profiles-dr/fslogix")
    with QumuloTwin(east) as a, QumuloTwin(central) as b:
        yield a, b, clock


def snapshotter(topo: Any, clock: VirtualClock, **client_options: Any) -> Snapshotter:
    def client_for(region: Any) -> QumuloClient:
        return QumuloClient(
            region.anq.address,
            username="admin",
            password="tandem-demo",
            ca_bundle=region.anq.ca_bundle,
            name=region.anq.name,
            sleep=lambda s: None,
            **client_options,
        )

    worker = Snapshotter(topo, client_for=client_for, now=clock.now)
    opened.append(worker)
    return worker


opened: list[Snapshotter] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while opened:
        opened.pop().close()


def _live(twin: QumuloTwin, path: str) -> list[Any]:
    twin.cluster.settle()
    d = twin.cluster.directory(path)
    return sorted((s for s in twin.cluster.snapshots.values() if s.directory is d and s.deleted_at is None), key=lambda s: s.id)


def test_a_week_produces_exactly_one_snapshot_per_slot_with_its_longest_tier(twins: Any) -> None:
    east, central, clock = twins
    worker = snapshotter(topology(east, central), clock)
    foreign = east.cluster.create_snapshot(east.cluster.directory("/profiles/fslogix"), "admin-before-upgrade", None)
    for quarter in range(7 * 24 * 4):  # the timer every 15 minutes for a week
        worker.run()
        if quarter % 9 == 0:
            worker.run()  # a duplicated firing
        clock.advance(timedelta(minutes=15))
    made = [s for s in east.cluster.snapshots.values() if s.suffix.startswith("tandem-")]
    posts = east.server.log("POST", "/v3/snapshots")
    assert len(posts) == 168  # one per hourly slot, whatever the firings did (deleted ones included)
    live = _live(east, "/profiles/fslogix")
    tiers = [s.suffix.rsplit("-", 1)[1] for s in live if s.suffix.startswith("tandem-")]
    # the first slot caught up the weekly tier; six midnights are daily, Sunday's is weekly; hourly ones
    # live two days (48 slots, two of which are those midnights)
    assert (tiers.count("weekly"), tiers.count("daily"), tiers.count("hourly")) == (2, 5, 46)
    for s in made:
        slot = datetime.strptime(s.suffix.split("-")[1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        keep = {"hourly": timedelta(days=2), "daily": timedelta(days=14), "weekly": timedelta(weeks=8)}
        assert s.expiration == slot + keep[s.suffix.rsplit("-", 1)[1]]
    assert east.cluster.snapshots[foreign.id].deleted_at is None  # someone else's snapshot is never touched
    touched = [r for r in east.server.log() if r.method in ("DELETE", "PATCH") and r.path.endswith(f"/{foreign.id}")]
    assert touched == []


def test_past_due_and_missed_slots_are_caught_up_once(twins: Any) -> None:
    east, central, clock = twins
    worker = snapshotter(topology(east, central), clock)
    worker.run()  # Monday 00:05: daily (and the weekly caught up)
    clock.advance(timedelta(hours=23, minutes=40))  # the timer was down until Monday 23:45
    worker.run()
    clock.advance(timedelta(hours=3))  # missed Tuesday's midnight; runs at 02:45 and again (past due) at 02:50
    worker.run()
    clock.advance(timedelta(minutes=5))
    worker.run()
    suffixes = [s.suffix for s in _live(east, "/profiles/fslogix")]
    assert suffixes == [
        "tandem-20261130T0000Z-weekly",
        "tandem-20261130T2300Z-hourly",
        "tandem-20261201T0200Z-daily",
    ]  # the missed daily rides on the next snapshot, once


def test_a_stale_directory_and_an_unreachable_cluster_raise_alerts_and_the_rest_proceeds(twins: Any, caplog: Any) -> None:
    east, central, clock = twins
    caplog.set_level(logging.ERROR, logger="tandem.snapshots")
    worker = snapshotter(topology(east, central), clock, read_timeout_s=0.3, retry_budget_s=0.5)
    worker.run()
    central.server.inject("error", pattern="POST /v3/snapshots", rate=1.0)  # central cannot take snapshots
    for _ in range(9):
        clock.advance(timedelta(minutes=15))
        worker.run()
    stale = [json.loads(r.message) for r in caplog.records if '"snapshots.stale"' in r.message]
    assert {(s["region"], s["path"]) for s in stale} == {("central", "/profiles/fslogix"), ("central", "/profiles-dr/fslogix")}
    assert len(_live(east, "/profiles/fslogix")) == 3  # east went on every hour
    central.server.clear_faults()
    east.server.hang_s = 2
    east.outage()
    caplog.clear()
    clock.advance(timedelta(hours=1))
    results = worker.run()
    unreachable = [json.loads(r.message) for r in caplog.records if '"snapshots.cluster_unreachable"' in r.message]
    assert [u["region"] for u in unreachable] == ["east"]
    assert {(r.region, r.result) for r in results} == {("east", "failed"), ("central", "taken")}


def test_a_wrong_directory_is_named_and_the_others_proceed(twins: Any, caplog: Any) -> None:
    east, central, clock = twins
    caplog.set_level(logging.ERROR, logger="tandem.snapshots")
    topo = topology(east, central, east_dirs=[{"path": "/profiles/fslogx"}, {"path": "/profiles/fslogix"}])
    results = {(r.region, r.path): r for r in snapshotter(topo, clock).run()}
    wrong = results[("east", "/profiles/fslogx")]
    assert wrong.result == "failed" and "/profiles/fslogx does not exist on anq-east" in wrong.detail
    assert "regions[east].profile_directories" in wrong.detail
    assert results[("east", "/profiles/fslogix")].result == "taken"
    assert any('"snapshots.directory_missing"' in r.message for r in caplog.records)


def test_on_demand_snapshots_are_labelled_idempotent_and_reported(twins: Any) -> None:
    east, central, clock = twins
    worker = snapshotter(topology(east, central), clock)
    worker.run()
    first = worker.take_now("central", "/profiles-dr/fslogix", "failover-abc123")
    assert worker.take_now("central", "/profiles-dr/fslogix", "failover-abc123") == first  # a retried activity
    report = {c["region"]: c for c in worker.report()}
    dr = next(d for d in report["central"]["directories"] if d["path"] == "/profiles-dr/fslogix")
    assert [p["tier"] for p in dr["recovery_points"]] == ["ondemand", "weekly"] and dr["fresh"] is True
    assert report["central"]["snapshot_capacity_bytes"] > 0


def test_the_timer_function_records_a_ledger_alerts_by_cloudevent_and_reports(
    twins: Any, storage: str, hub: str, tmp_path: Any
) -> None:
    import yaml

    from functions import services
    from local.runtime import LocalHost
    from shared.settings import schedule_defaults
    from shared.state.tables import safe_key, table

    east, central, clock = twins
    doc = topology(east, central).model_dump(mode="json", exclude_none=True)
    for region in doc["regions"]:
        region["anq"].update(read_timeout="1s", retry_budget="2s")
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    settings = schedule_defaults(
        {
            "TANDEM_TOPOLOGY_PATH": str(path),
            "QUMULO_PASSWORD": "tandem-demo",
            "REQUESTS_CA_BUNDLE": east.ca.bundle_path,
            "AUTOSCALE_SCHEDULE": "0 0 0 1 1 *",
        }
    )
    services.reset()
    try:
        with LocalHost("function_app", storage=storage, hub=hub, clock=clock, settings=settings) as host:
            host.advance(timedelta(hours=1))  # 00:05 -> 01:05: firings at 00:15, 00:30, 00:45, 01:00
            east.server.hang_s = 1
            east.outage()
            host.advance(timedelta(minutes=15))
            rows = list(table("snapshotledger").list_entities())
            _, answer = host.http("GET", "snapshots", function="snapshots_report")
            report = {c["region"]: c for c in answer["clusters"]}
            alerts = [e["type"] for e in host.received]
    finally:
        services.reset()
    taken = [r for r in rows if r["result"] == "taken"]
    directories = [("east", "/profiles/fslogix"), ("central", "/profiles/fslogix"), ("central", "/profiles-dr/fslogix")]
    assert sorted((r["PartitionKey"], r["slot"]) for r in taken) == sorted(
        (safe_key(f"{region}|{p}"), slot) for region, p in directories for slot in ("20261130T0000Z", "20261130T0100Z")
    )
    assert [r["result"] for r in rows if r["PartitionKey"] == safe_key("east|/profiles/fslogix")].count("failed") == 1
    assert "Tandem.Snapshots.ClusterUnreachable" in alerts
    assert "error" in report["east"] and report["central"]["snapshot_capacity_bytes"] > 0
