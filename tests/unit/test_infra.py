"""infra/: every Bicep file parses, checkov finds nothing beyond the listed skips, the example parameters are the
demo estate, the app settings and Event Grid subscriptions match the app, and the custom roles grant exactly the
ARM actions Tandem made in the whole test suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
BICEP = sorted(INFRA.rglob("*.bicep"))
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
ROLE_VARIABLES = ("sessionHostOperatorActions", "vmPowerOperatorActions", "accessDelegateActions")
# Data actions Tandem uses, and the built-in role (by id) that infra/app/rbac.bicep must grant for each.
DATA_ACTION_ROLES = {"Microsoft.KeyVault/vaults/secrets/getSecret/action": "4633458b-17de-408a-b874-0445c86b69e6"}


@cache
def _parse(path: Path) -> dict[str, Any]:
    from pycep import BicepParser

    return BicepParser().parse(text=path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", BICEP, ids=[str(p.relative_to(INFRA)) for p in BICEP])
def test_every_bicep_file_parses_and_documents_its_parameters(path: Path) -> None:
    tree = _parse(path)
    for name, param in tree.get("parameters", {}).items():
        assert any(d["type"] == "description" and d["argument"] for d in param["decorators"]), (
            f"{path.name}: parameter {name} has no @description"
        )
    for name, module in tree.get("modules", {}).items():
        target = (path.parent / module["detail"]["path"]).resolve()
        assert target.is_file(), f"{path.name}: module {name} points at {target}, which does not exist"
    for name, resource in tree.get("resources", {}).items():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", resource["api_version"]), f"{path.name}: {name}"


def test_a_broken_bicep_file_is_caught_by_the_parser() -> None:
    from lark.exceptions import UnexpectedInput
    from pycep import BicepParser

    text = (INFRA / "app" / "identity.bicep").read_text(encoding="utf-8").replace("location: location", "location:")
    with pytest.raises(UnexpectedInput):
        BicepParser().parse(text=text)


@pytest.mark.slow
def test_checkov_fails_exactly_the_listed_skips_each_with_a_reason() -> None:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: scripts/test installs it from requirements-tools.txt"
    skips = yaml.safe_load((INFRA / "checkov-skips.yaml").read_text(encoding="utf-8"))
    assert all(isinstance(reason, str) and len(reason) > 40 for reason in skips.values()), skips
    # Offline and loopback only: no guideline download, no update check, and a dead proxy for anything else.
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    result = subprocess.run(
        [str(CHECKOV), "-d", str(INFRA), "--framework", "bicep", "arm", "--compact", "--quiet", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    bicep = next(r for r in reports if r["check_type"] == "bicep")
    assert bicep["summary"]["parsing_errors"] == 0  # checkov only counts files it cannot parse
    assert bicep["summary"]["passed"] > 30
    failed = {c["check_id"] for r in reports for c in r["results"]["failed_checks"]}
    assert failed - set(skips) == set(), "new checkov findings: fix them or list them with a reason"
    assert set(skips) - failed == set(), "listed skips that no longer fail: remove them from infra/checkov-skips.yaml"


def test_example_parameters_are_the_demo_estate_and_name_only_real_parameters() -> None:
    from shared.config import load_topology

    given = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    estate = load_topology(ROOT / "local" / "demo" / "topology.yaml").deployment_parameters()
    for name, value in estate.items():
        assert given[name]["value"] == value, name
    params = _parse(INFRA / "main.bicep")["parameters"]
    assert set(given) <= set(params)
    required = {name for name, p in params.items() if p["default"] is None}
    assert required <= set(given), f"main.parameters.json lacks {required - set(given)}"


def _functions() -> dict[str, list[dict[str, Any]]]:
    from local.runtime.host import index_app  # the app is indexed once per process, shared with the runtime

    return {f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()] for f in index_app("function_app")[1]}


def test_app_settings_give_every_schedule_the_triggers_name() -> None:
    resolved = {m for bindings in _functions().values() for b in bindings for m in re.findall(r"%(\w+)%", json.dumps(b))} - {
        "TANDEM_TASK_HUB"
    }  # host.json's, set too
    assert resolved == {"AUTOSCALE_SCHEDULE", "SNAPSHOT_SCHEDULE", "ANQ_WATCH_SCHEDULE"}
    settings = _parse(INFRA / "main.bicep")["modules"]["api"]["config"]["params"]["appSettings"]
    assert resolved | {"TANDEM_TASK_HUB", "TANDEM_TOPOLOGY_PATH", "TANDEM_EVENTS_ENDPOINT", "AZURE_CLIENT_ID"} <= set(settings)


def test_event_grid_subscriptions_deliver_to_the_apps_event_grid_functions() -> None:
    functions = _functions()
    event_grid = {name for name, bindings in functions.items() if any(b["type"] == "eventGridTrigger" for b in bindings)}
    text = (INFRA / "app" / "events.bicep").read_text(encoding="utf-8")
    targets = set(re.findall(r"/functions/(\w+)'", text))
    assert targets == event_grid == {"autoscale_events", "failover_events"}
    from shared.autoscale.signals import FAILOVER_STARTED
    from shared.payloads import HEALTH_ANNOTATED, HEALTH_CHANGED

    assert f"'{HEALTH_CHANGED}'" in text and f"'{FAILOVER_STARTED}'" in text and f"'{HEALTH_ANNOTATED}'" in text
    assert "Qumulo" not in text and "anqResourceIds" not in text  # the HealthResources topic speaks for VMs only


def test_alerts_reach_the_webhook_through_an_action_group_and_its_rules() -> None:
    """What Azure Monitor really delivers: an action group's Azure Function receiver (common schema) for the app's
    alert route, the logon-rate rule over the host pools' Connection logs, Service Health and ANQ Resource Health."""
    functions = _functions()
    routes = {
        name: next(b.get("route") for b in bindings if b["type"] == "httpTrigger")
        for name, bindings in functions.items()
        if any(b["type"] == "httpTrigger" for b in bindings)
    }
    tree = _parse(INFRA / "app" / "alerts.bicep")["resources"]
    receiver = tree["group"]["config"]["properties"]["azureFunctionReceivers"][0]
    assert receiver["functionName"] == "alerts_webhook" and routes["alerts_webhook"] == "alerts"
    assert receiver["useCommonAlertSchema"] is True and "/api/alerts?code=" in receiver["httpTriggerUrl"]
    rule = tree["logonRate"]["config"]["properties"]
    assert tree["logonRate"]["type"] == "Microsoft.Insights/scheduledQueryRules"
    query = rule["criteria"]["allOf"][0]["query"]
    assert query.startswith("WVDConnections") and 'State == "Started"' in query and "by _ResourceId" in query
    assert rule["criteria"]["allOf"][0]["dimensions"][0]["name"] == "_ResourceId"
    body = {name: r["config"].get("config", r["config"]) for name, r in tree.items()}  # a conditional nests it once more
    conditions = {
        name: body[name]["properties"]["condition"]["allOf"][0]["equals"]
        for name, r in tree.items()
        if r["type"] == "Microsoft.Insights/activityLogAlerts"
    }
    assert conditions == {"serviceHealth": "ServiceHealth", "anqHealth": "ResourceHealth"}
    diagnostics = _parse(INFRA / "app" / "hostpool-diagnostics.bicep")["resources"]["diagnostics"]
    assert diagnostics["config"]["config"]["properties"]["logs"] == [{"category": "Connection", "enabled": True}]  # a loop
    api = (INFRA / "app" / "api.bicep").read_text(encoding="utf-8")
    assert "'/api/alerts'" in api  # excluded from App Service authentication: the receiver sends the function key


