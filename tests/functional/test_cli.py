"""The command line an administrator uses: a wrong topology is one readable error and a non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "local" / "demo" / "topology.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "local.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_example_topology_validates() -> None:
    result = _cli("validate", str(EXAMPLE))
    assert result.returncode == 0
    assert "valid: 2 regions, 2 host pools, 1 pairing(s)" in result.stdout


def test_invalid_topology_exits_non_zero_naming_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["regions"][0]["host_pools"][0]["resource_group"] = "bad group!"
    broken = tmp_path / "estate.yaml"
    broken.write_text(yaml.safe_dump(data))
    result = _cli("validate", str(broken))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "invalid topology:"
    assert lines[1:] == [f"{broken}: regions[0].host_pools[0].resource_group: String should match pattern "
                         f"'^[A-Za-z0-9][A-Za-z0-9._-]{{0,79}}$'"]


def test_schema_is_written_for_editors(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert _cli("schema", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text())["title"] == "Tandem topology"
