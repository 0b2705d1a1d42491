"""Tandem's Qumulo client against the Qumulo twin: real httpx, real TLS on loopback, a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.runtime.clock import VirtualClock
from local.tls import LocalCA
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.model import Cluster, connect
from shared.errors import QumuloApiError, QumuloTransportError
from shared.qumulo.client import QumuloClient


@pytest.fixture
def pair() -> Iterator[tuple[QumuloTwin, QumuloTwin, VirtualClock]]:
    clock = VirtualClock()
    east, central = Cluster("anq-east", clock, address="10.1.0.5"), Cluster("anq-central", clock, address="10.2.0.5")
    connect("r1", east, "/profiles/fslogix", central, "/profiles-dr/fslogix")
    with QumuloTwin(east) as a, QumuloTwin(central) as b:
        yield a, b, clock


def _client(twin: QumuloTwin, clock: VirtualClock, **options: Any) -> QumuloClient:
    options.setdefault("username", "admin")
    options.setdefault("password", "tandem-demo")
    return QumuloClient(twin.base_url, ca_bundle=twin.ca.ca_path, name=twin.cluster.name,
                        sleep=lambda s: clock.advance(timedelta(seconds=s)), now=clock.now, **options)


def test_snapshots_are_created_listed_and_deleted_by_directory(pair: Any) -> None:
    east, _, clock = pair
    with _client(east, clock) as client:
        directory = client.file_attributes("/profiles/fslogix")
        taken = client.create_snapshot(directory.file_number, "tandem-hourly-20261130T10", clock.now() + timedelta(days=2))
        assert (taken.suffix, taken.source_file_id) == ("tandem-hourly-20261130T10", directory.id)
        assert [s.id for s in client.list_snapshots()] == [taken.id]
        client.delete_snapshot(taken.id)
        client.delete_snapshot(taken.id)  # deleting twice is done, not an error
        assert client.list_snapshots() == []
        assert [s.in_delete for s in client.list_snapshots(include_in_delete=True)] == [True]
        assert client.total_snapshot_capacity() > 0


def test_a_missing_directory_is_a_typed_error(pair: Any) -> None:
    east, _, clock = pair
    with _client(east, clock) as client, pytest.raises(QumuloApiError) as caught:
        client.file_attributes("/profiles/nope")
    assert (caught.value.status, caught.value.error_class) == (404, "fs_no_such_entry_error")


def test_an_expired_token_mid_run_is_renewed_once(pair: Any) -> None:
    east, _, clock = pair
    with _client(east, clock) as client:
        client.list_snapshots()
        east.cluster.expire_tokens()
        assert client.list_snapshots() == []
    assert [r.path for r in east.server.log("POST")] == ["/v1/session/login", "/v1/session/login"]


def test_a_503_burst_is_retried_for_reads(pair: Any) -> None:
    east, _, clock = pair
    east.server.inject("error", pattern="/v3/snapshots", limit=3)
    with _client(east, clock) as client:
        assert client.list_snapshots() == []
    assert [r.status for r in east.server.log("GET", "/v3/snapshots")] == [500, 500, 500, 200]


def test_a_cluster_outage_is_a_clear_error_within_the_timeout(pair: Any) -> None:
    east, _, clock = pair
    east.server.hang_s = 3
    with _client(east, clock, read_timeout_s=0.3, retry_budget_s=1) as client:
        client.login()
        east.outage()
        with pytest.raises(QumuloTransportError, match="timed out"):
            client.list_snapshots()


def test_an_untrusted_certificate_is_refused_unless_its_ca_is_configured() -> None:
    clock = VirtualClock()
    with QumuloTwin(Cluster("anq-other", clock), ca=LocalCA()) as twin:
        with QumuloClient(twin.base_url, username="admin", password="tandem-demo") as client, \
                pytest.raises(QumuloTransportError, match="CERTIFICATE_VERIFY_FAILED"):
            client.login()
        with QumuloClient(twin.base_url, username="admin", password="tandem-demo", ca_bundle=twin.ca.ca_path) as client:
            client.login()


def test_writes_after_the_recovery_point_are_exactly_what_make_writable_loses(pair: Any) -> None:
    east, central, clock = pair
    users = [f"user{i:03d}" for i in range(1, 11)]
    for user in users:
        east.cluster.write_profile("/profiles/fslogix", user)
    east.cluster.settle()  # a continuous job starts and copies those writes
    clock.advance(timedelta(minutes=5))
    east.cluster.settle()
    with _client(central, clock) as target:
        recovery_point = target.target_status("r1").recovery_point
        late = users[:3]
        for user in late:  # written after the last job started; a new job is running when the region fails
            east.cluster.write_profile("/profiles/fslogix", user)
        clock.advance(timedelta(seconds=10))
        east.outage()
        status = target.make_writable("r1")
        assert status.state == "DISCONNECTING"
        final = target.wait_writable("r1")
    written_late = {u for u, p in east.cluster.directory("/profiles/fslogix").profiles.items()
                    if recovery_point is not None and p.written > recovery_point}
    replica = central.cluster.directory("/profiles-dr/fslogix").profiles
    lost = {u for u in users if replica[u].version < east.cluster.directory("/profiles/fslogix").profiles[u].version}
    assert (final.state, final.target_root_read_only) == ("DISCONNECTED", False)
    assert lost == written_late == set(late)
