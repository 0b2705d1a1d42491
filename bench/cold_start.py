"""Cold start: how long a fresh worker takes to import function_app and index it, and what it loads."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["azure.mgmt.compute", "azure.mgmt.desktopvirtualization", "azure.identity", "azure.monitor.opentelemetry",
         "httpx", "azure.data.tables"]
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


def run(runs: int = 5) -> dict[str, Any]:
    """Measure `runs` fresh interpreters; report medians and the heavy modules imported at load."""
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(HEAVY)], cwd=ROOT, capture_output=True,
                             text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        samples.append(json.loads(out.stdout))
    return {
        "runs": runs,
        "import_s_median": round(statistics.median(s["import_s"] for s in samples), 3),
        "index_s_median": round(statistics.median(s["index_s"] for s in samples), 3),
        "heavy_modules_at_load": samples[0]["heavy"],
    }