def _granted() -> dict[str, list[str]]:
    tree = _parse(INFRA / "app" / "roles.bicep")
    roles = {
        name: r["config"]["properties"]["permissions"][0]["actions"]
        for name, r in tree["resources"].items()
        if r["type"] == "Microsoft.Authorization/roleDefinitions"
    }
    assert sorted(roles.values()) == sorted(ROLE_VARIABLES), roles  # each role's actions are one of the lists
    return {name: tree["variables"][name]["value"] for name in ROLE_VARIABLES}


def test_the_roles_grant_only_what_the_twin_knows_azure_authorizes() -> None:
    from local.twins.arm.api import ROUTES

    known = {action.lower() for *_, action in ROUTES}
    for role, actions in _granted().items():
        assert len(actions) == len(set(actions)), role
        assert {a.lower() for a in actions} <= known, f"{role} grants actions no ARM call needs"
        assert not any("*" in a for a in actions), f"{role} uses a wildcard"


@pytest.mark.after_suite
def test_the_custom_roles_grant_exactly_the_arm_actions_tandem_made_in_the_whole_suite(whole_suite: None) -> None:
    from local.twins.arm.api import actions_seen

    used = actions_seen("tandem")
    assert not [a for a in used if a.startswith("unmapped")], used  # a call the twin cannot name
    control = {a.lower() for a in used if a not in DATA_ACTION_ROLES}
    granted = {a.lower(): role for role, actions in _granted().items() for a in actions}
    assert control - set(granted) == set(), "Tandem called actions its roles do not grant"
    assert set(granted) - control == set(), "the roles grant actions Tandem never called in the suite"
    rbac = (INFRA / "app" / "rbac.bicep").read_text(encoding="utf-8")
    for action in (a for a in used if a in DATA_ACTION_ROLES):
        assert DATA_ACTION_ROLES[action] in rbac, f"{action} needs role {DATA_ACTION_ROLES[action]} in rbac.bicep"


