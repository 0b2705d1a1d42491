"""The demo a newcomer runs plays through, reports success, and saves its day as JSON with its HTML report."""

import json
import re
from pathlib import Path

from local.demo.__main__ import play


def test_demo_plays_and_summarises_success(storage: str, capsys, tmp_path: Path) -> None:
    assert play(storage, tmp_path) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("demo summary: OK: 2 regions, 2 host pools, health 200")
    assert "without a function key -> 401" in out
    assert lines[-2] == f"the day's report: {(tmp_path / 'report.html').resolve().as_uri()}"

    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run["summary"] == lines[-1]
    east = run["pools"]["hp-east-pooled (eastus2)"]
    assert len(east) == (19 * 60 - 5 * 60 - 30) // 5 and set(run["pools"]) == {
        "hp-east-pooled (eastus2)",
        "hp-central-pooled (centralus)",
    }
    assert sum(p["logons"] for p in east) == 100 and max(p["sessions"] for p in east) > 50  # every sign-in, the storm drawn
    assert max(p["on"] for p in east) > max(p["on"] for p in east[:12])  # hosts were started for the storm ...
    assert east[-1]["on"] < max(p["on"] for p in east)  # ... and stopped after it
    outcomes = [(f["input"]["mode"], (f["output"] or {}).get("outcome")) for f in run["failovers"]]
    assert outcomes == [("drill", "aborted"), ("drill", "drill"), ("unplanned", "completed"), ("failback", "completed")]
    assert {d["path"] for c in run["clusters"] for d in c["directories"]} >= {"/profiles/fslogix"}

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('<polyline class="series"') == 2 * (4 + 1)  # two pools, four charts (one with two series)
    steps = sum(len(f["custom_status"]["steps"]) for f in run["failovers"])
    assert len(re.findall(r'<rect class="step"', page)) == steps  # every step of every failover is a bar
    assert page.count('<circle class="point"') == sum(len(d["recovery_points"]) for c in run["clusters"] for d in c["directories"])
    assert "oncall@contoso.com" in page and "Users moved" in page and "<script" not in page.lower()
