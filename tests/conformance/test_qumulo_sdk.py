"""Conformance: Qumulo's own SDK (`qumulo-api`, test-only) drives the Qumulo twin and gets what the reference describes.

The SDK never verifies TLS, which is why Tandem does not use it; against the loopback twin that does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.runtime.clock import VirtualClock
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.model import Cluster, ReplicationTimings, connect

pytest.importorskip("qumulo.rest_client", reason="qumulo-api is a test-only dependency in requirements-dev.txt")
from qumulo.lib.request import RequestError
from qumulo.rest.snapshot import SnapshotStatusFilter
from qumulo.rest_client import RestClient

TIMINGS = ReplicationTimings()  # the defaults the fixture's relationship uses


def _sdk(twin: QumuloTwin) -> RestClient:
    url = urlsplit(twin.base_url)
    client = RestClient(url.hostname, url.port, timeout=10)
    client.conninfo.backdoor = False  # as root on loopback the SDK would otherwise bind a privileged source port
    client.login("admin", "tandem-demo")
    return client


@pytest.fixture
def sdk_pair() -> Iterator[tuple[RestClient, RestClient, QumuloTwin, QumuloTwin, VirtualClock]]:
    clock = VirtualClock()
    east, central = Cluster("anq-east", clock, address="10.1.0.5"), Cluster("anq-central", clock, address="10.2.0.5")
    connect("r1", east, "/profiles/fslogix", central, "/profiles-dr/fslogix")
    with QumuloTwin(east) as a, QumuloTwin(central) as b:
        rc_a, rc_b = _sdk(a), _sdk(b)
        yield rc_a, rc_b, a, b, clock
        rc_a.close()
        rc_b.close()


def _settle(clock: VirtualClock, *twins: QumuloTwin, by: timedelta) -> None:
    clock.advance(by)
    for twin in twins:
        twin.cluster.settle()


def test_login_path_lookup_and_snapshot_lifecycle(sdk_pair: Any) -> None:
    rc, _, twin, _, _ = sdk_pair
    attrs = rc.fs.get_file_attr(path="/profiles/fslogix")  # sent as /v1/files/%2Fprofiles%2Ffslogix/...
    assert attrs["file_number"] == attrs["id"] == twin.cluster.directory("/profiles/fslogix").id
    assert attrs["type"] == "FS_FILE_TYPE_DIRECTORY"

    made = rc.snapshot.create_snapshot(name="tandem-daily", expiration="2030-01-01T00:00:00Z", source_file_id=attrs["file_number"])
    assert made["name"] == f"{made['id']}_tandem-daily" and made["source_file_id"] == attrs["file_number"]
    assert made["expiration"].startswith("2030-01-01T00:00:00") and made["in_delete"] is False
    unnamed = rc.snapshot.create_snapshot(path="/profiles/fslogix")
    assert unnamed["name"].endswith("_OnDemand") and unnamed["expiration"] == ""

    listed = rc.snapshot.list_snapshots()["entries"]
    assert [s["id"] for s in listed] == [made["id"], unnamed["id"]]
    statuses = rc.snapshot.list_snapshot_statuses([SnapshotStatusFilter.EXCLUDE_IN_DELETE])["entries"]
    assert {s["source_file_path"] for s in statuses} == {"/profiles/fslogix/"}
    assert all(s["owners"] == [] for s in statuses)

    rc.snapshot.delete_snapshot(unnamed["id"])
    assert [s["in_delete"] for s in rc.snapshot.list_snapshots()["entries"]] == [False, True]
    live = rc.snapshot.list_snapshot_statuses([SnapshotStatusFilter.EXCLUDE_IN_DELETE])["entries"]
    assert [s["id"] for s in live] == [made["id"]]
    with pytest.raises(RequestError) as missing:
        rc.snapshot.get_snapshot(999)
    assert missing.value.status_code == 404


def test_a_missing_path_is_fs_no_such_entry(sdk_pair: Any) -> None:
    rc = sdk_pair[0]
    with pytest.raises(RequestError) as caught:
        rc.fs.get_file_attr(path="/profiles/nope")
    assert (caught.value.status_code, caught.value.error_class) == (404, "fs_no_such_entry_error")


def test_replication_status_make_writable_reverse_and_reconnect(sdk_pair: Any) -> None:
    east_rc, central_rc, east, central, clock = sdk_pair
    east.cluster.write_profile("/profiles/fslogix", "user001")
    _settle(clock, east, central, by=2 * TIMINGS.job + timedelta(seconds=1))  # the job in flight, then one with the write

    source = east_rc.replication.list_source_relationship_statuses()
    target = central_rc.replication.get_target_relationship_status("r1")
    assert [s["id"] for s in source] == ["r1"] and source[0]["state"] == "ESTABLISHED"
    assert (target["state"], target["target_root_read_only"], target["job_state"]) == ("ESTABLISHED", True, "REPLICATION_NOT_RUNNING")
    assert target["recovery_point"] and target["error_from_last_job"] == ""

    # failover: the target is made writable; the revert runs in the background
    assert central_rc.replication.make_target_writable("r1")["state"] == "DISCONNECTING"
    with pytest.raises(RequestError) as again:  # a wrong-state call gets an error, not a second revert
        central_rc.replication.make_target_writable("r1")
    assert again.value.status_code == 409
    _settle(clock, east, central, by=TIMINGS.revert)
    after = central_rc.replication.get_target_relationship_status("r1")
    assert (after["state"], after["target_root_read_only"]) == ("DISCONNECTED", False)
    central.cluster.write_profile("/profiles-dr/fslogix", "user001")  # users work in the surviving region

    # re-protect: reverse on the old target (giving the current source's address), reconnect on the old source
    with pytest.raises(RequestError) as wrong:
        central_rc.replication.reverse_target_relationship("r1", source_address="10.9.9.9")
    assert wrong.value.status_code == 400
    reversed_ = central_rc.replication.reverse_target_relationship("r1", source_address=east.cluster.address)
    assert reversed_["id"] == "r1" and reversed_["target_address"] == east.cluster.address
    assert [s["id"] for s in central_rc.replication.list_source_relationship_statuses()] == ["r1"]
    assert central_rc.replication.list_target_relationship_statuses() == []
    old_source = east_rc.replication.get_target_relationship_status("r1")
    assert old_source["state"] == "DISCONNECTED"
    with pytest.raises(RequestError) as gone:  # reversing twice: the target relationship is no longer here
        central_rc.replication.reverse_target_relationship("r1", source_address=east.cluster.address)
    assert gone.value.status_code == 404

    east.cluster.write_profile("/profiles/fslogix", "user002")  # a stray write on the old source after the failover
    assert east_rc.replication.reconnect_target_relationship("r1")["state"] == "RECONNECTING"
    _settle(clock, east, central, by=TIMINGS.reconnect)
    done = east_rc.replication.get_target_relationship_status("r1")
    assert (done["state"], done["target_root_read_only"]) == ("ESTABLISHED", True)
    assert "user002" not in east.cluster.directory("/profiles/fslogix").profiles  # reconnect discarded it

    _settle(clock, east, central, by=TIMINGS.job + timedelta(seconds=1))
    assert east.cluster.directory("/profiles/fslogix").profiles["user001"].version == 2  # central's write came back


def test_an_html_502_from_a_proxy_is_not_a_qumulo_error(sdk_pair: Any) -> None:
    from qumulo.lib.request import APIException

    rc, _, twin, _, _ = sdk_pair
    twin.server.inject("proxy", pattern="/v3/snapshots", limit=1)
    with pytest.raises(APIException):
        rc.snapshot.list_snapshots()


def test_a_stale_if_match_on_a_source_relationship_is_412(sdk_pair: Any) -> None:
    rc = sdk_pair[0]
    current = rc.replication.get_source_relationship("r1", with_etag=True)
    rc.replication.modify_source_relationship("r1", source_root_read_only=True, if_match=current.etag)
    with pytest.raises(RequestError) as stale:  # the same ETag again: the relationship changed since it was read
        rc.replication.modify_source_relationship("r1", source_root_read_only=False, if_match=current.etag)
    assert stale.value.status_code == 412
    assert rc.replication.get_source_relationship("r1")["source_root_read_only"] is True


def test_the_root_and_the_smb_shares_read_as_a_cluster_serves_them(sdk_pair: Any) -> None:
    """The SDK's path lookup of `/` (file id 2 on every cluster) and its share listing, as Tandem's check reads them."""
    rc, _, twin, _, _ = sdk_pair
    root = rc.fs.get_file_attr(path="/")
    assert (root["id"], root["path"], root["type"]) == ("2", "/", "FS_FILE_TYPE_DIRECTORY")
    share = twin.cluster.add_share("profiles", "/profiles/fslogix")
    listed = rc.smb.smb_list_shares()["entries"]
    assert [(s["id"], s["share_name"], s["fs_path"]) for s in listed] == [(share.id, "profiles", "/profiles/fslogix")]
    one = rc.smb.smb_list_share(share.id)
    assert one["share_name"] == "profiles" and {"permissions", "require_encryption", "tenant_id"} <= set(one)
    with pytest.raises(RequestError) as missing:
        rc.smb.smb_list_share("99")
    assert missing.value.status_code == 404
