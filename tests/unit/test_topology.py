"""The topology model: the example validates, and a wrong file names the file, the field and the reason."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import TopologyError, json_schema, load_topology, parse_topology

EXAMPLE = Path(__file__).parents[2] / "local" / "demo" / "topology.yaml"


@pytest.fixture
def data() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _error(data: dict[str, Any]) -> TopologyError:
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, "estate.yaml")
    return caught.value


def test_example_topology_describes_two_paired_regions() -> None:
    topology = load_topology(EXAMPLE)
    assert [r.name for r in topology.regions] == ["east", "central"]
    assert topology.pairings[0].secondary == "central"
    assert topology.policies.snapshots.freshness.total_seconds() == 7200


def test_secret_given_as_a_value_is_refused_with_its_path(data: dict[str, Any]) -> None:
    data["regions"][0]["anq"]["credentials"]["password"] = "hunter2"
    error = _error(data)
    assert error.problems == [
        "regions[0].anq.credentials.password: secrets are references, never values: use "
        "{key_vault_secret: <uri>} or {app_setting: <NAME>}"
    ]
    assert "hunter2" not in str(error)
    assert str(error).startswith("estate.yaml: regions[0].anq.credentials.password:")


def test_plain_http_cluster_address_is_refused(data: dict[str, Any]) -> None:
    data["regions"][1]["anq"]["address"] = "http://10.2.0.5:8000"
    assert _error(data).problems[0].startswith("regions[1].anq.address: must be an https:// URL")


def test_malformed_key_vault_uri_is_refused(data: dict[str, Any]) -> None:
    data["regions"][1]["anq"]["credentials"]["access_token"] = {"key_vault_secret": "https://example.com/x"}
    assert "key_vault_secret must look like" in _error(data).problems[0]


def test_unknown_key_is_an_error_not_ignored(data: dict[str, Any]) -> None:
    data["policies"]["failover"]["max_rop"] = "15m"
    assert _error(data).problems == ["policies.failover.max_rop: Extra inputs are not permitted"]


def test_pairing_with_unknown_region_names_it(data: dict[str, Any]) -> None:
    data["pairings"][0]["secondary"] = "westeurope"
    assert "pairing names region 'westeurope'" in _error(data).problems[0]


def test_replication_directory_must_be_a_profile_directory(data: dict[str, Any]) -> None:
    data["pairings"][0]["replication"][0]["target_directory"] = "/elsewhere"
    assert "'/elsewhere' is not a profile directory of 'central'" in _error(data).problems[0]


def test_host_pool_must_name_a_defined_policy(data: dict[str, Any]) -> None:
    data["regions"][0]["host_pools"][0]["autoscale_policy"] = "nightly"
    assert "autoscale_policy 'nightly'" in _error(data).problems[0]


def test_bad_duration_and_time_zone_each_name_their_field(data: dict[str, Any]) -> None:
    broken = copy.deepcopy(data)
    broken["policies"]["snapshots"]["freshness"] = "soon"
    broken["policies"]["autoscale"]["weekday"]["time_zone"] = "Mars/Olympus"
    problems = _error(broken).problems
    assert "policies.autoscale.weekday.time_zone: unknown IANA time zone 'Mars/Olympus'" in problems
    assert any(p.startswith("policies.snapshots.freshness: must be a duration") for p in problems)


def test_phases_out_of_order_are_refused(data: dict[str, Any]) -> None:
    phases = data["policies"]["autoscale"]["weekday"]["phases"]
    phases[0], phases[1] = phases[1], phases[0]
    assert "in order of their start times" in _error(data).problems[0]


def test_unreadable_and_non_yaml_files_are_reported_with_their_name(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"missing.yaml: \(file\): cannot read"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: [\n  - name: east\n   broken")
    with pytest.raises(TopologyError, match=r"bad.yaml: line \d+ column \d+: not valid YAML"):
        load_topology(bad)


def test_json_schema_is_exported_for_editors() -> None:
    schema = json.loads(json_schema())
    assert schema["title"] == "Tandem topology"
    assert {"regions", "pairings", "policies"} <= set(schema["properties"])
    assert "SecretRef" in schema["$defs"]
