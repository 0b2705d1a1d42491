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
    return QumuloClient(
        twin.base_url,
        ca_bundle=twin.ca.ca_path,
        name=twin.cluster.name,
        sleep=lambda s: clock.advance(timedelta(seconds=s)),
        **options,
    )


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
        with (
            QumuloClient(twin.base_url, username="admin", password="tandem-demo") as client,
            pytest.raises(QumuloTransportError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
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
        final = _poll(clock, lambda: target.target_status("r1"), lambda s: s.writable)
    written_late = {
        u
        for u, p in east.cluster.directory("/profiles/fslogix").profiles.items()
        if recovery_point is not None and p.written > recovery_point
    }
    replica = central.cluster.directory("/profiles-dr/fslogix").profiles
    lost = {u for u in users if replica[u].version < east.cluster.directory("/profiles/fslogix").profiles[u].version}
    assert (final.state, final.target_root_read_only) == ("DISCONNECTED", False)
    assert lost == written_late == set(late)


def test_a_proxy_html_502_is_a_clear_transport_error_not_a_qumulo_error(pair: Any) -> None:
    east, _, clock = pair
    east.server.inject("proxy", pattern="/v3/snapshots", limit=1)
    with _client(east, clock) as client:
        assert client.list_snapshots() == []  # a read: the 502 is retried
        client.login()
        east.server.inject("proxy", pattern="/make-writable", limit=1)
        with pytest.raises(QumuloTransportError, match="502 from something in front of the cluster"):
            client.request("POST", "/v2/replication/target-relationships/r1/make-writable", idempotent=False)
    assert [r.status for r in east.server.log("GET", "/v3/snapshots")] == [502, 200]


def test_wrong_state_calls_are_typed_errors_and_change_nothing(pair: Any) -> None:
    _, central, clock = pair
    with _client(central, clock) as target:
        with pytest.raises(QumuloApiError) as caught:
            target.request("POST", "/v2/replication/target-relationships/r1/reconnect", idempotent=False)
        assert caught.value.status == 409
        with pytest.raises(QumuloApiError) as caught:
            target.request(
                "POST",
                "/v2/replication/source-relationships/reverse-target-relationship",
                json={"target_relationship_id": "r1", "source_address": "10.1.0.5"},
                idempotent=False,
            )
        assert caught.value.status == 409
        assert (target.target_status("r1").state, target.target_status("r1").target_root_read_only) == ("ESTABLISHED", True)


def _poll(clock: VirtualClock, read: Any, done: Any, limit: timedelta = timedelta(minutes=30)) -> Any:
    """What the orchestration does with a durable timer: read the status every 15 s until `done(status)`."""
    give_up = clock.now() + limit
    while not done(status := read()):
        assert clock.now() < give_up, status
        clock.advance(timedelta(seconds=15))
    return status


def test_failover_and_failback_through_the_client_and_the_status_predicates(pair: Any) -> None:
    east, central, clock = pair
    east.cluster.write_profile("/profiles/fslogix", "user001")
    with _client(east, clock) as a, _client(central, clock) as b:
        # planned: fence the source, replicate now, poll for a job that started after the fence
        a.set_source_read_only("r1", True)
        fenced = clock.now()
        a.replicate("r1")
        assert not a.source_status("r1").caught_up(fenced)  # the job is running: not yet
        assert _poll(clock, lambda: a.source_status("r1"), lambda s: s.caught_up(fenced)).recovery_point >= fenced
        b.make_writable("r1")
        assert b.make_writable("r1").state == "DISCONNECTING"  # a second call is a no-op, not an error
        assert not b.target_status("r1").writable  # the revert takes time
        assert not _poll(clock, lambda: b.target_status("r1"), lambda s: s.writable).target_root_read_only
        central.cluster.write_profile("/profiles-dr/fslogix", "user001")
        # failback: reverse on the old target, reconnect the old source, then the way back
        assert b.reverse("r1", east.cluster.address).id == "r1"
        assert b.reverse("r1", east.cluster.address).id == "r1"  # already reversed is done
        a.reconnect("r1")
        assert _poll(clock, lambda: a.target_status("r1"), lambda s: s.established).target_root_read_only
        started = clock.now()
        b.replicate("r1")
        _poll(clock, lambda: b.source_status("r1"), lambda s: s.caught_up(started))
    assert east.cluster.directory("/profiles/fslogix").profiles["user001"].version == 2


def test_a_job_that_fails_reads_as_failed_not_as_running(pair: Any) -> None:
    east, central, clock = pair
    central.outage()  # the target region is dark: the job cannot land
    with _client(east, clock) as a:
        started = clock.now()
        a.replicate("r1")
        failed = _poll(clock, lambda: a.source_status("r1"), lambda s: s.job_failed or s.caught_up(started))
        assert failed.job_failed and not failed.caught_up(started)
        assert "target unreachable" in failed.error_from_last_job


def test_the_standalone_twin_prints_ready_and_serves_the_demo_cluster() -> None:
    import subprocess
    import sys

    with subprocess.Popen(
        [sys.executable, "-m", "local.twins.qumulo", "--port", "0", "--password", "pw-from-flag"], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            assert line.startswith("READY ") and fields["cluster"] == "anq-east"
            with QumuloClient(fields["base_url"], username="admin", password="pw-from-flag", ca_bundle=fields["ca"]) as c:
                assert c.file_attributes("/profiles/fslogix").path == "/profiles/fslogix/"
                assert [s.state for s in c.source_statuses()] == ["ESTABLISHED"]
            with (
                QumuloClient(fields["base_url"], username="admin", password="tandem-demo", ca_bundle=fields["ca"]) as c,
                pytest.raises(QumuloApiError) as refused,
            ):
                c.login()
            assert refused.value.status == 401
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_a_bad_seed_names_the_file_and_the_field(tmp_path: Any) -> None:
    from local.twins.qumulo.seed import load_seed

    seed = tmp_path / "qumulo.yaml"
    seed.write_text(
        "clusters: [{name: a, address: 10.0.0.1}]\nrelationships: [{id: r, source: a, source_path: /p, target: b, target_path: /q}]\n"
    )
    with pytest.raises(ValueError, match=r"qumulo.yaml: : Value error, relationship r: unknown cluster 'b'"):
        load_seed(seed)
