"""Cold start: how long a fresh worker takes to import function_app and index it, and what it loads, beside the
floor every v2 Durable Functions app pays (azure.functions, azure.durable_functions and an empty DFApp), measured in
the same run. The goal is at most 1.1x the floor."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEAVY = [
    "pydantic",
    "yaml",
    "azure.mgmt.compute",
    "azure.mgmt.desktopvirtualization",
    "azure.identity",
    "azure.monitor.opentelemetry",
    "httpx",
    "azure.data.tables",
]
# The floor: what any v2 Durable Functions app imports before its own code (the SDKs and an empty app).
_FLOOR = """
import json, time
t0 = time.perf_counter()
import azure.functions as func
import azure.durable_functions as df
df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
print(json.dumps({"import_s": time.perf_counter() - t0}))
"""
_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import function_app
t1 = time.perf_counter()
function_app.app.get_functions()
t2 = time.perf_counter()
heavy = [m for m in json.loads(sys.argv[1]) if m in sys.modules]
print(json.dumps({"import_s": t1 - t0, "index_s": t2 - t1, "heavy": heavy}))
"""


def _fresh(code: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return dict(json.loads(out.stdout))


def run(runs: int = 9) -> dict[str, Any]:
    """Measure `runs` fresh interpreters of the app and of the floor, alternately (so drift hits both alike);
    report medians, the ratio, and the heavy modules imported at load."""
    samples, floor = [], []
    for _ in range(runs):
        floor.append(_fresh(_FLOOR)["import_s"])
        samples.append(_fresh(_PROBE, json.dumps(HEAVY)))
    app = statistics.median(s["import_s"] for s in samples)
    base = statistics.median(floor)
    return {
        "runs": runs,
        "import_s_median": round(app, 3),
        "floor_import_s_median": round(base, 3),
        "ratio_to_floor": round(app / base, 3),
        "index_s_median": round(statistics.median(s["index_s"] for s in samples), 3),
        "heavy_modules_at_load": samples[0]["heavy"],
    }
