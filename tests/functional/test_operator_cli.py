"""The operator's command line (`scripts/tandem failover ...`, `whatif`) against the local runtime on the wall clock,
run as the operator runs it (a separate process, over HTTP, with the printed key and a signed-in token): a drill
from start to its evidence report, an unplanned failover that waits for an approver, an approve an Operator-only
caller is refused (and nothing changes), the approver's reject, and the what-if of a pool; and a deployed Tandem
found through ARM alone (`--app`), by a person signed in to Azure Cloud Shell."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.demo.estate import SITE, Estate, running
from local.runtime.clock import WallClock
from local.twins.arm.api import actions_seen
from tests.functional.test_failover import QUICK

ROOT = Path(__file__).parents[2]
PAIR = ["--source", "east", "--target", "central"]
ANA = ["--as", "ana@contoso.com", "--roles", "Tandem.Failover.Operator"]
BOB = ["--as", "bob@contoso.com", "--roles", "Tandem.Failover.Approver"]


@pytest.fixture(scope="module")
def live(storage: str) -> Iterator[Estate]:
    with running(storage, WallClock(), hub="tcli", failover=QUICK) as estate:
        yield estate


def tandem(
    estate: Estate, *args: str, where: list[str] | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`scripts/tandem ARGS` against the local runtime, with the key its READY line prints (or as `where` says, in a
    process whose environment is this one's without any Azure or Tandem setting, plus `env`)."""
    host = estate.host
    where = ["--url", host.front_door.base_url, "--key", host.master_key] if where is None else where
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "AZURE_", "IDENTITY_", "MSI_", "REQUESTS_CA"))}
    return subprocess.run([sys.executable, "-m", "local.cli", *args, *where, "--poll", "0.2"], cwd=ROOT, timeout=300,
                          env={**clean, **(env or {}), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip


def test_a_drill_from_start_to_its_evidence_report(live: Estate, tmp_path: Path) -> None:
    report = tmp_path / "drill.html"
    done = tandem(live, "failover", "drill", *PAIR, "--reason", "quarterly DR test", "--report", str(report), *ANA)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "failover-central-east: drill east -> central started"
    shown = [line.split()[0] for line in lines if line.startswith("  ")]
    steps = live.host.durable.status("failover-central-east")["customStatus"]["steps"]
    assert shown[:2] == ["preflight", "profile"] and len(shown) == len(steps)  # every step, in order, as it completed
    assert re.match(
        r"failover-central-east: drill \((RPO \d+ s|RPO unknown: no recovery point yet); expected RTO \d+ s\)$", lines[-2]
    ), lines[-2]
    assert lines[-1] == f"report: {report.resolve().as_uri()}"
    page = report.read_text(encoding="utf-8")
    assert page.count('<rect class="step"') == len(steps) and "ana@contoso.com" in page and "quarterly DR test" in page
    assert live.host.master_key not in done.stdout + done.stderr  # the key is never printed


def test_an_operator_only_caller_cannot_approve_and_the_failover_waits_for_an_approver(live: Estate) -> None:
    asked = tandem(live, "failover", "start", *PAIR, "--mode", "unplanned", "--reason", "east answers slowly", "--follow", *ANA)
    assert asked.returncode == 3, asked.stdout + asked.stderr  # it needs a person
    assert "failover-central-east: awaiting approval (RPO" in asked.stdout
    assert "scripts/tandem failover approve|reject failover-central-east" in asked.stdout

    refused = tandem(live, "failover", "approve", "failover-central-east", *ANA)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == "error: 403 Missing role: this call needs the app role Tandem.Failover.Approver"
    still = tandem(live, "failover", "status", "failover-central-east", "--json")
    assert still.returncode == 3 and json.loads(still.stdout)["custom_status"]["state"] == "awaiting approval"  # unchanged

    rejected = tandem(live, "failover", "reject", "failover-central-east", "--follow", *BOB)
    assert rejected.stdout.splitlines()[0] == "failover-central-east: Reject sent"
    assert rejected.returncode == 1 and rejected.stdout.splitlines()[-1].startswith("failover-central-east: rejected")
    assert "approval" in rejected.stdout and "rejected" in tandem(live, "failover", "status", "failover-central-east").stdout


def test_bad_usage_and_a_wrong_key_are_refused_plainly(live: Estate) -> None:
    wrong = subprocess.run([sys.executable, "-m", "local.cli", "failover", "status", "failover-central-east", "--url",
                            live.host.front_door.base_url, "--key", "not-the-key"], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)  # fmt: skip
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: 401")
    nowhere = subprocess.run([sys.executable, "-m", "local.cli", "whatif", "--pool", "hp-east-pooled"], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)  # fmt: skip
    assert nowhere.returncode == 1 and "--app NAME --resource-group RG" in nowhere.stderr


def test_whatif_prints_the_decision_for_a_pool_and_changes_nothing(live: Estate) -> None:
    before = len(live.arm.server.log("POST")) + len(live.arm.server.log("PATCH"))
    answer = tandem(live, "whatif", "--pool", "hp-east-pooled")
    assert answer.returncode == 0, answer.stderr
    decision = json.loads(answer.stdout)
    assert decision["pool"] == "hp-east-pooled" and decision["region"] == "east" and "target_hosts" in decision
    assert len(live.arm.server.log("POST")) + len(live.arm.server.log("PATCH")) == before


def test_a_deployed_tandem_is_found_through_arm_with_one_sign_in(live: Estate, tmp_path: Path) -> None:
    """`--app`: the person's Cloud Shell sign-in (DefaultAzureCredential) reads the site's defaultHostName, its
    App Service authentication audience and each route's function key through ARM, then drills over HTTPS."""
    subscription, group, name = SITE
    app = ["--app", name, "--resource-group", group, "--subscription", subscription, "--arm-endpoint", live.arm.base_url,
           "--ca", live.arm.ca.bundle_path]  # fmt: skip
    shell = live.arm.cloud_shell("ana@contoso.com", ["Tandem.Failover.Operator"])
    before = actions_seen("python-urllib")
    report = tmp_path / "drill.html"
    done = tandem(live, "failover", "drill", *PAIR, "--reason", "through ARM", "--report", str(report), where=app, env=shell)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "failover-central-east: drill east -> central started"
    assert "ana@contoso.com" in report.read_text(encoding="utf-8")  # the person's own token, with their app role
    asked = actions_seen("python-urllib") - before
    assert asked["Microsoft.Web/sites/read"] == 1 and asked["Microsoft.Web/sites/config/read"] == 1
    assert asked["Microsoft.Web/sites/functions/listkeys/action"] == 3  # start, status, report: each key once
    served = [r for r in live.arm.server.log("POST") if r.path.endswith("/listkeys")]
    assert served and all(r.query.get("api-version") == "2024-04-01" and r.status == 200 for r in served)
    assert not any(key in done.stdout + done.stderr for key in live.host.function_keys.values())  # no key is printed

    missing = tandem(live, "failover", "status", "failover-central-east", where=[*app[:1], "func-elsewhere", *app[2:]], env=shell)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ARM GET func-elsewhere: 404 ResourceNotFound"), missing.stderr
    no_role = tandem(live, "failover", "start", *PAIR, "--mode", "planned", where=app,
                     env=live.arm.cloud_shell("eve@contoso.com"))  # fmt: skip
    assert no_role.returncode == 1 and "403 Missing role" in no_role.stderr, no_role.stderr
    untrusted = tandem(live, "failover", "status", "failover-central-east", where=app[:-2], env=shell)
    assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr  # TLS is verified
