"""The command line an administrator uses: a wrong topology is one readable error and a non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "local" / "demo" / "topology.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "local.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


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
    assert lines[1:] == [
        f"{broken}: regions[0].host_pools[0].resource_group: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{{0,79}}$'"
    ]


def test_schema_is_written_for_editors(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert _cli("schema", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text())["title"] == "Tandem topology"


def test_plan_prints_each_policys_decision_for_a_snapshot(tmp_path: Path) -> None:
    snapshot = {
        "time": "2026-11-30T07:45:00Z",
        "phase": "ramp_up",
        "max_session_limit": 10,
        "load_balancer": "breadth_first",
        "policy": {"capacity_threshold_pct": 60, "minimum_hosts_pct": 20},
        "hosts": [
            {
                "name": "h1",
                "power": "running",
                "status": "Available",
                "sessions": 8,
                "active_sessions": 8,
                "allow_new_session": True,
                "excluded": False,
            },
            {
                "name": "h2",
                "power": "running",
                "status": "Available",
                "sessions": 7,
                "active_sessions": 6,
                "allow_new_session": True,
                "excluded": False,
            },
            {
                "name": "h3",
                "power": "deallocated",
                "status": "Shutdown",
                "sessions": 0,
                "active_sessions": 0,
                "allow_new_session": True,
                "excluded": False,
            },
            {
                "name": "h4",
                "power": "deallocated",
                "status": "Shutdown",
                "sessions": 0,
                "active_sessions": 0,
                "allow_new_session": True,
                "excluded": True,
            },
        ],
    }
    file = tmp_path / "pool.json"
    file.write_text(json.dumps(snapshot))
    native = _cli("plan", "--policy", "native", "--snapshot", str(file), "--json")
    assert native.returncode == 0, native.stderr
    # 15 sessions in 20 seats is 75% > 60%: ceil(15 / 6) = 3 hosts; h4 carries the exclusion tag
    assert json.loads(native.stdout) == {"target_hosts": 3, "actions": [{"action": "start", "host": "h3"}]}
    # the runbook: the 90% rule asks for ceil(15 / 9) = 2 hosts and 15 sessions on 16 cores stay under 1 per core
    legacy = json.loads(_cli("plan", "--policy", "legacy", "--snapshot", str(file), "--json").stdout)
    assert legacy == {"target_hosts": 2, "actions": []}
    explained = json.loads(_cli("plan", "--policy", "tandem", "--snapshot", str(file), "--json", "--explain").stdout)
    assert explained["target_hosts"] == 3 and explained["facts"]["sessions"] == 15
    assert explained["actions"][0]["reason"].startswith("forecast: 15 sessions")


def test_plan_rejects_a_bad_snapshot_naming_the_field(tmp_path: Path) -> None:
    file = tmp_path / "pool.json"
    file.write_text(
        json.dumps(
            {"time": "2026-11-30T07:45:00Z", "phase": "lunch", "max_session_limit": 10, "hosts": [{"name": "h1", "power": "running"}]}
        )
    )
    result = _cli("plan", "--policy", "native", "--snapshot", str(file), "--json")
    assert result.returncode == 1 and "pool.json: phase: Input should be" in result.stderr


def test_a_reader_that_goes_away_early_gets_no_traceback() -> None:
    """`scripts/tandem params FILE | head`: the pipe closes before the CLI writes; it exits quietly."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "params", str(ROOT / "local/demo/topology.yaml")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even imported the CLI
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
