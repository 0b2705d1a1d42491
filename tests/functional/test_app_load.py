"""The app loads the way the real worker indexes it at host start-up."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _validate(script: Path) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: the worker's indexer imports the script as a module of its own.
    code = "import sys; from local.runtime.indexer import validate_app; print(sorted(validate_app(sys.argv[1])))"
    return subprocess.run(
        [sys.executable, "-c", code, str(script)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_function_app_passes_the_worker_indexer() -> None:
    result = _validate(ROOT / "function_app.py")
    assert result.returncode == 0, result.stderr
    failover = [
        f"failover_{n}"
        for n in (
            "admit",
            "audit",
            "decide",
            "drain",
            "events",
            "fence",
            "handles",
            "hold",
            "logoff",
            "make_writable",
            "move_assignments",
            "orchestrator",
            "preflight",
            "profile_check",
            "reconnect",
            "reconnected",
            "relationships",
            "release",
            "replicate",
            "replicated",
            "report",
            "reverse",
            "snapshot_target",
            "start",
            "status",
            "try_fence",
            "undrain",
            "unfence",
            "verify",
            "warm",
            "writable",
        )
    ]
    assert result.stdout.strip() == str(
        [
            "alerts_webhook",
            "anq_watch",
            "autoscale_events",
            "autoscale_partition",
            "autoscale_sweep",
            "autoscale_timer",
            "autoscale_whatif",
            *failover,
            "health",
            "snapshot_now",
            "snapshots_report",
            "snapshots_timer",
        ]
    )


def test_a_binding_mismatch_is_rejected_like_the_host_would(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        textwrap.dedent("""
        import azure.functions as func
        app = func.FunctionApp()
        @app.route(route="x")
        def broken(req: int) -> func.HttpResponse:
            return func.HttpResponse("never")
    """)
    )
    result = _validate(tmp_path / "function_app.py")
    assert result.returncode != 0
    assert "FunctionLoadError" in result.stderr and "broken" in result.stderr


def test_loading_the_app_imports_nothing_heavy() -> None:
    """Cold start: the topology models, pydantic, YAML and the Azure SDKs load on first use, never at import
    (`scripts/bench cold-start` measures the time; this holds what is imported)."""
    heavy = [
        "pydantic",
        "yaml",
        "shared.config.model",
        "azure.mgmt.compute",
        "azure.mgmt.desktopvirtualization",
        "azure.identity",
        "azure.data.tables",
        "azure.monitor.opentelemetry",
        "httpx",
    ]
    code = f"import sys, function_app; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
