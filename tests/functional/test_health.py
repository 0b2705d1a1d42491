"""The health route: 200 with the estate when the topology loads, 503 naming the problems when not."""

from pathlib import Path

import yaml

from local.runtime import LocalHost, VirtualClock
from shared.settings import schedule_defaults

EXAMPLE = Path(__file__).parents[2] / "local" / "demo" / "topology.yaml"


def _health(storage: str, hub: str, topology: Path) -> tuple[int, dict]:
    with LocalHost(
        "function_app",
        storage=storage,
        hub=hub,
        clock=VirtualClock(),
        settings=schedule_defaults({"TANDEM_TOPOLOGY_PATH": str(topology)}),
    ) as host:
        return host.http("GET", "health", function="health")


def test_health_summarises_a_valid_estate(storage: str, hub: str) -> None:
    status, report = _health(storage, hub, EXAMPLE)
    assert status == 200
    assert report == {
        "ok": True,
        "regions": ["east", "central"],
        "host_pools": 2,
        "profile_directories": 3,
        "pairings": ["east->central"],
        "profile_paths": [],
        "autoscale_left_alone": [],
    }


def test_health_reports_an_invalid_topology_as_503_with_its_problems(storage: str, hub: str, tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["policies"]["snapshots"]["tiers"] = []
    broken = tmp_path / "estate.yaml"
    broken.write_text(yaml.safe_dump(data))
    status, report = _health(storage, hub, broken)
    assert status == 503
    assert report == {"ok": False, "problems": ["policies.snapshots.tiers: List should have at least 1 item after validation, not 0"]}