def test_tandems_state_reads_the_identity_based_storage_settings_the_infra_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import settings

    text = (INFRA / "app" / "api.bicep").read_text(encoding="utf-8")
    written = set(re.findall(r"^\s*(AzureWebJobsStorage__\w+):", text, re.M))
    assert {"AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId"} <= written
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    assert settings.storage("table") is None
    for service in ("blob", "queue", "table"):
        assert f"AzureWebJobsStorage__{service}ServiceUri" in written  # blob: locks; queue, table: Durable; table: state
        monkeypatch.setenv(f"AzureWebJobsStorage__{service}ServiceUri", f"https://st.{service}.core.windows.net")
    assert settings.storage("blob") == ("https://st.blob.core.windows.net", True)
    assert settings.storage("table") == ("https://st.table.core.windows.net", True)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    assert settings.storage("blob") == ("UseDevelopmentStorage=true", False)


def _package(root: Path) -> list[Path]:
    """The files `azd deploy` packages: everything but what .funcignore names (gitignore-style, as the tools read it)."""
    import fnmatch

    patterns = [
        line.strip()
        for line in (root / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(rel: Path) -> bool:
        for pattern in patterns:
            directory = pattern.endswith("/")
            name = pattern.rstrip("/")
            parts = rel.parts[:-1] if directory else rel.parts
            if any(fnmatch.fnmatch(part, name) for part in parts) or (not directory and fnmatch.fnmatch(str(rel), name)):
                return True
        return False

    listed = (
        subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=False)
        if (root / ".git").exists()
        else None
    )
    if listed is not None and listed.returncode == 0:  # a clone: what is tracked (untracked scratch files are no app)
        files = [Path(p) for p in listed.stdout.split()]
    else:  # an unpacked archive: every file, as azd itself walks the folder
        files = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    return [p for p in files if not ignored(p)]


def test_the_deployed_package_is_the_app_alone_and_loads_on_its_own(tmp_path: Path) -> None:
    import shutil

    files = _package(ROOT)
    tops = {p.parts[0] for p in files}
    assert {"function_app.py", "host.json", "requirements.txt", "functions", "shared"} <= tops
    assert not tops & {"tests", "local", "bench", "infra", "scripts", "node_modules", "requirements-dev.txt"}, tops
    for path in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, tmp_path / path)
    # Index the package as the worker does, from the package alone (the indexer itself comes from the test tree).
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; from local.runtime.indexer import validate_app; "
        "sys.path.remove(sys.argv[2]); n = len(validate_app(sys.argv[1] + '/function_app.py')); "
        "print(n, sys.modules['shared'].__file__, sys.modules['functions'].__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(ROOT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, *sources = result.stdout.split()
    assert int(count) == len(_functions())
    assert all(source.startswith(str(tmp_path)) for source in sources), sources  # the package's code, not the tree's


def test_a_relative_topology_path_is_found_from_the_app_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config.loader import get_topology

    monkeypatch.chdir(tmp_path)  # the worker's working directory need not be the package root
    assert not (tmp_path / "local/demo/topology.yaml").exists()
    assert [r.name for r in get_topology("local/demo/topology.yaml").regions] == ["east", "central"]


def test_run_command_is_granted_only_on_the_session_host_vm_resource_groups() -> None:
    holders = [role for role, actions in _granted().items() if "Microsoft.Compute/virtualMachines/runCommand/action" in actions]
    assert holders == ["vmPowerOperatorActions"]
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    modules = re.findall(r"^module (\w+) '[^']+' = \[for \([^)]*\) in (\w+): \{(.*?)^\}\]", main, re.S | re.M)
    holding = [(name, loop) for name, loop, body in modules if "vmPowerOperatorRoleId" in body]
    assert holding == [("vmAccess", "vmResourceGroups")]
    assert main.count("roles.outputs.vmPowerOperatorRoleId") == 2  # that assignment and the deployment output
